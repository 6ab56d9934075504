"""Killed at any step (SIGKILL, through the executor's test hook ``CODITECT_TEST_KILL_AT``), a checkpoint
finishes with ``--continue`` exactly as an uninterrupted run would, and ``--abort`` puts every ref back; a
journal the refs contradict is not trusted (exit 4)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from gating_helpers import MakeTiny, Snapshot, Tiny, git
from helpers import coditect

from coditect_cli.project import Project
from coditect_cli.services.checkpoint import run_checkpoint
from coditect_cli.state import forge_records
from coditect_cli.state.store import Store

INTEGRATION = "phase-1-integration"
STEPS = ["pause", "collect", "gate", "land", "tag", "notify", "report", "resume"]
# Every point the executor can stop at: after each step is journaled done, and for the steps that move
# refs also after their moves are journaled (not made) and after they are made (step not yet done).
POINTS = [
    point
    for i, kind in enumerate(STEPS)
    for point in ([f"{i}:journaled", f"{i}:moved"] if kind in ("land", "tag") else []) + [f"{i}"]
]


@pytest.fixture
def tiny(make_tiny: MakeTiny) -> tuple[Tiny, Snapshot]:
    """Three streams, the second one's PR breaks the gate (so bisection and notify take part)."""
    return make_tiny(3, bad=2)


def outcome(tiny: Tiny) -> dict[str, Any]:
    """What a finished checkpoint leaves, independent of commit dates: trees, tag, PR states, the record."""
    with Store.open(tiny.root / ".git") as store:
        states = [(r.number, r.state) for r in forge_records.pull_requests(store, repo="app")]
        results = store.query("SELECT status FROM gating_results")
        journals = store.query("SELECT state FROM journals")
    tag = "refs/tags/checkpoint/phase-1/1"
    return {
        "integration": git(tiny.origin, "rev-parse", f"{INTEGRATION}^{{tree}}"),
        "local": git(tiny.root, "rev-parse", f"{INTEGRATION}^{{tree}}"),
        "tag": git(tiny.origin, "rev-parse", f"{tag}^{{tree}}"),
        "tag_is_integration": git(tiny.origin, "rev-parse", f"{tag}^{{commit}}")
        == git(tiny.origin, "rev-parse", INTEGRATION),
        "prs": states,
        "results": results,
        "journals": journals,
        "gate_worktrees": "coditect-gate-" in git(tiny.root, "worktree", "list"),
    }


def test_kill_at_every_step_then_continue(tiny: tuple[Tiny, Snapshot], socket_name: str) -> None:
    made, snapshot = tiny
    reference = coditect(made.root, "checkpoint", "1", "--socket", socket_name)
    assert reference.code == 0, reference.output
    expected, expected_runs = outcome(made), len(made.gate_runs())
    assert expected["prs"] == [(1, "merged"), (2, "open"), (3, "merged")] and expected["tag_is_integration"]

    snapshot.restore()
    made.counter.unlink()
    first = coditect(
        made.root, "checkpoint", "1", "--socket", socket_name, env={"CODITECT_TEST_KILL_AT": POINTS[0]}
    )
    assert first.code == -signal.SIGKILL, first.output
    for point in POINTS[1:]:
        # Each --continue checks the journal against the refs, then runs until the next point.
        killed = coditect(
            made.root,
            "checkpoint",
            "--continue",
            "--socket",
            socket_name,
            env={"CODITECT_TEST_KILL_AT": point},
        )
        assert killed.code == -signal.SIGKILL, (point, killed.output)
    final = coditect(made.root, "checkpoint", "--continue", "--json", "--socket", socket_name)
    assert final.code == 0, final.output
    data = final.json()["data"]
    assert data["status"] == "passed" and data["resumed"] and [x["number"] for x in data["left_out"]] == [2]
    assert outcome(made) == expected
    assert len(made.gate_runs()) == expected_runs  # no gate ran twice on a tree


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_a_step_then_abort_puts_every_ref_back(
    tiny: tuple[Tiny, Snapshot], socket_name: str, point: str
) -> None:
    made, _snapshot = tiny
    before = made.refs()
    killed = coditect(
        made.root, "checkpoint", "1", "--socket", socket_name, env={"CODITECT_TEST_KILL_AT": point}
    )
    assert killed.code == -signal.SIGKILL, killed.output
    result = run_checkpoint(Project(made.root), "phase-1", None, socket=socket_name, resume="abort")
    assert result.status == "aborted"
    assert made.refs() == before  # every ref, local (remote-tracking ones too) and on origin
    found = outcome_after_abort(made)
    assert found["prs"] == ["open", "open", "open"] and found["journals"] == [("aborted",)]
    assert found["results"] in ([], [("aborted",)])
    if point == POINTS[-1]:
        # A fresh run works after an abort.
        again = run_checkpoint(Project(made.root), "phase-1", 1, socket=socket_name)
        assert again.status == "passed" and [m["number"] for m in again.merged] == [1, 3]


# Every point an --abort can stop at, newest step first: the step journaled as being undone, each of its
# reverse moves made (land and tag move origin's ref and the local one), the step journaled undone.
ABORT_POINTS = [
    point
    for i in reversed(range(len(STEPS)))
    for point in [
        f"{i}:undoing",
        *([f"{i}:back1", f"{i}:back2"] if STEPS[i] in ("land", "tag") else []),
        f"{i}:undone",
    ]
]


def test_an_abort_killed_after_each_of_its_reverse_moves_is_resumed(
    tiny: tuple[Tiny, Snapshot], socket_name: str
) -> None:
    made, _snapshot = tiny
    before = made.refs()
    killed = coditect(
        made.root, "checkpoint", "1", "--socket", socket_name, env={"CODITECT_TEST_KILL_AT": "7"}
    )
    assert killed.code == -signal.SIGKILL, killed.output
    assert made.refs() != before
    for point in ABORT_POINTS:
        stopped = coditect(
            made.root, "checkpoint", "--abort", "--socket", socket_name, env={"CODITECT_TEST_KILL_AT": point}
        )
        assert stopped.code == -signal.SIGKILL, (point, stopped.output)
        if point == "3:back1":
            # Half put back: it cannot be continued any more, only aborted.
            refused = coditect(made.root, "checkpoint", "--continue", "--socket", socket_name)
            assert refused.code == 4 and "finish putting it back with `coditect checkpoint --abort`" in (
                refused.stderr
            ), refused.output
    final = coditect(made.root, "checkpoint", "--abort", "--json", "--socket", socket_name)
    assert final.code == 0, final.output
    assert final.json()["data"]["status"] == "aborted"
    assert made.refs() == before
    found = outcome_after_abort(made)
    assert found["prs"] == ["open", "open", "open"] and found["journals"] == [("aborted",)]
    assert found["results"] == [("aborted",)]


def outcome_after_abort(tiny: Tiny) -> dict[str, Any]:
    with Store.open(tiny.root / ".git") as store:
        return {
            "prs": [r.state for r in forge_records.pull_requests(store, repo="app")],
            "journals": store.query("SELECT state FROM journals"),
            "results": store.query("SELECT status FROM gating_results"),
        }


def test_killed_in_the_middle_of_a_gate_the_temporary_worktree_is_cleaned_up(
    tiny: tuple[Tiny, Snapshot], socket_name: str, tmp_path: Path
) -> None:
    made, _snapshot = tiny
    # gate.py SIGKILLs the coditect process that runs it, the first time: in the middle of the gate step.
    env = {"GATE_KILL_ONCE": str(tmp_path / "killed-once")}
    killed = coditect(made.root, "checkpoint", "1", "--socket", socket_name, env=env)
    assert killed.code == -signal.SIGKILL, killed.output
    assert "coditect-gate-phase-1-" in git(made.root, "worktree", "list")
    stale = [
        line.split()[0] for line in git(made.root, "worktree", "list").splitlines() if "coditect-gate" in line
    ]
    done = coditect(made.root, "checkpoint", "--continue", "--socket", socket_name, env=env)
    assert done.code == 0, done.output
    assert "coditect-gate" not in git(made.root, "worktree", "list")
    assert not any(os.path.exists(path) for path in stale)


def test_a_journal_the_refs_contradict_is_refused(tiny: tuple[Tiny, Snapshot], socket_name: str) -> None:
    made, _snapshot = tiny
    killed = coditect(
        made.root, "checkpoint", "1", "--socket", socket_name, env={"CODITECT_TEST_KILL_AT": "3:moved"}
    )
    assert killed.code == -signal.SIGKILL
    # Someone moves origin's integration branch meanwhile.
    other = git(
        made.root, "commit-tree", f"{INTEGRATION}^{{tree}}", "-p", INTEGRATION, "-m", "someone else", input=""
    )
    git(made.root, "push", "-q", "--force", "origin", f"{other}:refs/heads/{INTEGRATION}")
    for flag in ("--continue", "--abort"):
        done = coditect(made.root, "checkpoint", flag, "--socket", socket_name)
        assert done.code == 4, done.output
        assert "does not match the repositories, so it cannot be trusted" in done.stderr
        assert f"origin {INTEGRATION} of app is at {other[:12]}" in done.stderr
