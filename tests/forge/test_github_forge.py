"""The GitHub forge against a fake GitHub on 127.0.0.1 (real HTTP; PyGithub parses the fake's payloads).

Faults: a 502 after the server created the PR (exactly one PR at the end), primary and secondary rate limits
(reported with their reset, never slept on), GETs slower than the client's timeout (bounded retries, then a
clean error), and 5xx on writes (never retried blindly).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import replace
from pathlib import Path

import pytest
from fakegithub import FakeGitHub
from helpers import retry_until

from coditect_cli.errors import CheckFailed, CoditectError, ExitCode, UnavailableError
from coditect_cli.forge.base import ForgeRepo, ProposalSpec, PullRequest
from coditect_cli.forge.github import DETAILS_BATCH, GitHubForge, GitHubOptions
from coditect_cli.forge.select import Secret

SLUG = "acme/app"
BASE = "phase-1-integration"
PULLS = "/repos/acme/app/pulls"
FAST = GitHubOptions(timeout=2, retries=2, backoff=0.01, backoff_max=0.05, write_interval=0, queue_poll=0.01)


def spec(head: str, title: str = "") -> ProposalSpec:
    return ProposalSpec(BASE, head, title or f"[phase-1] {head}", f"Body of {head}")


def add_branches(fake: FakeGitHub, *heads: str) -> None:
    for i, head in enumerate(heads):
        fake.repos[SLUG].branches[head] = f"{i + 2:x}" * 40


# ------------------------------------------------------------------------------------------------ opening


def test_open_finds_first_and_never_duplicates(fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo) -> None:
    add_branches(fake, "feature/a")
    first = forge.open_pr(repo, spec("feature/a"))
    assert first.created and first.pr.number == 1 and first.pr.state == "open"
    assert first.pr.url == f"{fake.root_url}/{SLUG}/pull/1"
    assert (first.pr.base, first.pr.head, first.pr.head_sha) == (
        BASE,
        "feature/a",
        fake.repos[SLUG].branches["feature/a"],
    )
    again = forge.open_pr(repo, spec("feature/a"))
    assert not again.created and again.pr.number == 1

    fresh = GitHubForge(fake.base_url, Secret(fake.token), FAST)  # a later command: no cache
    try:
        assert not fresh.open_pr(repo, spec("feature/a")).created
    finally:
        fresh.close()
    assert len(fake.pulls(SLUG)) == 1
    assert fake.count("POST", PULLS) == 1
    listed = [r for r in fake.requests if r.method == "GET" and r.path.endswith(PULLS)]
    assert {r.query for r in listed} == {f"base={BASE}&per_page=100&state=all"}


def test_a_502_after_the_create_leaves_exactly_one_pr(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    add_branches(fake, "feature/a")
    fake.fail("POST", PULLS, status=502, after=True)
    opened = forge.open_pr(repo, spec("feature/a"))
    assert opened.created and opened.pr.number == 1
    assert len(fake.pulls(SLUG)) == 1
    assert fake.count("POST", PULLS) == 1  # never a second POST
    assert any("not created twice" in note for note in forge.notes)
    # The look-up after the failure asked GitHub (head filter), not the cached list.
    finds = [r for r in fake.requests if r.method == "GET" and r.path.endswith(PULLS) and "head=" in r.query]
    assert len(finds) == 1 and "head=acme%3Afeature%2Fa" in finds[0].query


def test_a_502_before_the_create_is_reported_and_a_rerun_creates(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    add_branches(fake, "feature/a")
    fake.fail("POST", PULLS, status=502)
    with pytest.raises(UnavailableError) as caught:
        forge.open_pr(repo, spec("feature/a"))
    assert "502" in caught.value.message and caught.value.exit_code == ExitCode.UNAVAILABLE
    assert caught.value.hint is not None and "safe to run again" in caught.value.hint
    assert fake.pulls(SLUG) == [] and fake.count("POST", PULLS) == 1
    assert forge.open_pr(repo, spec("feature/a")).created
    assert len(fake.pulls(SLUG)) == 1


def test_a_pr_created_meanwhile_by_someone_else_is_reported(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    add_branches(fake, "feature/a")
    assert forge.list_prs(repo, BASE) == []  # cached: empty
    fake.add_pull(SLUG, "feature/a", BASE, "opened by another terminal")
    opened = forge.open_pr(repo, spec("feature/a"))  # the POST answers 422 "already exists"
    assert not opened.created and opened.pr.title == "opened by another terminal"
    assert len(fake.pulls(SLUG)) == 1


def test_content_creating_writes_are_paced_reads_are_not(fake: FakeGitHub, repo: ForgeRepo) -> None:
    heads = [f"feature/s{i}" for i in range(3)]
    add_branches(fake, *heads)
    paced = GitHubForge(fake.base_url, Secret(fake.token), replace(FAST, write_interval=0.3))
    try:
        for head in heads:
            assert paced.open_pr(repo, spec(head)).created
        paced.pr_details(repo, paced.list_prs(repo, BASE))
        paced.pr_details(repo, paced.list_prs(repo, BASE))
    finally:
        paced.close()
    creates = [r.at for r in fake.requests if r.method == "POST" and r.path.endswith(PULLS)]
    assert len(creates) == 3
    assert all(b - a >= 0.3 for a, b in itertools.pairwise(creates)), creates
    graphql = [r.at for r in fake.requests if r.path.endswith("/graphql")]
    assert len(graphql) == 2  # reads: sent when needed, not paced (the server saw both)


# ------------------------------------------------------------------------------------------------ reading


def test_list_is_one_paginated_call_per_base(fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo) -> None:
    for i in range(150):
        fake.add_pull(SLUG, f"feature/s{i:03d}", BASE)
    for i in range(3):
        fake.add_pull(SLUG, f"other/{i}", "main")
    listed = forge.list_prs(repo, BASE)
    assert [p.number for p in listed] == list(range(1, 151))
    assert {p.base for p in listed} == {BASE}
    assert fake.count("GET", PULLS) == 2  # 100 + 50: two pages
    assert forge.list_prs(repo, BASE) == listed and fake.count() == 2  # cached for the command


def test_details_come_from_one_graphql_query_per_batch(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    for i in range(DETAILS_BATCH + 5):
        fake.add_pull(SLUG, f"feature/s{i:02d}", BASE)
    fake.repos[SLUG].files[1] = ["openapi.yaml", "src/api/v1/auth.py"]
    fake.repos[SLUG].mergeable[2] = False
    fake.add_review(SLUG, 1, "codi-code-architect", "APPROVED")
    fake.add_review(SLUG, 1, "codi-frontend-specialist", "CHANGES_REQUESTED")
    fake.add_review(SLUG, 1, "someone", "DISMISSED")
    prs = forge.list_prs(repo, BASE)
    head1 = prs[0].head_sha or ""
    forge.record_check(repo, head1, "unit-tests", "success")
    forge.record_check(repo, head1, "openapi-contract", "pending")
    forge.record_check(repo, head1, "openapi-contract", "failure")  # the latest wins
    fake.add_check_run(SLUG, head1, "build", "completed", "success")
    fake.add_check_run(SLUG, head1, "e2e", "in_progress", None)
    fake.reset_log()

    details = forge.pr_details(repo, prs)
    assert fake.count("POST", "/api/graphql") == 2
    # ...and the base's rules, read once: branch protection and rulesets (the merge methods came with the query).
    assert fake.count("GET") == 2 and fake.count() == 4
    forge.pr_details(repo, prs)
    assert fake.count("GET") == 2 and fake.count("POST", "/api/graphql") == 4
    assert forge.branch_rules(repo, BASE).merge_methods == ("squash", "merge", "rebase")
    assert fake.count("GET") == 2
    one = details[1]
    assert one.files == ("openapi.yaml", "src/api/v1/auth.py")
    assert [(r.reviewer, r.state) for r in one.reviews] == [
        ("@codi-code-architect", "approved"),
        ("@codi-frontend-specialist", "changes_requested"),
    ]
    assert {(c.name, c.status) for c in one.checks} == {
        ("unit-tests", "success"),
        ("openapi-contract", "failure"),
        ("build", "success"),
        ("e2e", "pending"),
    }
    assert one.mergeable is True and details[2].mergeable is False
    assert len(details) == DETAILS_BATCH + 5


def test_checks_and_reviews_by_rest(fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo) -> None:
    fake.add_pull(SLUG, "feature/a", BASE)
    (pr,) = forge.list_prs(repo, BASE)
    forge.record_check(repo, pr.head_sha or "", "lint", "success")
    assert [(c.name, c.status) for c in forge.checks(repo, pr.head_sha or "")] == [("lint", "success")]
    fake.add_review(SLUG, 1, "alice", "COMMENTED")
    fake.add_review(SLUG, 1, "bob", "APPROVED")
    assert [(r.reviewer, r.state) for r in forge.reviews(repo, pr)] == [
        ("@alice", "commented"),
        ("@bob", "approved"),
    ]


# ------------------------------------------------------------------------------------------------ failures


def test_a_failing_get_is_retried_a_bounded_number_of_times(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.add_pull(SLUG, "feature/a", BASE)
    fake.fail("GET", PULLS, status=503, times=2)
    assert len(forge.list_prs(repo, BASE)) == 1
    assert fake.count("GET", PULLS) == 3

    other = GitHubForge(fake.base_url, Secret(fake.token), FAST)
    fake.fail("GET", PULLS, status=502, times=10)
    try:
        with pytest.raises(UnavailableError) as caught:
            other.list_prs(repo, BASE)
    finally:
        other.close()
    assert "502" in caught.value.message
    assert fake.count("GET", PULLS) == 3 + 1 + FAST.retries


def test_a_failing_write_is_not_retried(fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo) -> None:
    fake.fail("POST", r"/repos/acme/app/statuses/\w+", status=500)
    with pytest.raises(UnavailableError):
        forge.record_check(repo, "a" * 40, "lint", "success")
    assert fake.count("POST", r"/repos/acme/app/statuses/\w+") == 1


def test_a_get_slower_than_the_timeout_gives_up_cleanly(fake: FakeGitHub, repo: ForgeRepo) -> None:
    options = GitHubOptions(timeout=1, retries=1, backoff=0.01, backoff_max=0.05)
    slow = GitHubForge(fake.base_url, Secret(fake.token), options)
    fake.fail("GET", PULLS, status=None, sleep=2.5, times=10)
    started = time.perf_counter()
    try:
        with pytest.raises(UnavailableError) as caught:
            slow.list_prs(repo, BASE)
    finally:
        slow.close()
    elapsed = time.perf_counter() - started
    assert "did not answer within 1 s" in caught.value.message
    assert fake.count("GET", PULLS) == 0  # none finished while we waited...
    assert elapsed < options.max_wait + 1.0
    # ...but every attempt reached the server.
    retry_until(lambda: fake.count("GET", PULLS), lambda n: n >= 1 + options.retries, timeout=5)
    assert fake.count("GET", PULLS) == 1 + options.retries


def test_a_slow_get_then_an_answer_succeeds(fake: FakeGitHub, repo: ForgeRepo) -> None:
    options = GitHubOptions(timeout=1, retries=1, backoff=0.01, backoff_max=0.05)
    fake.add_pull(SLUG, "feature/a", BASE)
    slow = GitHubForge(fake.base_url, Secret(fake.token), options)
    fake.fail("GET", PULLS, status=None, sleep=1.5, times=1)
    try:
        assert [p.number for p in slow.list_prs(repo, BASE)] == [1]
    finally:
        slow.close()


def test_the_primary_rate_limit_is_reported_with_its_reset(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fault = fake.primary_rate_limit("GET", PULLS, reset_in=1800)
    reset = int(fault.headers["x-ratelimit-reset"])
    started = time.perf_counter()
    with pytest.raises(UnavailableError) as caught:
        forge.list_prs(repo, BASE)
    assert time.perf_counter() - started < 2.0  # no sleeping until the reset
    expected = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset))
    message = caught.value.message
    assert "rate limit" in message and f"resets at {expected}" in message and "(in 30 min)" in message
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert fake.count("GET", PULLS) == 1


@pytest.mark.parametrize("status", [403, 429])
def test_the_secondary_rate_limit_is_reported_with_retry_after(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo, status: int
) -> None:
    add_branches(fake, "feature/a")
    fault = fake.secondary_rate_limit("POST", PULLS, retry_after=90)
    fault.status = status
    started = time.perf_counter()
    with pytest.raises(UnavailableError) as caught:
        forge.open_pr(repo, spec("feature/a"))
    assert time.perf_counter() - started < 2.0
    assert "secondary rate limit" in caught.value.message and "retry after 90 s" in caught.value.message
    assert fake.pulls(SLUG) == [] and fake.count("POST", PULLS) == 1


def test_a_bad_token_is_reported(fake: FakeGitHub, repo: ForgeRepo) -> None:
    wrong = GitHubForge(fake.base_url, Secret("ghp_WrongToken0123456789abcdefghijklmno"), FAST)
    try:
        with pytest.raises(UnavailableError) as caught:
            wrong.list_prs(repo, BASE)
    finally:
        wrong.close()
    assert "refused the token" in caught.value.message and "GH_TOKEN" in (caught.value.hint or "")


def test_the_token_never_appears_in_logs_errors_or_reprs(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_branches(fake, "feature/a")
    forge.open_pr(repo, spec("feature/a"))
    forge.pr_details(repo, forge.list_prs(repo, BASE))
    fake.fail("GET", r"/repos/acme/app/pulls/1/reviews", status=500, times=10)
    errors: list[str] = []
    try:
        forge.reviews(repo, PullRequest("app", 1, BASE, "feature/a", "t", "open"))
    except CoditectError as exc:
        errors += [exc.message, str(exc), repr(exc), exc.hint or ""]
    assert errors, "the injected 500s should have failed the call"
    assert any(r.name.startswith("github") for r in caplog.records), (
        "PyGithub logged nothing: the check is moot"
    )
    everything = caplog.text + "".join(errors) + repr(forge) + repr(forge.options)
    assert fake.token not in everything


# ------------------------------------------------------------------------------------------------ writing


def test_merge_with_each_strategy_and_the_head_guard(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    for head in ("feature/a", "feature/b", "feature/c", "feature/d"):
        fake.add_pull(SLUG, head, BASE)
    fake.repos[SLUG].mergeable[4] = False
    prs = {p.number: p for p in forge.list_prs(repo, BASE)}
    with pytest.raises(CheckFailed) as moved:
        forge.merge_pr(repo, prs[1], "squash", expected_head="f" * 40)
    assert "Head branch was modified" in moved.value.message
    for number, strategy in ((1, "squash"), (2, "merge"), (3, "rebase")):
        done = forge.merge_pr(
            repo, prs[number], strategy, title=prs[number].title, expected_head=prs[number].head_sha
        )  # type: ignore[arg-type]
        assert done.pr.state == "merged" and len(done.commit) == 40 and not done.already
        assert fake.repos[SLUG].pulls[number]["merge_method"] == strategy
    with pytest.raises(CheckFailed):
        forge.merge_pr(repo, prs[4], "merge")
    again = GitHubForge(fake.base_url, Secret(fake.token), FAST)
    try:
        merged = {p.number: p for p in again.list_prs(repo, BASE)}
        assert [merged[n].state for n in (1, 2, 3, 4)] == ["merged", "merged", "merged", "open"]
        assert again.merge_pr(repo, merged[1], "squash").already
    finally:
        again.close()


def test_a_502_after_the_merge_reads_the_pr_again(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.add_pull(SLUG, "feature/a", BASE)
    (pr,) = forge.list_prs(repo, BASE)
    fake.fail("PUT", r"/repos/acme/app/pulls/1/merge", status=502, after=True)
    done = forge.merge_pr(repo, pr, "squash", expected_head=pr.head_sha)
    assert done.pr.state == "merged" and done.commit == fake.repos[SLUG].pulls[1]["merge_commit_sha"]
    assert fake.count("PUT", r"/repos/acme/app/pulls/1/merge") == 1


def test_comment_and_release(fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo) -> None:
    fake.add_pull(SLUG, "feature/a", BASE)
    (pr,) = forge.list_prs(repo, BASE)
    comment = forge.comment_pr(repo, pr, "Checkpoint 1: merged after the gates passed.")
    assert comment.author == "@coditect-bot" and fake.repos[SLUG].comments[1][0]["body"].startswith(
        "Checkpoint 1"
    )
    sha = "9" * 40
    first = forge.release(repo, "v0.1.0", sha, "Phase 1", "Release notes")
    assert first.created and first.url == f"{fake.root_url}/{SLUG}/releases/tag/v0.1.0"
    assert fake.repos[SLUG].releases[0]["target_commitish"] == sha
    assert not forge.release(repo, "v0.1.0", sha, "Phase 1").created
    assert len(fake.repos[SLUG].releases) == 1


def test_an_unknown_repository(fake: FakeGitHub, forge: GitHubForge) -> None:
    missing = ForgeRepo("gone", Path("."), None, "acme/gone")
    with pytest.raises(UnavailableError) as caught:
        forge.list_prs(missing, BASE)
    assert "404" in caught.value.message
