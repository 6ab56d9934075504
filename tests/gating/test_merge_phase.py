"""``coditect merge-phase`` on the tiny project: refused while checkpoints have not passed (exit 3), forced
with a recorded reason, landed (develop, annotated tag, merged branches deleted), proposed only, a failing
suite (exit 3, nothing landed), and aborted after a kill (every ref back, the PRs open again)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from gating_helpers import MakeTiny, Tiny, git
from helpers import coditect

from coditect_cli.adapters.git import commit_file
from coditect_cli.project import Project
from coditect_cli.services.checkpoint import run_checkpoint
from coditect_cli.services.merge_phase import merge_phase
from coditect_cli.state import forge_records
from coditect_cli.state.store import Store

INTEGRATION = "phase-1-integration"
FEATURES = [f"feature/phase-1/s{k}/t{k}" for k in (1, 2, 3)]


@pytest.fixture
def tiny(make_tiny: MakeTiny) -> Tiny:
    return make_tiny(3)[0]


def test_refused_while_a_checkpoint_has_not_passed(tiny: Tiny, socket_name: str) -> None:
    before = tiny.refs()
    done = coditect(tiny.root, "merge-phase", "--land", "--json", "--socket", socket_name)
    assert done.code == 3, done.output
    error = done.json()["error"]
    assert error["message"] == "checkpoint(s) 1, 2 of phase phase-1 have not passed; not merging the phase"
    assert "--force" in error["hint"]
    assert tiny.refs() == before and tiny.gate_runs() == []


def test_forced_and_landed(tiny: Tiny, socket_name: str) -> None:
    develop = git(tiny.origin, "rev-parse", "develop")
    done = coditect(
        tiny.root, "merge-phase", "--land", "--force", "demo day", "--json", "--socket", socket_name
    )
    assert done.code == 0, done.output
    data = done.json()["data"]
    assert (data["status"], data["forced"], data["missing_checkpoints"]) == ("landed", "demo day", [1, 2])
    assert [m["number"] for m in data["merged"]] == [1, 2, 3]
    # The gates and the suite ran on the staged batch, once.
    assert sorted(r.split(" ", 1)[1].strip() for r in tiny.gate_runs()) == ["", "suite"]
    # develop has the phase: one squash commit on the old develop, with the integration tree.
    landed = git(tiny.origin, "rev-parse", "develop")
    assert git(tiny.origin, "rev-parse", f"{landed}^") == develop
    assert git(tiny.origin, "rev-parse", "develop^{tree}") == git(
        tiny.origin, "rev-parse", f"{INTEGRATION}^{{tree}}"
    )
    # The annotated release tag, with the release notes, on the landed commit.
    assert git(tiny.origin, "cat-file", "-t", "v0.1.0") == "tag"
    assert git(tiny.origin, "rev-parse", "v0.1.0^{commit}") == landed
    notes = git(tiny.origin, "tag", "-l", "--format=%(contents)", "v0.1.0")
    assert "## s1" in notes and "app#2: [phase-1] Stream 2: t2" in notes
    # Merged feature branches: gone from origin, kept locally where a stream's worktree has them.
    for branch in FEATURES:
        assert git(tiny.origin, "branch", "--list", branch) == ""
        assert git(tiny.root, "rev-parse", "--verify", "-q", f"refs/heads/{branch}")
    kept = {k["branch"]: k["reason"] for k in data["branches"]["app"]["kept"]}
    assert kept[f"local:{FEATURES[0]}"].startswith("checked out in ")
    with Store.open(tiny.root / ".git") as store:
        (event,) = store.events(kind="force")
        assert event.detail == {"reason": "demo day", "missing_checkpoints": [1, 2]}
        (land,) = forge_records.pull_requests(store, repo="app", base="develop")
        assert (land.state, land.merge_commit) == ("merged", landed)
    assert Path(data["report"]).is_file()


def test_proposed_only_after_the_checkpoints(tiny: Tiny, socket_name: str) -> None:
    project = Project(tiny.root)
    assert run_checkpoint(project, "phase-1", 1, socket=socket_name).status == "passed"
    second = run_checkpoint(project, "phase-1", 2, socket=socket_name)
    assert second.status == "passed" and second.merged == []  # nothing new: the tip is checked again
    develop = git(tiny.origin, "rev-parse", "develop")
    result = merge_phase(project, "phase-1", land=False, socket=socket_name)
    assert (result.status, result.forced, result.missing) == ("proposed", None, [])
    assert git(tiny.origin, "rev-parse", "develop") == develop
    assert git(tiny.origin, "rev-parse", "v0.1.0^{commit}") == git(tiny.origin, "rev-parse", INTEGRATION)
    with Store.open(tiny.root / ".git") as store:
        (pr,) = forge_records.pull_requests(store, repo="app", base="develop")
        assert (pr.state, pr.head) == ("open", INTEGRATION)
    assert all(git(tiny.origin, "branch", "--list", b) for b in FEATURES)
    assert "checkpoint 1" in result.notes_md


def test_a_failing_suite_lands_nothing(tiny: Tiny, socket_name: str) -> None:
    commit_file(tiny.root, INTEGRATION, "s1/bad.txt", "FAIL_GATE\n", "broken on integration")
    git(tiny.root, "push", "-q", "origin", INTEGRATION)
    before = tiny.refs()
    # Pushed around coditect, so adopted (gated first): the suite fails on it.
    done = coditect(
        tiny.root,
        "merge-phase",
        "--land",
        "--force",
        "x",
        "--adopt-tip",
        "y",
        "--json",
        "--socket",
        socket_name,
    )
    assert done.code == 3, done.output
    payload = done.json()
    assert payload["data"]["status"] == "failed" and payload["problems"][0]["code"] == "gates-failed"
    assert tiny.refs() == before


def test_killed_then_aborted_every_ref_is_back(tiny: Tiny, socket_name: str) -> None:
    before = tiny.refs()
    dry = coditect(tiny.root, "merge-phase", "--land", "--force", "x", "--dry-run", "--json")
    kinds = [s["kind"] for s in dry.json()["data"]["steps"]]
    assert kinds == [
        "check",
        "pause",
        "collect",
        "gate",
        "land",
        "notify",
        "propose",
        "deliver",
        "tag",
        "prune",
        "report",
        "resume",
    ]
    point = f"{kinds.index('prune')}:moved"  # develop landed, tagged, branches deleted on origin
    killed = coditect(
        tiny.root,
        "merge-phase",
        "--land",
        "--force",
        "x",
        "--socket",
        socket_name,
        env={"CODITECT_TEST_KILL_AT": point},
    )
    assert killed.code == -signal.SIGKILL, killed.output
    assert git(tiny.origin, "branch", "--list", FEATURES[0]) == ""
    done = coditect(tiny.root, "merge-phase", "--abort", "--json", "--socket", socket_name)
    assert done.code == 0, done.output
    assert done.json()["data"]["status"] == "aborted"
    assert tiny.refs() == before
    with Store.open(tiny.root / ".git") as store:
        assert [(p.base, p.state) for p in forge_records.pull_requests(store, repo="app")] == [
            (INTEGRATION, "open"),
            (INTEGRATION, "open"),
            (INTEGRATION, "open"),
            ("develop", "closed"),
        ]


def test_landed_then_run_again_is_a_no_op_that_says_so(tiny: Tiny, socket_name: str) -> None:
    args = ("merge-phase", "--land", "--force", "demo", "--json", "--socket", socket_name)
    first = coditect(tiny.root, *args)
    assert first.code == 0, first.output
    landed = tiny.refs()
    for _ in range(2):
        again = coditect(tiny.root, *args)
        assert again.code == 0, again.output
        data = again.json()["data"]
        assert data["already"] is True and data["status"] == "landed"
        assert any("landed already" in n and "nothing to do" in n for n in data["notes"]), data["notes"]
        assert tiny.refs() == landed
    with Store.open(tiny.root / ".git") as store:
        assert len(forge_records.pull_requests(store, repo="app", base="develop")) == 1  # no second PR
        assert store.query("SELECT status FROM gating_results WHERE kind = 'merge-phase'") == [("passed",)]
        assert store.query("SELECT count(*) FROM journals") == [(1,)]
