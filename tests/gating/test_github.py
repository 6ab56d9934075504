"""The GitHub path of a checkpoint against the fake GitHub server (PyGithub over real HTTP): the PRs are merged
through the API in order, the merged tree must equal the tested tree, a 502 after a merge does not merge
twice, neither does a ``--continue`` after a kill, and a tree mismatch stops (and cannot be aborted).

The fake's merge endpoint is extended here to merge for real in the bare origin (squash with
``merge-tree``/``commit-tree``), so the tree GitHub would produce can be checked; git fetches and pushes
reach the same bare origin through ``url.<bare>.insteadOf``.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from fakegithub import FakeGitHub
from gating_helpers import MakeTiny, Tiny, git, move_to_github
from helpers import coditect

from coditect_cli.errors import RefusedError
from coditect_cli.project import Project
from coditect_cli.services import prs
from coditect_cli.services.checkpoint import TreeMismatch, run_checkpoint

SLUG = "acme/app"
INTEGRATION = "phase-1-integration"


class MergingGitHub(FakeGitHub):
    """The fake GitHub, whose merges are real squash commits on the bare origin's base branch."""

    def __init__(self) -> None:
        super().__init__(real_merges=True)


@pytest.fixture
def on_github(make_tiny: MakeTiny) -> Iterator[tuple[Tiny, MergingGitHub, dict[str, str]]]:
    """The tiny project (s2's PR breaks the gate) with its origin on the fake GitHub, PRs opened there and
    approved by their code owners."""
    tiny, _snapshot = make_tiny(3, open_prs=False, bad=2)
    with MergingGitHub() as fake:
        move_to_github(tiny, fake, SLUG)
        env = {"GH_TOKEN": fake.token, "CODITECT_GITHUB_RETRIES": "1", "CODITECT_GITHUB_WRITE_INTERVAL": "0"}
        opened = prs.open_all(Project(tiny.root), "phase-1", env=env)
        assert [o.forge for o in opened] == ["github"] * 3
        for k in (1, 2, 3):
            fake.add_review(SLUG, k, f"agent{k}", "APPROVED")
        yield tiny, fake, env


def merges(fake: FakeGitHub) -> list[str]:
    return [
        r.path.rsplit("/", 2)[-2] for r in fake.requests if r.method == "PUT" and r.path.endswith("/merge")
    ]


def test_merged_through_the_api_in_order_and_the_tree_is_verified(
    on_github: tuple[Tiny, MergingGitHub, dict[str, str]], socket_name: str
) -> None:
    tiny, fake, env = on_github
    fake.reset_log()
    result = run_checkpoint(Project(tiny.root), "phase-1", 1, socket=socket_name, env=env)
    assert result.status == "passed" and [x["number"] for x in result.left_out] == [2]
    assert merges(fake) == ["1", "3"]
    pulls = {p["number"]: p for p in fake.pulls(SLUG)}
    assert (pulls[1]["merged"], pulls[2]["merged"], pulls[3]["merged"]) == (True, False, True)
    tip = git(tiny.origin, "rev-parse", INTEGRATION)
    assert tip == pulls[3]["merge_commit_sha"]
    assert git(tiny.origin, "rev-parse", f"{tip}^{{tree}}") == result.repos["app"]["tree"]
    assert git(tiny.root, "rev-parse", INTEGRATION) == tip  # the local branch follows
    assert git(tiny.origin, "rev-parse", "checkpoint/phase-1/1^{commit}") == tip
    # The stream is told on its PR, and the head that broke the gates gets a failing status.
    (comment,) = fake.repos[SLUG].comments[2]
    assert "was left out" in comment["body"]
    head = pulls[2]["head_sha"]
    assert [s["state"] for s in fake.repos[SLUG].statuses[head]] == ["failure"]


def test_a_502_after_the_merge_does_not_merge_twice(
    on_github: tuple[Tiny, MergingGitHub, dict[str, str]], socket_name: str
) -> None:
    tiny, fake, env = on_github
    fake.fail("PUT", r"/repos/acme/app/pulls/1/merge", status=502, after=True)
    fake.reset_log()
    result = run_checkpoint(Project(tiny.root), "phase-1", 1, socket=socket_name, env=env)
    assert result.status == "passed"
    assert merges(fake) == ["1", "3"]  # the 502'd merge was read back, not retried


def test_killed_after_the_merges_continue_does_not_merge_again(
    on_github: tuple[Tiny, MergingGitHub, dict[str, str]], socket_name: str
) -> None:
    tiny, fake, env = on_github
    fake.reset_log()
    # Step 3 (land): its local move is journaled after the API merges; stop right there.
    killed = coditect(
        tiny.root,
        "checkpoint",
        "1",
        "--socket",
        socket_name,
        env={**env, "CODITECT_TEST_KILL_AT": "3:journaled"},
    )
    assert killed.code == -signal.SIGKILL, killed.output
    assert merges(fake) == ["1", "3"]
    done = coditect(tiny.root, "checkpoint", "--continue", "--json", "--socket", socket_name, env=env)
    assert done.code == 0, done.output
    assert done.json()["data"]["status"] == "passed"
    assert merges(fake) == ["1", "3"]


def test_a_tree_mismatch_stops_and_cannot_be_undone(
    on_github: tuple[Tiny, MergingGitHub, dict[str, str]], socket_name: str
) -> None:
    tiny, fake, env = on_github
    fake.tamper = {3}
    with pytest.raises(TreeMismatch) as caught:
        run_checkpoint(Project(tiny.root), "phase-1", 1, socket=socket_name, env=env)
    assert "but the gates passed tree" in caught.value.message
    assert git(tiny.root, "tag", "-l") == ""  # it stopped before tagging
    with pytest.raises(RefusedError) as refused:
        run_checkpoint(Project(tiny.root), "phase-1", None, socket=socket_name, env=env, resume="abort")
    assert "#1, #3 of app were merged on github" in refused.value.message


def test_a_merge_queue_on_the_integration_branch_merges_through_it_and_the_tree_is_verified(
    on_github: tuple[Tiny, MergingGitHub, dict[str, str]], socket_name: str
) -> None:
    tiny, fake, env = on_github
    fake.add_rule(SLUG, INTEGRATION, "merge_queue", merge_method="SQUASH", grouping_strategy="ALLGREEN")
    fake.reset_log()
    queued = {**env, "CODITECT_GITHUB_QUEUE_POLL": "0.01"}
    result = run_checkpoint(Project(tiny.root), "phase-1", 1, socket=socket_name, env=queued)
    assert result.status == "passed" and [x["number"] for x in result.left_out] == [2]
    assert merges(fake) == []  # never a PUT: the rules said the queue
    enqueued = [r for r in fake.requests if r.path.endswith("/graphql")]
    assert enqueued, "the queue was never asked"
    pulls = {p["number"]: p for p in fake.pulls(SLUG)}
    assert (pulls[1]["merged"], pulls[2]["merged"], pulls[3]["merged"]) == (True, False, True)
    tip = git(tiny.origin, "rev-parse", INTEGRATION)
    assert tip == pulls[3]["merge_commit_sha"]
    assert git(tiny.origin, "rev-parse", f"{tip}^{{tree}}") == result.repos["app"]["tree"]


def test_a_required_check_pending_on_github_keeps_a_pr_out_of_the_checkpoint(
    on_github: tuple[Tiny, MergingGitHub, dict[str, str]], socket_name: str
) -> None:
    tiny, fake, env = on_github
    fake.protect(SLUG, INTEGRATION, checks=("ci/build",))
    heads = {p["number"]: fake.repos[SLUG].sha_of(p["head"]) for p in fake.pulls(SLUG)}
    for number, sha in heads.items():
        fake.add_check_run(SLUG, sha or "", "lint", "completed", "failure")  # not required: does not block
        if number != 3:
            fake.add_check_run(SLUG, sha or "", "ci/build", "completed", "success")
    result = run_checkpoint(Project(tiny.root), "phase-1", 1, socket=socket_name, env=env)
    assert result.status == "passed"
    assert merges(fake) == ["1"]
    reasons = {x["number"]: x["reason"] for x in result.not_ready}
    assert "required check(s) of phase-1-integration not passed yet: ci/build (missing)" in reasons[3]
