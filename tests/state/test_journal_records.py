"""The gating journal's tables on a real state store: journals, steps, ref moves, gate and gating results."""

from __future__ import annotations

import pytest

from coditect_cli.domain.gating import RefMove
from coditect_cli.state import StateError, Store
from coditect_cli.state import journal_records as jr

A, B = "a" * 40, "b" * 40


def test_a_journal_round_trips_and_only_one_is_open_per_phase(store: Store) -> None:
    run_id = store.begin_run("checkpoint 1", "p")
    journal_id = jr.add_journal(store, run_id, "checkpoint", "p", "cp 1", {"n": 1}, [("collect", {"x": 1})])
    info = jr.journal_info(store, journal_id)
    assert info is not None
    assert (info.run_id, info.command, info.phase, info.subject, info.args, info.state, info.finished) == (
        run_id,
        "checkpoint",
        "p",
        "cp 1",
        {"n": 1},
        "open",
        None,
    )
    assert jr.open_journal_id(store, "p") == journal_id
    assert jr.open_journal_id(store, "other") is None
    with pytest.raises(StateError, match="UNIQUE"):
        jr.add_journal(store, None, "merge-phase", "p", "", {}, [])
    jr.finish_journal(store, journal_id, "done")
    jr.finish_journal(store, journal_id, "aborted")  # a closed journal stays as it is
    assert jr.open_journal_id(store, "p") is None
    finished = jr.journal_info(store, journal_id)
    assert finished is not None and finished.state == "done"
    assert jr.journal_info(store, 42) is None


def test_steps_keep_their_moves_state_and_result(store: Store) -> None:
    journal_id = jr.add_journal(
        store, None, "checkpoint", "p", "", {}, [("collect", {}), ("land", {"repo": "app"})]
    )
    jr.start_step(store, journal_id, 0)
    first_start = store.query("SELECT started FROM journal_steps WHERE idx = 0")
    jr.start_step(store, journal_id, 0)
    assert store.query("SELECT started FROM journal_steps WHERE idx = 0") == first_start
    moves = [RefMove("app", "refs/heads/x", "local", None, A), RefMove("app", "refs/heads/x", "origin", B, A)]
    jr.add_step_moves(store, journal_id, 0, moves)
    jr.step_done(store, journal_id, 0, {"ok": True})
    jr.step_undone(store, journal_id, 1)
    collect, land = jr.journal_steps(store, journal_id)
    assert (collect.idx, collect.kind, collect.state, collect.started, collect.result) == (
        0,
        "collect",
        "done",
        True,
        {"ok": True},
    )
    assert collect.moves == tuple(moves)
    assert (land.payload, land.state, land.started, land.result, land.moves) == (
        {"repo": "app"},
        "undone",
        False,
        None,
        (),
    )


def test_gate_results_are_kept_per_tree(store: Store) -> None:
    journal_id = jr.add_journal(store, None, "checkpoint", "p", "", {}, [])
    assert jr.gate_result(store, journal_id, "app", "t1") is None
    jr.record_gate_result(store, journal_id, "app", "t1", True, {"log": "first"})
    jr.record_gate_result(store, journal_id, "app", "t1", False, {"log": "again"})
    assert jr.gate_result(store, journal_id, "app", "t1") == (False, {"log": "again"})
    assert jr.gate_result(store, journal_id, "web", "t1") is None


def test_gating_results(store: Store) -> None:
    ids = [jr.add_journal(store, None, "checkpoint", f"p{k}", "", {}, []) for k in range(4)]
    merged = {"merged": [{"repo": "app", "number": 1}]}
    jr.record_gating_result(store, ids[0], "p", "checkpoint", 1, "failed", {}, None)
    jr.record_gating_result(store, ids[1], "p", "checkpoint", 1, "passed", merged, "/tmp/r.md")
    jr.record_gating_result(store, ids[2], "p", "checkpoint", 2, "passed", {}, None)
    jr.record_gating_result(store, ids[3], "p", "merge-phase", None, "passed", {}, None)
    assert jr.checkpoint_statuses(store, "p") == {1: "passed", 2: "passed"}
    assert jr.passed_checkpoint_data(store, "p") == [(1, merged), (2, {})]
    jr.mark_gating_result_aborted(store, ids[2])
    assert jr.checkpoint_statuses(store, "p") == {1: "passed", 2: "aborted"}
    assert jr.checkpoint_statuses(store, "other") == {}
