"""Journals, gate results and gating results of ``checkpoint`` and ``merge-phase``, in the state store
(migration 4).

A journal is one run's plan: its steps (index, kind, JSON payload, ``pending``/``done``/``undone``, JSON
result) and the refs each step moves, with their old and new values, journaled *before* they move. At most one
journal per phase is open. Gate results are kept per journal, repository and tree, so a resumed run never runs
a gate twice on the same tree; ``gating_results`` holds each checkpoint's and merge-phase's outcome.

How a journal is run, resumed and undone is :mod:`coditect_cli.services.journal`'s business; this module only
reads and writes the rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coditect_cli.domain.gating import RefMove, StepRecord
from coditect_cli.state.store import Store, utc_now


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class JournalInfo:
    """A journal's header row."""

    id: int
    run_id: int | None
    command: str
    phase: str
    subject: str
    args: dict[str, Any]
    state: str
    started: str
    finished: str | None


# ---------------------------------------------------------------------------------------------- journals


def add_journal(
    store: Store,
    run_id: int | None,
    command: str,
    phase: str,
    subject: str,
    args: Mapping[str, Any],
    steps: Sequence[tuple[str, Mapping[str, Any]]],
) -> int:
    """Write a new open journal with ``steps`` (kind, payload), all pending; return its id.

    The store refuses a second open journal of ``phase``: look for one first (:func:`open_journal_id`), in
    the same transaction.
    """
    with store.transaction():
        journal_id = store.execute(
            "INSERT INTO journals (run_id, command, phase, subject, args, state, started) "
            "VALUES (?, ?, ?, ?, ?, 'open', ?)",
            (run_id, command, phase, subject, _json(dict(args)), utc_now()),
        )
        for idx, (kind, payload) in enumerate(steps):
            store.execute(
                "INSERT INTO journal_steps (journal_id, idx, kind, payload, state) VALUES (?, ?, ?, ?, 'pending')",
                (journal_id, idx, kind, _json(dict(payload))),
            )
    return journal_id


def journal_info(store: Store, journal_id: int) -> JournalInfo | None:
    """The header of the journal with this id, or None."""
    rows = store.query(
        "SELECT id, run_id, command, phase, subject, args, state, started, finished FROM journals WHERE id = ?",
        [journal_id],
    )
    if not rows:
        return None
    r = rows[0]
    return JournalInfo(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8])


def open_journal_id(store: Store, phase: str) -> int | None:
    """The id of the open (interrupted or running) journal of ``phase``, or None."""
    rows = store.query("SELECT id FROM journals WHERE phase = ? AND state = 'open'", [phase])
    return int(rows[0][0]) if rows else None


def finish_journal(store: Store, journal_id: int, state: str) -> None:
    """Close the open journal ``journal_id`` as ``done`` or ``aborted`` (a closed one stays as it is)."""
    store.execute(
        "UPDATE journals SET state = ?, finished = ? WHERE id = ? AND state = 'open'",
        (state, utc_now(), journal_id),
    )


def update_journal_args(store: Store, journal_id: int, changes: Mapping[str, Any]) -> None:
    """Merge ``changes`` into the arguments of journal ``journal_id`` (e.g. the step an abort is undoing)."""
    with store.transaction():
        rows = store.query("SELECT args FROM journals WHERE id = ?", [journal_id])
        if not rows:
            return
        args = {**json.loads(rows[0][0]), **changes}
        store.execute("UPDATE journals SET args = ? WHERE id = ?", (_json(args), journal_id))


def last_journal(store: Store, phase: str, command: str) -> JournalInfo | None:
    """The newest journal of ``command`` in ``phase`` (open or closed), or None."""
    rows = store.query(
        "SELECT id FROM journals WHERE phase = ? AND command = ? ORDER BY id DESC LIMIT 1", [phase, command]
    )
    return journal_info(store, int(rows[0][0])) if rows else None


def gating_status(store: Store, journal_id: int) -> str | None:
    """The recorded result status (passed, failed, aborted) of the run of journal ``journal_id``, or None."""
    rows = store.query("SELECT status FROM gating_results WHERE journal_id = ?", [journal_id])
    return str(rows[0][0]) if rows else None


# ---------------------------------------------------------------------------------------------- steps


def journal_steps(store: Store, journal_id: int) -> list[StepRecord]:
    """Every step of the journal with its moves, in order."""
    moves: dict[int, list[RefMove]] = {}
    for idx, repo, ref, location, old, new in store.query(
        "SELECT idx, repo, ref, location, old, new FROM journal_refs WHERE journal_id = ? ORDER BY id",
        [journal_id],
    ):
        moves.setdefault(int(idx), []).append(RefMove(repo, ref, location, old, new))
    out: list[StepRecord] = []
    for idx, kind, payload, state, started, result in store.query(
        "SELECT idx, kind, payload, state, started, result FROM journal_steps WHERE journal_id = ? ORDER BY idx",
        [journal_id],
    ):
        out.append(
            StepRecord(
                int(idx),
                kind,
                json.loads(payload),
                state,
                started is not None,
                json.loads(result) if result is not None else None,
                tuple(moves.get(int(idx), ())),
            )
        )
    return out


def start_step(store: Store, journal_id: int, idx: int) -> None:
    """Note that step ``idx`` began (it may have changed things from now on); the first start is kept."""
    store.execute(
        "UPDATE journal_steps SET started = COALESCE(started, ?) WHERE journal_id = ? AND idx = ?",
        (utc_now(), journal_id, idx),
    )


def add_step_moves(store: Store, journal_id: int, idx: int, moves: Sequence[RefMove]) -> None:
    """Journal the moves step ``idx`` is about to make (one transaction)."""
    with store.transaction():
        for m in moves:
            store.execute(
                "INSERT INTO journal_refs (journal_id, idx, repo, ref, location, old, new) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (journal_id, idx, m.repo, m.ref, m.location, m.old, m.new),
            )


def step_done(store: Store, journal_id: int, idx: int, result: Mapping[str, Any]) -> None:
    """Journal step ``idx`` done with ``result``."""
    store.execute(
        "UPDATE journal_steps SET state = 'done', finished = ?, result = ? WHERE journal_id = ? AND idx = ?",
        (utc_now(), _json(dict(result)), journal_id, idx),
    )


def step_undone(store: Store, journal_id: int, idx: int) -> None:
    """Journal step ``idx`` undone (by ``--abort``)."""
    store.execute(
        "UPDATE journal_steps SET state = 'undone', finished = ? WHERE journal_id = ? AND idx = ?",
        (utc_now(), journal_id, idx),
    )


# ---------------------------------------------------------------------------------------------- gate results


def gate_result(store: Store, journal_id: int, repo: str, tree: str) -> tuple[bool, dict[str, Any]] | None:
    """The gate result recorded for ``tree`` in ``repo`` in journal ``journal_id``: (passed, detail), or None."""
    rows = store.query(
        "SELECT passed, detail FROM gate_results WHERE journal_id = ? AND repo = ? AND tree = ?",
        [journal_id, repo, tree],
    )
    return (bool(rows[0][0]), json.loads(rows[0][1])) if rows else None


def record_gate_result(
    store: Store, journal_id: int, repo: str, tree: str, passed: bool, detail: Mapping[str, Any]
) -> None:
    """Keep the gate result of ``tree`` in ``repo`` for journal ``journal_id`` (replacing an earlier one)."""
    store.execute(
        "INSERT OR REPLACE INTO gate_results (journal_id, repo, tree, passed, detail, time) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (journal_id, repo, tree, int(passed), _json(dict(detail)), utc_now()),
    )


# ---------------------------------------------------------------------------------------------- gating results


def record_gating_result(
    store: Store,
    journal_id: int,
    phase: str,
    kind: str,
    checkpoint: int | None,
    status: str,
    data: Mapping[str, Any],
    report: str | None,
) -> None:
    """Keep the outcome of the checkpoint or merge-phase run of journal ``journal_id`` (one row per journal)."""
    store.execute(
        "INSERT OR REPLACE INTO gating_results (journal_id, phase, kind, checkpoint, status, data, report, time) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            journal_id,
            phase,
            kind,
            checkpoint,
            status,
            json.dumps(dict(data), default=str),
            report,
            utc_now(),
        ),
    )


def mark_gating_result_aborted(store: Store, journal_id: int) -> None:
    """Record that the run of journal ``journal_id`` was aborted (its moves put back)."""
    store.execute("UPDATE gating_results SET status = 'aborted' WHERE journal_id = ?", (journal_id,))


def checkpoint_statuses(store: Store, phase: str) -> dict[int, str]:
    """Each checkpoint's latest recorded result (passed, failed, aborted) in ``phase``."""
    rows = store.query(
        "SELECT checkpoint, status FROM gating_results WHERE phase = ? AND kind = 'checkpoint' ORDER BY id",
        [phase],
    )
    return {int(c): str(st) for c, st in rows}


def passed_checkpoint_data(store: Store, phase: str) -> list[tuple[int, dict[str, Any]]]:
    """The recorded data (decoded JSON) of every passed checkpoint of ``phase``, oldest first."""
    rows = store.query(
        "SELECT checkpoint, data FROM gating_results WHERE phase = ? AND kind = 'checkpoint' "
        "AND status = 'passed' ORDER BY id",
        [phase],
    )
    return [(int(cp), json.loads(data)) for cp, data in rows]
