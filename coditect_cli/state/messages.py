"""Messages held for an agent until it can take them (migration 6).

A message for a pane that waits for approval or is stopped at a dialog is never typed in (its Enter would
answer the prompt): it is kept here and delivered, oldest first, when the agent is idle. Each row is
``held`` until ``delivered`` (or ``dropped`` when its stream's pane is gone for good).
"""

from __future__ import annotations

from dataclasses import dataclass

from coditect_cli.state.store import Store, utc_now


@dataclass(frozen=True)
class HeldMessage:
    """One message waiting for its stream's agent."""

    id: int
    phase: str
    stream: str
    text: str
    reason: str
    created: str


def hold(store: Store, phase: str, stream: str, text: str, reason: str) -> int:
    """Keep ``text`` for ``stream``; returns its id."""
    return store.execute(
        "INSERT INTO held_messages (phase, stream, text, reason, created) VALUES (?, ?, ?, ?, ?)",
        [phase, stream, text, reason, utc_now()],
    )


def waiting(store: Store, phase: str, stream: str | None = None) -> list[HeldMessage]:
    """The held messages of ``phase`` (of one stream when given), oldest first."""
    sql = "SELECT id, phase, stream, text, reason, created FROM held_messages WHERE phase = ? AND status = 'held'"
    params: list[object] = [phase]
    if stream is not None:
        sql += " AND stream = ?"
        params.append(stream)
    return [HeldMessage(*row) for row in store.query(sql + " ORDER BY id", params)]


def counts(store: Store, phase: str) -> dict[str, int]:
    """How many messages are held per stream."""
    rows = store.query(
        "SELECT stream, COUNT(*) FROM held_messages WHERE phase = ? AND status = 'held' GROUP BY stream",
        [phase],
    )
    return {stream: int(n) for stream, n in rows}


def mark(store: Store, message_id: int, status: str) -> None:
    """Mark a held message ``delivered`` or ``dropped``."""
    store.execute(
        "UPDATE held_messages SET status = ?, delivered = ? WHERE id = ? AND status = 'held'",
        [status, utc_now(), message_id],
    )
