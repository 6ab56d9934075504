"""``coditect checkpoint N`` on real repositories (a tiny project with a bare origin): a green batch lands on
exactly the tested commit; a conflicting PR and a breaking PR are left out with their reasons; bisection's
gate runs are counted by the gate itself; a red tip exits 3 and moves nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from gating_helpers import MakeTiny, Tiny, git
from helpers import coditect
from test_domain import run_search

from coditect_cli.domain.gating import identify_bound, worst_case_runs
from coditect_cli.errors import UsageError
from coditect_cli.project import Project
from coditect_cli.services import prs, reviews
from coditect_cli.services.checkpoint import run_checkpoint
from coditect_cli.state import forge_records
from coditect_cli.state.store import Store

INTEGRATION = "phase-1-integration"


@pytest.fixture
def tiny(make_tiny: MakeTiny) -> Tiny:
    return make_tiny(3)[0]


def worktrees_state(tiny: Tiny) -> dict[int, tuple[str, str]]:
    return {
        k: (git(tiny.worktree(k), "rev-parse", "HEAD"), git(tiny.worktree(k), "status", "--porcelain"))
        for k in range(1, tiny.n + 1)
    }


def test_a_green_batch_lands_on_exactly_the_tested_commit(tiny: Tiny, socket_name: str) -> None:
    start = git(tiny.origin, "rev-parse", INTEGRATION)
    streams_before = worktrees_state(tiny)
    result = run_checkpoint(Project(tiny.root), "phase-1", 1, socket=socket_name)

    assert (result.status, result.exit_code, result.gate_runs) == ("passed", 0, 1)
    assert [m["number"] for m in result.merged] == [1, 2, 3] and result.left_out == []
    tested = result.repos["app"]["tested"]
    # The gate ran once, on that very commit; both branches are there now.
    (run,) = tiny.gate_runs()
    assert run.split()[0] == tested
    assert git(tiny.origin, "rev-parse", INTEGRATION) == git(tiny.root, "rev-parse", INTEGRATION) == tested
    assert git(tiny.root, "rev-list", "--count", f"{start}..{tested}") == "3"  # squash: one commit per PR
    assert git(tiny.root, "log", "--format=%s", "-1", tested) == "[phase-1] Stream 3: t3 (#3)"
    # Annotated tag, pushed.
    tag = "refs/tags/checkpoint/phase-1/1"
    assert git(tiny.root, "cat-file", "-t", tag) == "tag"
    assert git(tiny.origin, "rev-parse", f"{tag}^{{commit}}") == tested
    # The local forge's PRs are merged with their staging commits, as its own merge would record them.
    with Store.open(tiny.root / ".git") as store:
        records = forge_records.pull_requests(store, repo="app")
        assert [r.state for r in records] == ["merged"] * 3
        assert records[-1].merge_commit == tested and records[0].base_sha == start
        (row,) = store.query("SELECT status, report FROM gating_results WHERE kind = 'checkpoint'")
    assert row[0] == "passed"
    report = Path(row[1])
    assert report == tiny.root / "workstreams" / "reports" / "phase-1" / "checkpoint-1.md"
    text = report.read_text(encoding="utf-8")
    assert "**Result: PASSED** — 1 gate run(s)" in text and "app#2 (s2)" in text
    # Nobody's worktree was touched, and the temporary gate worktree is gone.
    assert worktrees_state(tiny) == streams_before
    assert git(tiny.root, "worktree", "list").count("\n") + 1 == 1 + tiny.n
    # Without a tmux session the announcements are skipped, and the result says so.
    assert result.announced["pause"]["skipped"] == {f"s{k}": "no tmux session" for k in (1, 2, 3)}


def test_a_passed_checkpoint_is_not_run_again(tiny: Tiny, socket_name: str) -> None:
    run_checkpoint(Project(tiny.root), "phase-1", 1, socket=socket_name)
    with pytest.raises(UsageError, match="has passed already"):
        run_checkpoint(Project(tiny.root), "phase-1", 1, socket=socket_name)


def test_dry_run_lists_the_steps_and_changes_nothing(tiny: Tiny, socket_name: str) -> None:
    before = tiny.refs()
    done = coditect(tiny.root, "checkpoint", "1", "--dry-run", "--json", "--socket", socket_name)
    assert done.code == 0, done.output
    data = done.json()["data"]
    assert data["status"] == "planned" and [b["number"] for b in data["batch"]] == [1, 2, 3]
    assert [s["kind"] for s in data["steps"]] == [
        "pause",
        "collect",
        "gate",
        "land",
        "tag",
        "notify",
        "report",
        "resume",
    ]
    assert tiny.refs() == before and tiny.gate_runs() == []


def test_a_conflicting_pr_is_left_out_with_the_reason(make_tiny: MakeTiny, socket_name: str) -> None:
    tiny, _snapshot = make_tiny(3, shared=True, open_prs=False)
    tiny.commit(1, "shared.txt", "api: from stream 1\n", "feat: contract 1")
    tiny.commit(2, "shared.txt", "api: from stream 2\n", "feat: contract 2")
    project = Project(tiny.root)
    prs.open_all(project, "phase-1")
    for k in (1, 2, 3):
        reviews.review(project, "phase-1", f"s{k}", owner=f"@agent{k}", state="approved")
    for k in (1, 2):  # shared.txt needs both of its owners
        reviews.review(project, "phase-1", f"s{k}", owner=f"@agent{3 - k}", state="approved")

    result = run_checkpoint(project, "phase-1", 1, socket=socket_name)
    assert result.status == "passed" and [m["number"] for m in result.merged] == [1, 3]
    (left,) = result.left_out
    assert (left["number"], left["kind"]) == (2, "conflict")
    assert "conflicts with its base in 1 path(s): shared.txt" in left["reason"]
    assert "(on top of #1)" in left["reason"]
    assert result.gate_runs == 1
    with Store.open(tiny.root / ".git") as store:
        pr2 = forge_records.pull_request(store, "app", 2)
        assert pr2 is not None and pr2.state == "open"
        (comment,) = forge_records.comments(store, pr2.id)
    assert comment.body.startswith("Checkpoint 1: #2 (feature/phase-1/s2/t2")


@pytest.mark.parametrize("n", [4, 8])
def test_bisection_finds_the_breaking_pr_within_the_bound(
    make_tiny: MakeTiny, gate_counter: Path, socket_name: str, n: int
) -> None:
    tiny, snapshot = make_tiny(n)
    costs: dict[int, int] = {}
    for bad in range(1, n + 1):
        snapshot.restore()
        gate_counter.unlink(missing_ok=True)
        tiny.commit(bad, f"s{bad}/work.txt", "FAIL_GATE\n", "feat: breaks the gate")
        prs.open_all(Project(tiny.root), "phase-1")  # pushes the new head
        reviews.review(Project(tiny.root), "phase-1", f"s{bad}", owner=f"@agent{bad}", state="approved")

        result = run_checkpoint(Project(tiny.root), "phase-1", 1, socket=socket_name)
        assert result.status == "passed"
        assert [x["number"] for x in result.left_out] == [bad]
        assert "the gates fail with it (gate) and pass without it" in result.left_out[0]["reason"]
        assert [m["number"] for m in result.merged] == [k for k in range(1, n + 1) if k != bad]
        runs = tiny.gate_runs()
        # Counted by the gate itself: one command per gate run, each on a distinct commit.
        assert len(runs) == result.gate_runs == len({r.split()[0] for r in runs})
        tested = result.repos["app"]["tested"]
        assert git(tiny.origin, "rev-parse", INTEGRATION) == tested and tested in {r.split()[0] for r in runs}
        # Exactly the domain's count for this position, and within the proven optimum.
        items = [f"p{k}" for k in range(1, n + 1)]
        assert result.gate_runs == run_search(items, {f"p{bad}"})[1]
        assert result.gate_runs <= math.ceil(math.log2(n)) + 2
        costs[bad] = result.gate_runs
    assert max(costs.values()) == worst_case_runs(n)
    assert sum(c <= identify_bound(n) for c in costs.values()) == n // 2
    print(f"n={n}: gate runs by position of the bad PR: {costs}")


def test_two_prs_failing_only_together_are_reported_as_the_pair(
    make_tiny: MakeTiny, gate_counter: Path, socket_name: str
) -> None:
    tiny, _snapshot = make_tiny(4, open_prs=False)
    tiny.commit(1, "s1/pair.txt", "PAIR_A\n", "feat: half of a pair")
    tiny.commit(3, "s3/pair.txt", "PAIR_B\n", "feat: other half")
    tiny.commit(4, "s4/work.txt", "FAIL_GATE\n", "feat: breaks the gate")
    project = Project(tiny.root)
    prs.open_all(project, "phase-1")
    for k in range(1, 5):
        reviews.review(project, "phase-1", f"s{k}", owner=f"@agent{k}", state="approved")

    result = run_checkpoint(project, "phase-1", 1, socket=socket_name)
    assert result.status == "passed"
    assert [m["number"] for m in result.merged] == [1, 2]
    left = {x["number"]: x for x in result.left_out}
    assert sorted(left) == [3, 4]
    assert left[3]["together_with"] == "app#1" and "fails only together with #1" in left[3]["reason"]
    assert "together_with" not in left[4]
    assert len(tiny.gate_runs()) == result.gate_runs


def test_a_red_integration_tip_fails_with_exit_3_and_moves_nothing(tiny: Tiny, socket_name: str) -> None:
    from coditect_cli.adapters.git import commit_file

    commit_file(tiny.root, INTEGRATION, "s1/broken.txt", "FAIL_GATE\n", "a bad commit on integration")
    git(tiny.root, "push", "-q", "origin", INTEGRATION)
    before = tiny.refs()
    # Pushed around coditect: refused until adopted; adopted, the tip is gated alone first, and fails.
    refused = coditect(tiny.root, "checkpoint", "1", "--json", "--socket", socket_name)
    assert refused.code == 4 and "a bad commit on integration" in refused.json()["error"]["message"]
    done = coditect(
        tiny.root, "checkpoint", "1", "--adopt-tip", "pushed by hand", "--json", "--socket", socket_name
    )
    assert done.code == 3, done.output
    assert len(tiny.gate_runs()) == 1  # the tip alone: a red tip takes nothing in
    payload = done.json()
    assert payload["exit_code"] == 3 and payload["problems"][0]["code"] == "gates-failed"
    data = payload["data"]
    assert data["status"] == "failed" and data["merged"] == [] and data["tags"] == []
    assert {x["number"] for x in data["left_out"]} == {1, 2, 3}
    assert all("integration tip" in x["reason"] for x in data["left_out"])
    assert tiny.refs() == before
    report = (tiny.root / "workstreams/reports/phase-1/checkpoint-1.md").read_text(encoding="utf-8")
    assert "**Result: FAILED**" in report


def test_continue_or_abort_without_an_interrupted_run_is_a_usage_error(tiny: Tiny) -> None:
    done = coditect(tiny.root, "checkpoint", "--continue")
    assert done.code == 2 and "nothing to continue or abort" in done.stderr
    both = coditect(tiny.root, "checkpoint", "1", "--continue", "--abort")
    assert both.code == 2


def test_an_unknown_checkpoint_is_a_usage_error(tiny: Tiny) -> None:
    done = coditect(tiny.root, "checkpoint", "9", "--json")
    assert done.code == 2
    assert (
        json.loads(done.stdout)["error"]["message"] == "no checkpoint 9 in phase phase-1 (checkpoints: 1, 2)"
    )
