"""Tasks, blockers and sync records of a phase, in the state store (migration 3).

Task state is recorded, not derived from the date, so progress is real: ``todo`` until someone says
``start`` (``in-progress``) or ``done``. Every change is also an event (kind ``task`` / ``block``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from coditect_cli.state.store import Store, utc_now

TASK_STATES = ("todo", "in-progress", "done")


@dataclass(frozen=True)
class BlockRecord:
    """A blocker declared with ``coditect block``."""

    id: int
    phase: str
    stream: str
    reason: str
    on_stream: str | None
    created: str
    resolved: str | None


def task_states(store: Store, phase: str) -> dict[str, str]:
    """Recorded task states of ``phase`` by task id (tasks never touched are absent: todo)."""
    return {
        task: state for task, state in store.query("SELECT task, state FROM tasks WHERE phase = ?", [phase])
    }


def set_task_state(store: Store, phase: str, stream: str, task: str, state: str, command: str) -> str | None:
    """Record ``task``'s new ``state``; return the previous one (None when it was never recorded)."""
    if state not in TASK_STATES:
        raise ValueError(f"unknown task state {state!r}")
    with store.transaction():
        rows = store.query("SELECT state FROM tasks WHERE phase = ? AND task = ?", [phase, task])
        before = rows[0][0] if rows else None
        store.execute(
            "INSERT INTO tasks (phase, task, stream, state, updated) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (phase, task) DO UPDATE SET state = excluded.state, updated = excluded.updated",
            [phase, task, stream, state, utc_now()],
        )
        store.record_event(
            None,
            command,
            "task",
            phase=phase,
            detail={"task": task, "stream": stream, "from": before, "to": state},
        )
    return before


def add_block(store: Store, phase: str, stream: str, reason: str, on_stream: str | None, command: str) -> int:
    """Declare that ``stream`` is blocked (optionally waiting ``on_stream``); return the block's id."""
    with store.transaction():
        block_id = store.execute(
            "INSERT INTO blocks (phase, stream, reason, on_stream, created) VALUES (?, ?, ?, ?, ?)",
            [phase, stream, reason, on_stream, utc_now()],
        )
        store.record_event(
            None,
            command,
            "block",
            phase=phase,
            detail={"id": block_id, "stream": stream, "reason": reason, "on": on_stream},
        )
    return block_id


def resolve_blocks(store: Store, phase: str, stream: str, command: str) -> int:
    """Mark every open block of ``stream`` resolved; return how many there were."""
    with store.transaction():
        open_ids = [
            r[0]
            for r in store.query(
                "SELECT id FROM blocks WHERE phase = ? AND stream = ? AND resolved IS NULL", [phase, stream]
            )
        ]
        if open_ids:
            store.execute(
                "UPDATE blocks SET resolved = ? WHERE phase = ? AND stream = ? AND resolved IS NULL",
                [utc_now(), phase, stream],
            )
            store.record_event(
                None, command, "unblock", phase=phase, detail={"stream": stream, "ids": open_ids}
            )
    return len(open_ids)


def open_blocks(store: Store, phase: str) -> list[BlockRecord]:
    """Every unresolved block of ``phase``, oldest first."""
    rows = store.query(
        "SELECT id, phase, stream, reason, on_stream, created, resolved FROM blocks "
        "WHERE phase = ? AND resolved IS NULL ORDER BY id",
        [phase],
    )
    return [BlockRecord(*row) for row in rows]


def record_sync(store: Store, phase: str, kind: str, day: int, report: dict[str, Any]) -> str:
    """Remember that a ``kind`` sync of ``day`` ran now; return its time."""
    now = utc_now()
    store.execute(
        "INSERT INTO syncs (phase, kind, day, time, report) VALUES (?, ?, ?, ?, ?)",
        [phase, kind, day, now, json.dumps(report, default=str)],
    )
    return now


def last_sync(store: Store, phase: str, kind: str) -> tuple[int, str] | None:
    """(day, time) of the latest ``kind`` sync of ``phase``."""
    rows = store.query(
        "SELECT day, time FROM syncs WHERE phase = ? AND kind = ? ORDER BY id DESC LIMIT 1", [phase, kind]
    )
    return (int(rows[0][0]), str(rows[0][1])) if rows else None


def previous_sync(store: Store, phase: str, kind: str, before_day: int) -> tuple[str, dict[str, Any]] | None:
    """(time, report) of the latest ``kind`` sync of ``phase`` on a day before ``before_day``."""
    rows = store.query(
        "SELECT time, report FROM syncs WHERE phase = ? AND kind = ? AND day < ? ORDER BY id DESC LIMIT 1",
        [phase, kind, before_day],
    )
    if not rows:
        return None
    report = json.loads(rows[0][1] or "{}")
    return str(rows[0][0]), report if isinstance(report, dict) else {}


def sync_time(store: Store, phase: str, kind: str, day: int) -> str | None:
    """When the latest ``kind`` sync of ``day`` ran, if one did."""
    rows = store.query(
        "SELECT time FROM syncs WHERE phase = ? AND kind = ? AND day = ? ORDER BY id DESC LIMIT 1",
        [phase, kind, day],
    )
    return str(rows[0][0]) if rows else None
