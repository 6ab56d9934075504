"""The autopilot's records in the state store: its action journal, task dispatches, reaction firings,
stream backoffs and the forge events it receives (tables of migration 7 in
:mod:`coditect_cli.state.store`).

Every action is journaled *before* it is carried out under a key that names it exactly (the dispatch of one
task's attempt, the n-th firing of one event), and marked done after: a killed autopilot finds the actions
it planned but did not finish, checks whether they took effect, and never carries out a done one again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from coditect_cli.adapters.proc import redact
from coditect_cli.state.store import Store, utc_now


@dataclass(frozen=True)
class ActionRecord:
    """One journaled autopilot action."""

    id: int
    key: str
    kind: str
    stream: str | None
    detail: dict[str, Any]
    state: str
    outcome: str | None
    created: str


@dataclass(frozen=True)
class Dispatch:
    """One task given to a stream's agent: its attempt, what the branches pointed at when it was given."""

    id: int
    stream: str
    task: str
    attempt: int
    state: str
    base: dict[str, str]
    dispatched: str
    next_at: float
    reason: str | None


@dataclass(frozen=True)
class Fired:
    """How often a reaction to one event fired, when last, and whether it was escalated."""

    key: str
    kind: str
    stream: str
    fired: int
    last_fired: float
    escalated: bool


@dataclass(frozen=True)
class Backoff:
    """A stream held back after a rate-limit or overload signal."""

    stream: str
    level: int
    until: float
    reason: str


@dataclass(frozen=True)
class ForgeEvent:
    """A webhook delivery (or a polled forge event) waiting to be read by the autopilot."""

    id: int
    delivery: str
    source: str
    repo: str | None
    kind: str
    payload: dict[str, Any]
    received: str


# ------------------------------------------------------------------------------------------------ actions


def plan_action(
    store: Store, phase: str, key: str, kind: str, stream: str | None, detail: dict[str, Any]
) -> int | None:
    """Journal an action before it is carried out; None when an action with ``key`` was journaled already."""
    cur = store.execute_verbatim(
        "INSERT OR IGNORE INTO autopilot_actions (phase, key, kind, stream, detail, created) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [phase, key, kind, stream, redact(json.dumps(detail, sort_keys=True)), utc_now()],
    )
    return int(cur.lastrowid or 0) if cur.rowcount else None


def finish_action(store: Store, action_id: int, state: str, outcome: str) -> None:
    """Mark a journaled action ``done`` or ``failed`` with what happened."""
    store.execute(
        "UPDATE autopilot_actions SET state = ?, outcome = ?, finished = ? WHERE id = ?",
        [state, outcome, utc_now(), action_id],
    )


def _action(row: tuple[Any, ...]) -> ActionRecord:
    return ActionRecord(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6], row[7])


_ACTION_COLUMNS = "id, key, kind, stream, detail, state, outcome, created"


def open_actions(store: Store, phase: str) -> list[ActionRecord]:
    """Actions journaled but not finished (a pass was killed while carrying them out), oldest first."""
    rows = store.query(
        f"SELECT {_ACTION_COLUMNS} FROM autopilot_actions WHERE phase = ? AND state = 'planned' ORDER BY id",
        [phase],
    )
    return [_action(r) for r in rows]


def action_keys(store: Store, phase: str, prefix: str) -> set[str]:
    """Keys of the journaled actions starting with ``prefix``."""
    rows = store.query(
        "SELECT key FROM autopilot_actions WHERE phase = ? AND substr(key, 1, ?) = ?",
        [phase, len(prefix), prefix],
    )
    return {r[0] for r in rows}


def recent_actions(store: Store, phase: str, limit: int = 20) -> list[ActionRecord]:
    """The latest journaled actions, newest first."""
    rows = store.query(
        f"SELECT {_ACTION_COLUMNS} FROM autopilot_actions WHERE phase = ? ORDER BY id DESC LIMIT ?",
        [phase, limit],
    )
    return [_action(r) for r in rows]


# --------------------------------------------------------------------------------------------- dispatches

_DISPATCH_COLUMNS = "id, stream, task, attempt, state, base, dispatched, next_at, reason"


def _dispatch(row: tuple[Any, ...]) -> Dispatch:
    return Dispatch(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7], row[8])


def open_dispatches(store: Store, phase: str) -> dict[str, Dispatch]:
    """The task each stream is working on, by stream."""
    rows = store.query(
        f"SELECT {_DISPATCH_COLUMNS} FROM autopilot_dispatches WHERE phase = ? AND state = 'working'", [phase]
    )
    return {r[1]: _dispatch(r) for r in rows}


def blocked_tasks(store: Store, phase: str) -> dict[str, str]:
    """Tasks the autopilot gave up on, with the reason, by task id."""
    rows = store.query(
        "SELECT task, reason FROM autopilot_dispatches WHERE phase = ? AND state = 'blocked' ORDER BY id",
        [phase],
    )
    return {r[0]: r[1] or "" for r in rows}


def start_dispatch(store: Store, phase: str, stream: str, task: str, base: dict[str, str]) -> int:
    """Record that ``task`` was given to ``stream``'s agent, with its branches' heads at that moment."""
    now = utc_now()
    cur = store.execute_verbatim(
        "INSERT INTO autopilot_dispatches (phase, stream, task, state, base, dispatched, updated) "
        "VALUES (?, ?, ?, 'working', ?, ?, ?)",
        [phase, stream, task, json.dumps(base, sort_keys=True), now, now],
    )
    return int(cur.lastrowid or 0)


def retry_dispatch(store: Store, dispatch_id: int, next_at: float, reason: str) -> None:
    """One more attempt at the same dispatch: the agent was told why its work is not done."""
    store.execute(
        "UPDATE autopilot_dispatches SET attempt = attempt + 1, next_at = ?, reason = ?, updated = ? WHERE id = ?",
        [next_at, reason, utc_now(), dispatch_id],
    )


def close_dispatch(store: Store, dispatch_id: int, state: str, reason: str | None = None) -> None:
    """End a dispatch: ``done`` (verified) or ``blocked`` (given up, with the reason)."""
    store.execute(
        "UPDATE autopilot_dispatches SET state = ?, reason = ?, updated = ? WHERE id = ?",
        [state, reason, utc_now(), dispatch_id],
    )


def last_dispatch_time(store: Store, phase: str) -> str | None:
    """When the latest dispatch was made (for staggered starts)."""
    rows = store.query("SELECT MAX(dispatched) FROM autopilot_dispatches WHERE phase = ?", [phase])
    return rows[0][0] if rows and rows[0][0] else None


# ---------------------------------------------------------------------------------------------- reactions


def fired(store: Store, phase: str) -> dict[str, Fired]:
    """Every reaction's firing record, by event key."""
    rows = store.query(
        "SELECT key, kind, stream, fired, last_fired, escalated FROM autopilot_reactions WHERE phase = ?",
        [phase],
    )
    return {r[0]: Fired(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows}


def record_firing(
    store: Store, phase: str, key: str, kind: str, stream: str, when: float, *, escalate: bool
) -> None:
    """Count one more firing of the reaction to ``key`` (and its escalation)."""
    store.execute_verbatim(
        "INSERT INTO autopilot_reactions (phase, key, kind, stream, fired, last_fired, escalated, first_seen) "
        "VALUES (?, ?, ?, ?, 1, ?, ?, ?) ON CONFLICT (phase, key) DO UPDATE SET fired = fired + 1, "
        "last_fired = excluded.last_fired, escalated = MAX(escalated, excluded.escalated)",
        [phase, key, kind, stream, when, int(escalate), utc_now()],
    )


# ---------------------------------------------------------------------------------------------- backoff


def backoffs(store: Store, phase: str) -> dict[str, Backoff]:
    """Streams held back, by stream."""
    rows = store.query("SELECT stream, level, until, reason FROM autopilot_backoff WHERE phase = ?", [phase])
    return {r[0]: Backoff(r[0], r[1], r[2], r[3]) for r in rows}


def set_backoff(store: Store, phase: str, stream: str, level: int, until: float, reason: str) -> None:
    """Hold ``stream`` back until ``until`` (epoch seconds)."""
    store.execute(
        "INSERT INTO autopilot_backoff (phase, stream, level, until, reason) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (phase, stream) DO UPDATE SET level = excluded.level, until = excluded.until, "
        "reason = excluded.reason",
        [phase, stream, level, until, reason],
    )


def clear_backoff(store: Store, phase: str, stream: str) -> None:
    """Let ``stream`` be dispatched to again."""
    store.execute("DELETE FROM autopilot_backoff WHERE phase = ? AND stream = ?", [phase, stream])


# ------------------------------------------------------------------------------------------- forge events


def add_forge_event(
    store: Store, delivery: str, source: str, repo: str | None, kind: str, payload: dict[str, Any]
) -> bool:
    """Keep a received event; False when its delivery id was seen before (a replay)."""
    cur = store.execute_verbatim(
        "INSERT OR IGNORE INTO forge_events (delivery, source, repo, kind, payload, received) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [delivery, source, repo, kind, redact(json.dumps(payload, sort_keys=True)), utc_now()],
    )
    return bool(cur.rowcount)


def forge_events(store: Store, after: int = 0) -> list[ForgeEvent]:
    """Received events with an id above ``after``, oldest first."""
    rows = store.query(
        "SELECT id, delivery, source, repo, kind, payload, received FROM forge_events WHERE id > ? ORDER BY id",
        [after],
    )
    return [ForgeEvent(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]
