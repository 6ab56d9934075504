"""Per-process memory of facts computed from commit ids.

A merge of two given commits, the paths it changes, the history between given tips: each is a function of
the object ids alone (objects never change), so a process that asks again (the autopilot, pass after pass;
one command that reads the same merge for two reports) can keep the answer instead of starting git again.
Keys always hold full object ids, never ref names: a ref that moves is a new key, so a cached answer is
never stale (the one memo keyed otherwise, parsed manifests, holds the file's path, size and modification
time). The memory is bounded (oldest entries go first) and safe to use from several threads. A warm server's
worker hands what it learned back to the server (:func:`learned`, :func:`absorb`; coditect_cli.warm).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

_OBJECT_ID = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def is_object_id(text: str) -> bool:
    """Whether ``text`` is a full object id (SHA-1 or SHA-256), not a ref name or an abbreviation."""
    return bool(_OBJECT_ID.match(text))


_ALL: list[Memo[Any, Any]] = []
"""Every memo of the process, in creation order (the same in a forked child as in its parent)."""
_TRACKING: list[bool] = [False]  # whether puts are counted for learned() (only after mark())


class Memo(Generic[K, V]):
    """A bounded map from keys made of object ids to what git answered for them."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self._fresh: list[K] = []
        _ALL.append(self)

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            if _TRACKING[0]:
                self._fresh.append(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def forget() -> None:
    """Forget everything every memo holds (a test measuring what a first read costs)."""
    for memo in _ALL:
        with memo._lock:
            memo._items.clear()
            memo._fresh = []


def mark() -> None:
    """Start counting the entries every memo learns from now on (see :func:`learned`)."""
    _TRACKING[0] = True
    for memo in _ALL:
        with memo._lock:
            memo._fresh = []


def learned() -> list[tuple[int, list[tuple[Any, Any]]]]:
    """What every memo learned since :func:`mark`, by the memo's place in creation order: a forked warm
    server's child hands this to its parent, so the next child starts with it (:mod:`coditect_cli.warm`)."""
    out: list[tuple[int, list[tuple[Any, Any]]]] = []
    for index, memo in enumerate(_ALL):
        with memo._lock:
            items = [(k, memo._items[k]) for k in dict.fromkeys(memo._fresh) if k in memo._items]
        if items:
            out.append((index, items))
    return out


def absorb(learnt: list[tuple[int, list[tuple[Any, Any]]]]) -> None:
    """Keep what :func:`learned` gave (in a process whose memos were created in the same order)."""
    for index, items in learnt:
        if 0 <= index < len(_ALL):
            for key, value in items:
                _ALL[index].put(key, value)
