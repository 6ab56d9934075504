"""Memoising a pure function of one frozen value (a manifest) that one command asks about many times."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TypeVar

A = TypeVar("A")
R = TypeVar("R")


def same_argument(fn: Callable[[A], R]) -> Callable[[A], R]:
    """``fn`` returning its last result again while it is called with the very same object (``is``).

    For frozen arguments that are not hashable (a manifest holds dicts), when one command asks many times
    about the same one, e.g. once per worktree. The result is shared: callers must not modify it.
    """
    last: list[tuple[A, R]] = []

    @wraps(fn)
    def wrapper(arg: A) -> R:
        if last and last[0][0] is arg:
            return last[0][1]
        result = fn(arg)
        last[:] = [(arg, result)]
        return result

    return wrapper
