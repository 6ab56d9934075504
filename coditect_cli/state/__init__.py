"""The embedded state store (SQLite in ``<git-common-dir>/coditect/state.db``) and the per-phase locks."""

from __future__ import annotations

from coditect_cli.state.lock import LockHolder, phase_lock, read_holder
from coditect_cli.state.store import MIGRATIONS, Event, Run, StateError, Store

__all__ = ["MIGRATIONS", "Event", "LockHolder", "Run", "StateError", "Store", "phase_lock", "read_holder"]
