"""The GitHub forge read for a poller (the autopilot): each open PR's reviews, review comments (file and line)
and the head's check runs and statuses with their evidence, by conditional requests; when nothing changed, a
read costs nothing against the rate limit and GraphQL (which has no conditional requests) is not asked."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fakegithub import FakeGitHub

from coditect_cli.forge.base import ForgeRepo, PullRequest
from coditect_cli.forge.github import GitHubForge, GitHubOptions
from coditect_cli.forge.select import Secret

SLUG = "acme/app"  # the conftest's repository and base branch
BASE = "phase-1-integration"
FAST = GitHubOptions(timeout=2, retries=2, backoff=0.01, backoff_max=0.05, write_interval=0, queue_poll=0.01)


def forge_with_cache(fake: FakeGitHub, cache: Path) -> GitHubForge:
    """A fresh forge (as each autopilot pass opens one) sharing the on-disk conditional-request cache."""
    return GitHubForge(fake.base_url, Secret(fake.token), replace(FAST, cache_dir=cache))


def open_pr(fake: FakeGitHub, head: str) -> int:
    return int(fake.add_pull(SLUG, head, BASE)["number"])


def watch(fake: FakeGitHub, cache: Path, repo: ForgeRepo) -> tuple[dict, dict, GitHubForge]:  # type: ignore[type-arg]
    forge = forge_with_cache(fake, cache)
    try:
        prs: list[PullRequest] = forge.list_prs(repo, BASE)
        details, activity = forge.watch(repo, prs)
    finally:
        forge.close()
    return details, activity, forge


def test_the_activity_carries_the_evidence(fake: FakeGitHub, repo: ForgeRepo, tmp_path: Path) -> None:
    number = open_pr(fake, "feature/a")
    head = fake.repos[SLUG].sha_of("feature/a")
    assert head is not None
    fake.add_check_run(
        SLUG,
        head,
        "unit",
        "completed",
        "failure",
        title="2 tests failed",
        summary="test_login: expected 200, got 500",
        text="Traceback (most recent call last):\n  File app.py, line 3\nAssertionError: 500 != 200",
        details_url="https://ci.example/runs/7",
    )
    fake.add_check_run(
        SLUG,
        head,
        "lint",
        "completed",
        "failure",
        title="1 problem",
        annotations=[{"path": "app.py", "start_line": 12, "title": "E501", "message": "line too long"}],
    )
    fake.add_check_run(SLUG, head, "build", "completed", "success")
    fake.add_status(SLUG, head, "ci/jenkins", "error", "Build broke: make exited 2", "https://jenkins/42")
    fake.add_review(SLUG, number, "carol", "CHANGES_REQUESTED", "please split this function")
    fake.add_review_comment(SLUG, number, "dave", "off by one here", "src/app.py", 14)

    _details, activity, forge = watch(fake, tmp_path / "cache", repo)
    seen = activity[number]
    assert seen.fresh and seen.head_sha == head
    checks = {c.name: c for c in seen.checks}
    assert checks["unit"].status == "failure" and checks["unit"].source == "check_run"
    assert checks["unit"].summary == "2 tests failed - test_login: expected 200, got 500"
    assert "AssertionError: 500 != 200" in checks["unit"].log
    assert checks["unit"].url == "https://ci.example/runs/7"
    # No output.text: the annotations are the log excerpt.
    assert checks["lint"].log == "app.py:12: [failure] E501: line too long"
    assert checks["build"].status == "success" and checks["build"].log == ""
    assert checks["ci/jenkins"].source == "status" and checks["ci/jenkins"].status == "failure"
    assert (checks["ci/jenkins"].summary, checks["ci/jenkins"].url) == (
        "Build broke: make exited 2",
        "https://jenkins/42",
    )
    (review,) = seen.reviews
    assert (review.reviewer, review.state, review.body) == (
        "@carol",
        "changes_requested",
        "please split this function",
    )
    assert review.id is not None and review.url and review.head_sha == head
    (comment,) = seen.comments
    assert (comment.author, comment.body, comment.path, comment.line) == (
        "@dave",
        "off by one here",
        "src/app.py",
        14,
    )
    # The annotations of a passing run, or of one with a log, are not read.
    assert fake.count("GET", r"/repos/acme/app/check-runs/\d+/annotations") == 1
    assert forge.fresh_reads > 0


def test_an_unchanged_pass_costs_no_rate_limit_and_no_graphql(
    fake: FakeGitHub, repo: ForgeRepo, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    numbers = [open_pr(fake, f"feature/{x}") for x in ("a", "b", "c")]
    head = fake.repos[SLUG].sha_of("feature/a")
    assert head is not None
    fake.add_check_run(SLUG, head, "unit", "completed", "failure", title="1 failed")
    fake.add_review(SLUG, numbers[1], "carol", "APPROVED")
    first, first_activity, _ = watch(fake, cache, repo)
    assert fake.count("POST", "/api/graphql") == 1 and set(first) == set(numbers)

    used, graphql = fake.rate_used, fake.count("POST", "/api/graphql")
    fake.reset_log()
    again, again_activity, forge = watch(fake, cache, repo)
    assert fake.rate_used == used  # every answer was 304: nothing counted against the rate limit
    assert fake.requests and all(r.status == 304 for r in fake.requests)
    assert fake.count("POST", "/api/graphql") == 0 and graphql == 1
    assert forge.fresh_reads == 0 and forge.conditional_hits == len(fake.requests)
    assert again == first  # the details kept from the last read
    assert not any(a.fresh for a in again_activity.values())
    assert {n: a.reviews for n, a in again_activity.items()} == {
        n: a.reviews for n, a in first_activity.items()
    }

    # A review changes one PR's reviews: that read is fresh, and the details are read again (one GraphQL).
    fake.add_review(SLUG, numbers[2], "dave", "CHANGES_REQUESTED", "no")
    fake.reset_log()
    changed, changed_activity, _ = watch(fake, cache, repo)
    assert fake.count("POST", "/api/graphql") == 1
    assert changed_activity[numbers[2]].fresh and not changed_activity[numbers[0]].fresh
    assert [r.state for r in changed[numbers[2]].reviews] == ["changes_requested"]
    # Counted: the changed reviews list, the GraphQL query, and the base's protection (404: not protected,
    # which has no ETag); the rest answered 304.
    assert fake.rate_used == used + 3


def test_a_moved_base_reads_the_details_again(fake: FakeGitHub, repo: ForgeRepo, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    open_pr(fake, "feature/a")
    watch(fake, cache, repo)
    fake.repos[SLUG].branches[BASE] = "2" * 40  # another PR merged: mergeability may have changed
    fake.reset_log()
    watch(fake, cache, repo)
    assert fake.count("POST", "/api/graphql") == 1
