"""The embedded state store (SQLite in ``<git-common-dir>/coditect/state.db``) and the per-phase locks.

The names below load their module on first use: a command that only reads the store does not import the
lock's ``filelock`` (and one that touches neither imports nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coditect_cli.state.lock import LockHolder, phase_lock, read_holder
    from coditect_cli.state.store import MIGRATIONS, Event, Run, StateError, Store

__all__ = ["MIGRATIONS", "Event", "LockHolder", "Run", "StateError", "Store", "phase_lock", "read_holder"]

_HOME = {
    "LockHolder": "lock",
    "phase_lock": "lock",
    "read_holder": "lock",
    "MIGRATIONS": "store",
    "Event": "store",
    "Run": "store",
    "StateError": "store",
    "Store": "store",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
