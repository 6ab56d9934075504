"""The GitHub forge against GitHub's real behaviour, as the fake server reproduces it (real HTTP, PyGithub's
transport): deleted reviewers, self-approval, app and Actions tokens, partial GraphQL answers and GraphQL rate
limits in an HTTP 200, secondary limits without ``retry-after``, checks beyond the first page, "Base branch
was modified", merge queues, branch protection and rulesets, team owners, releases on existing tags, 403s for
missing permissions, mergeability not computed yet, and conditional requests.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from fakegithub import FakeGitHub

from coditect_cli.domain.prs import OwnerNeed, PrView, judge, not_ready_reason
from coditect_cli.errors import (
    CheckFailed,
    ExitCode,
    PermissionDenied,
    RefusedError,
    UnavailableError,
    UsageError,
)
from coditect_cli.forge.base import ForgeRepo, PullRequest, team_reviews
from coditect_cli.forge.github import GitHubForge, GitHubOptions
from coditect_cli.forge.select import Secret

SLUG = "acme/app"  # the conftest's repository and base branch
BASE = "phase-1-integration"
FAST = GitHubOptions(timeout=2, retries=2, backoff=0.01, backoff_max=0.05, write_interval=0, queue_poll=0.01)

ALICE = "ghp_AliceToken0123456789abcdefghijklmnopqr"
APP = "ghs_AppInstallationToken0123456789abcdefgh"
ACTIONS = "ghs_ActionsGithubToken0123456789abcdefghi"
MERGE = r"/repos/acme/app/pulls/\d+/merge"


def forge_for(fake: FakeGitHub, token: str, **options: object) -> GitHubForge:
    return GitHubForge(fake.base_url, Secret(token), replace(FAST, **options))  # type: ignore[arg-type]


def only(forge: GitHubForge, repo: ForgeRepo) -> PullRequest:
    (pr,) = [p for p in forge.list_prs(repo, BASE) if p.state == "open"]
    return pr


# ------------------------------------------------------------------------------------------------ reviews


def test_a_deleted_reviewer_is_ghost_not_a_crash(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.add_pull(SLUG, "feature/a", BASE)
    fake.add_review(SLUG, 1, None, "APPROVED")  # the account was deleted: GitHub sends "user": null
    fake.add_review(SLUG, 1, "bob", "APPROVED")
    pr = only(forge, repo)
    assert [(r.reviewer, r.state) for r in forge.reviews(repo, pr)] == [
        ("@ghost", "approved"),
        ("@bob", "approved"),
    ]
    details = forge.pr_details(repo, [pr])[1]
    assert [r.reviewer for r in details.reviews] == ["@ghost", "@bob"]


def test_approval_comes_from_the_owner_never_from_the_token_that_opened_the_pr(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.add_token(ALICE, "alice")
    fake.add_pull(SLUG, "feature/a", BASE)  # opened with the bot's token
    pr = only(forge, repo)
    assert pr.author == "@coditect-bot"
    with pytest.raises(UsageError) as other:
        forge.review_pr(repo, pr, "@alice", "approved", "")
    assert "token's account (@coditect-bot), not by @alice" in other.value.message
    with pytest.raises(UsageError) as own:
        forge.review_pr(repo, pr, "@coditect-bot", "approved", "")
    assert "does not let @coditect-bot review its own pull request #1" in own.value.message
    assert own.value.exit_code == ExitCode.USAGE and "GH_TOKEN" in (own.value.hint or "")
    assert fake.count("POST", r"/repos/acme/app/pulls/1/reviews") == 0  # refused before sending

    alice = forge_for(fake, ALICE)
    try:
        given = alice.review_pr(repo, only(alice, repo), "@alice", "approved", "")
    finally:
        alice.close()
    assert (given.reviewer, given.state, given.head_sha) == ("@alice", "approved", pr.head_sha)
    assert fake.repos[SLUG].reviews[1][-1]["login"] == "alice"


def test_a_team_owner_is_satisfied_by_any_member(fake: FakeGitHub, repo: ForgeRepo) -> None:
    fake.add_token(ALICE, "alice")
    fake.add_team("acme/backend-team", ["Alice", "carol"])
    fake.add_team("acme/web-team", ["dave"])
    fake.add_pull(SLUG, "feature/a", BASE)
    alice = forge_for(fake, ALICE)
    try:
        pr = only(alice, repo)
        with pytest.raises(UsageError) as outsider:
            alice.review_pr(repo, pr, "@acme/web-team", "approved", "")
        assert "not a member of @acme/web-team" in outsider.value.message
        alice.review_pr(repo, pr, "@acme/backend-team", "approved", "")
        members = alice.team_members(repo, "@acme/backend-team")
        assert members == frozenset({"alice", "carol"})
        assert alice.team_members(repo, "@acme/ghosts") is None and any(
            "@acme/ghosts" in n for n in alice.notes
        )
        reviews = alice.pr_details(repo, [pr])[1].reviews
    finally:
        alice.close()
    needs = [OwnerNeed("@acme/backend-team", ("src/api.py",)), OwnerNeed("@acme/web-team", ("web/app.ts",))]
    plain = judge(needs, reviews)
    assert [n.state for n in plain] == ["pending", "pending"]  # a login never equals a team's name
    judged = judge(needs, team_reviews(reviews, {"@acme/backend-team": members or frozenset()}))
    assert [n.state for n in judged] == ["approved", "pending"]
    assert fake.count("GET", "/orgs/acme/teams/backend-team/members") == 1  # read once per run


@pytest.mark.parametrize(("kind", "viewer_known"), [("app", True), ("actions", False)])
def test_app_and_actions_tokens_review_without_get_user(
    fake: FakeGitHub, repo: ForgeRepo, kind: str, viewer_known: bool
) -> None:
    login = "coditect-app[bot]" if kind == "app" else "github-actions[bot]"
    token = APP if kind == "app" else ACTIONS
    fake.add_token(token, login, kind)
    fake.add_pull(SLUG, "feature/a", BASE)
    bot = forge_for(fake, token)
    try:
        pr = only(bot, repo)
        given = bot.review_pr(repo, pr, f"@{login}", "approved", "")
        assert given.reviewer == f"@{login}"
        assert bot.viewer() == (login if viewer_known else None)
        assert any("does not say which account" in n for n in bot.notes) is not viewer_known
    finally:
        bot.close()
    assert fake.count("GET", "/user") == 1  # asked once, answered 403, never again
    assert fake.repos[SLUG].reviews[1][-1]["login"] == login


def test_github_refusing_self_approval_is_a_clear_error_not_a_raw_422(
    fake: FakeGitHub, repo: ForgeRepo
) -> None:
    fake.add_token(ACTIONS, "github-actions[bot]", "actions")
    fake.add_pull(SLUG, "feature/a", BASE, author="github-actions[bot]")
    bot = forge_for(fake, ACTIONS)
    try:
        pr = only(bot, repo)
        with pytest.raises(UsageError) as caught:  # the identity is unknown: GitHub's 422 is what says it
            bot.review_pr(repo, pr, "@codi-backend", "approved", "")
    finally:
        bot.close()
    assert "does not let the token's account review its own pull request #1" in caught.value.message
    assert "Can not approve your own pull request" in caught.value.message
    assert fake.count("POST", r"/repos/acme/app/pulls/1/reviews") == 1


# ------------------------------------------------------------------------------------------------ GraphQL


def test_one_missing_pr_does_not_lose_the_batch(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    for head in ("feature/a", "feature/b"):
        fake.add_pull(SLUG, head, BASE)
    fake.add_review(SLUG, 2, "bob", "APPROVED")
    prs = forge.list_prs(repo, BASE)
    gone = PullRequest("app", 7, BASE, "feature/gone", "deleted meanwhile", "open")
    details = forge.pr_details(repo, [*prs, gone])
    assert sorted(details) == [1, 2] and [r.reviewer for r in details[2].reviews] == ["@bob"]
    assert any("did not find #7" in note for note in forge.notes)


def test_a_graphql_rate_limit_inside_an_http_200_is_reported_with_its_reset(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.add_pull(SLUG, "feature/a", BASE)
    reset = int(time.time()) + 1200
    fake.graphql_error(
        "RATE_LIMITED",
        "API rate limit exceeded for user ID 1.",
        headers={
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-resource": "graphql",
        },
    )
    with pytest.raises(UnavailableError) as caught:
        forge.pr_details(repo, forge.list_prs(repo, BASE))
    expected = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset))
    assert "GraphQL rate limit is exhausted" in caught.value.message
    assert f"resets at {expected}" in caught.value.message and "400" not in caught.value.message
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert fake.count("POST", "/api/graphql") == 1  # not retried into the limit


def test_a_secondary_limit_without_retry_after_is_not_the_hourly_limit(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.repos[SLUG].branches["feature/a"] = "a" * 40
    fake.secondary_rate_limit("POST", "/repos/acme/app/pulls", retry_after=None)
    with pytest.raises(UnavailableError) as caught:
        from coditect_cli.forge.base import ProposalSpec

        forge.open_pr(repo, ProposalSpec(BASE, "feature/a", "t", "b"))
    assert "secondary rate limit" in caught.value.message and "at least a minute" in caught.value.message
    assert "exhausted" not in caught.value.message


def test_checks_beyond_the_first_hundred_are_read(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.add_pull(SLUG, "feature/a", BASE)
    pr = only(forge, repo)
    sha = pr.head_sha or ""
    for i in range(130):
        forge.record_check(repo, sha, f"gate-{i:03d}", "success")
    for i in range(110):
        fake.add_check_run(SLUG, sha, f"ci-{i:03d}", "completed", "success")
    fake.add_check_run(SLUG, sha, "ci-hidden", "completed", "failure")  # the 241st context
    forge.record_check(repo, sha, "gate-last", "failure")
    rest = forge.checks(repo, sha)
    assert len(rest) == 242 and {c.name for c in rest if c.status == "failure"} == {"ci-hidden", "gate-last"}
    assert fake.count("GET", rf"/repos/acme/app/commits/{sha}/status") == 2  # 100 + 31 statuses
    assert fake.count("GET", rf"/repos/acme/app/commits/{sha}/check-runs") == 2
    details = forge.pr_details(repo, [pr])[1]
    assert len(details.checks) == 242
    assert {c.name for c in details.checks if c.status == "failure"} == {"ci-hidden", "gate-last"}
    assert fake.count("POST", "/api/graphql") == 3  # the details, then two more pages of contexts


def test_mergeability_not_computed_yet_is_asked_again(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.add_pull(SLUG, "feature/a", BASE)
    fake.repos[SLUG].unknown_mergeable[1] = 1
    details = forge.pr_details(repo, forge.list_prs(repo, BASE))
    assert details[1].mergeable is True and fake.count("POST", "/api/graphql") == 2


# ------------------------------------------------------------------------------------------------ merging


def test_base_branch_was_modified_is_retried_a_bounded_number_of_times(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.add_pull(SLUG, "feature/a", BASE)
    fake.add_pull(SLUG, "feature/b", BASE)
    fake.repos[SLUG].base_modified[1] = 2
    prs = {p.number: p for p in forge.list_prs(repo, BASE)}
    done = forge.merge_pr(repo, prs[1], "squash", expected_head=prs[1].head_sha)
    assert done.pr.state == "merged" and fake.count("PUT", MERGE) == 3
    assert any("base was modified 2 time(s)" in n for n in forge.notes)
    fake.repos[SLUG].base_modified[2] = 99
    with pytest.raises(CheckFailed) as caught:
        forge.merge_pr(repo, prs[2], "squash")
    assert "Base branch was modified" in caught.value.message
    assert fake.count("PUT", MERGE) == 3 + 1 + FAST.base_retries


def test_a_branch_that_requires_the_merge_queue_is_merged_through_it(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.add_rule(SLUG, BASE, "merge_queue", merge_method="SQUASH", grouping_strategy="ALLGREEN")
    for head in ("feature/a", "feature/b"):
        fake.add_pull(SLUG, head, BASE)
    fake.repos[SLUG].queue_fail.add(2)
    prs = {p.number: p for p in forge.list_prs(repo, BASE)}
    done = forge.merge_pr(repo, prs[1], "squash", expected_head=prs[1].head_sha)
    assert done.pr.state == "merged" and done.commit == fake.repos[SLUG].pulls[1]["merge_commit_sha"]
    assert fake.count("PUT", MERGE) == 0  # the rules said "merge queue": no doomed PUT first
    assert any("merge queue" in n for n in forge.notes)
    with pytest.raises(CheckFailed) as failed:
        forge.merge_pr(repo, prs[2], "squash")
    assert "took #2 of acme/app out without merging it" in failed.value.message
    assert not fake.repos[SLUG].pulls[2]["merged"]


def test_a_failed_enqueue_is_a_write_not_retried(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.add_rule(SLUG, BASE, "merge_queue", merge_method="SQUASH")
    fake.add_pull(SLUG, "feature/a", BASE)
    pr = only(forge, repo)
    fake.fail("POST", "/api/graphql", status=502, times=5)
    with pytest.raises(UnavailableError):
        forge.merge_pr(repo, pr, "squash")
    assert fake.count("POST", "/api/graphql") == 1 and fake.repos[SLUG].queue == {}


def test_a_merge_queue_405_enqueues_and_the_wait_is_bounded(fake: FakeGitHub, repo: ForgeRepo) -> None:
    fake.add_rule(SLUG, BASE, "merge_queue", merge_method="MERGE")
    fake.fail("GET", r"/repos/acme/app/rules/branches/.*", status=404)  # rules unknown: GitHub's 405 tells
    fake.add_pull(SLUG, "feature/a", BASE)
    fake.queue_polls = 1000
    slow = forge_for(fake, fake.token, queue_wait=0.3)
    try:
        pr = only(slow, repo)
        with pytest.raises(UnavailableError) as caught:
            slow.merge_pr(repo, pr, "merge")
    finally:
        slow.close()
    assert fake.count("PUT", MERGE) == 1
    assert "still in GitHub's merge queue (AWAITING_CHECKS) after 0.3 s" in caught.value.message


# ------------------------------------------------------------------------------------------------ rules


def test_protection_and_rulesets_decide_readiness(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.protect(SLUG, BASE, checks=("ci/build",), approvals=1, code_owners=True)
    fake.add_rule(
        SLUG, BASE, "pull_request", required_approving_review_count=1, allowed_merge_methods=["squash"]
    )
    fake.add_token(ALICE, "alice")
    fake.add_pull(SLUG, "feature/a", BASE)
    fake.add_pull(SLUG, "feature/draft", BASE, draft=True)
    pr = only_number(forge, repo, 1)
    sha = pr.head_sha or ""
    fake.add_check_run(SLUG, sha, "lint", "completed", "failure")  # not required
    fake.add_check_run(SLUG, sha, "ci/build", "in_progress", None)  # required, pending
    forge.record_check(repo, sha, "unit", "success")  # coditect's own gate: always counts

    rules = forge.branch_rules(repo, BASE)
    assert rules.known and rules.read == ("repository", "protection", "rulesets")
    assert (rules.required_checks, rules.required_approvals, rules.code_owner_reviews) == (
        ("ci/build",),
        1,
        True,
    )
    assert rules.merge_methods == ("squash",) and not rules.allows("merge") and not rules.merge_queue

    details = forge.pr_details(repo, forge.list_prs(repo, BASE))
    one = details[1]
    assert {c.name: c.required for c in one.checks} == {"lint": False, "ci/build": True, "unit": None}
    assert one.blockers == (
        "required check(s) of phase-1-integration not passed yet: ci/build (pending)",
        "GitHub's rule: phase-1-integration requires 1 approving review(s) including the code owners "
        "(reviewDecision REVIEW_REQUIRED)",
    )
    assert "it is a draft (GitHub does not merge drafts)" in details[2].blockers
    view = PrView(
        "backend", "app", pr.head, BASE, "github", pr,
        needs=(OwnerNeed("@alice", ("src/a.py",), state="approved"),),
        checks=one.checks, mergeable=True, files=("src/a.py",), forge_blockers=one.blockers,
    )  # fmt: skip
    assert view.checks_state == "failure" and view.gating_checks_state == "pending"  # lint does not block
    assert not view.ready and (not_ready_reason(view) or "").startswith("github forge: required check(s)")

    fake.add_check_run(SLUG, sha, "ci/build", "completed", "success")
    fake.repos[SLUG].check_runs[sha] = [
        r for r in fake.repos[SLUG].check_runs[sha] if r["status"] == "completed"
    ]
    alice = forge_for(fake, ALICE)
    try:
        alice.review_pr(repo, only_number(alice, repo, 1), "@alice", "approved", "")
        after = alice.pr_details(repo, alice.list_prs(repo, BASE))[1]
        assert after.blockers == ()
        ready = replace(view, checks=after.checks, forge_blockers=after.blockers)
        assert ready.ready and not_ready_reason(ready) is None
        with pytest.raises(CheckFailed) as refused:
            alice.merge_pr(repo, only_number(alice, repo, 1), "merge")
        assert "Merge commits are not allowed" in refused.value.message
        assert alice.merge_pr(repo, only_number(alice, repo, 1), "squash").pr.state == "merged"
    finally:
        alice.close()
    # Read once per run (per forge): repository settings, protection, rulesets.
    assert fake.count("GET", rf"/repos/acme/app/branches/{BASE}/protection") == 2


def only_number(forge: GitHubForge, repo: ForgeRepo, number: int) -> PullRequest:
    return next(p for p in forge.list_prs(repo, BASE) if p.number == number)


def test_protection_unreadable_without_admin_falls_back_to_rulesets(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    fake.repos[SLUG].protection_status = 403
    fake.add_rule(SLUG, BASE, "required_linear_history")
    rules = forge.branch_rules(repo, BASE)
    assert rules.read == ("repository", "rulesets") and rules.linear_history and not rules.allows("merge")
    assert any("cannot read the branch protection" in n and "403" in n for n in rules.notes)
    unprotected = forge.branch_rules(repo, "main")
    assert (
        unprotected.known
        and unprotected.required_checks == ()
        and unprotected.merge_methods
        == (
            "squash",
            "merge",
            "rebase",
        )
    )


# ------------------------------------------------------------------------------------------------ releases, errors


def test_a_release_on_an_existing_tag_reports_the_tags_commit(
    fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo
) -> None:
    tagged, other = "7" * 40, "8" * 40
    fake.repos[SLUG].refs["refs/tags/v1.0.0"] = tagged
    with pytest.raises(RefusedError) as refused:
        forge.release(repo, "v1.0.0", other, "Phase 1")
    assert f"already points at {tagged[:12]}, not {other[:12]}" in refused.value.message
    assert fake.repos[SLUG].releases == []
    made = forge.release(repo, "v1.0.0", tagged, "Phase 1")
    assert made.created and made.sha == tagged
    assert "target_commitish" not in fake.requests[-1].query  # nothing asked of a field GitHub ignores here
    # An annotated tag is peeled to its commit.
    fake.repos[SLUG].tag_objects["9" * 40] = {"sha": tagged, "type": "commit", "tag": "v2.0.0"}
    fake.repos[SLUG].refs["refs/tags/v2.0.0"] = "9" * 40
    assert forge.release(repo, "v2.0.0", tagged, "Phase 2").sha == tagged
    with pytest.raises(RefusedError):
        forge.release(repo, "v2.0.0", other, "Phase 2")


def test_a_missing_permission_is_not_an_outage(fake: FakeGitHub, forge: GitHubForge, repo: ForgeRepo) -> None:
    fake.fail(
        "POST",
        r"/repos/acme/app/statuses/\w+",
        status=403,
        body={"message": "Resource not accessible by personal access token", "documentation_url": "x"},
    )
    with pytest.raises(PermissionDenied) as caught:
        forge.record_check(repo, "a" * 40, "lint", "success")
    assert caught.value.exit_code == ExitCode.ERROR and caught.value.exit_code != ExitCode.UNAVAILABLE
    assert "Resource not accessible by personal access token" in caught.value.message
    assert "Commit statuses" in (caught.value.hint or "")


def test_conditional_requests_answer_304_on_an_unchanged_repository(
    fake: FakeGitHub, repo: ForgeRepo, tmp_path: Path
) -> None:
    for head in ("feature/a", "feature/b"):
        fake.add_pull(SLUG, head, BASE)
    first = forge_for(fake, fake.token, cache_dir=tmp_path)
    try:
        listed = first.list_prs(repo, BASE)
        first.branch_rules(repo, BASE)
    finally:
        first.close()
    fake.reset_log()
    second = forge_for(fake, fake.token, cache_dir=tmp_path)  # a later command
    try:
        assert second.list_prs(repo, BASE) == listed
        second.branch_rules(repo, BASE)
        assert second.conditional_hits == 3  # the list, the settings, the rulesets (protection: 404)
    finally:
        second.close()
    assert [r.status for r in fake.requests if r.status == 304] == [304, 304, 304]
    fake.add_pull(SLUG, "feature/c", BASE)
    third = forge_for(fake, fake.token, cache_dir=tmp_path)
    try:
        assert len(third.list_prs(repo, BASE)) == 3 and third.conditional_hits == 0
    finally:
        third.close()
