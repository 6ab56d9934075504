"""Contract tests: the GitHub forge against answers the real api.github.com gave (PyGithub's ReplayData).

``scripts/fetch_replaydata.py`` (run by ``.ci/run``) downloads PyGithub's source distribution and keeps its
``tests/ReplayData``; :class:`fakegithub.replay.ReplayGitHub` answers with the recorded status codes, headers
and bodies. Every expectation is computed from the recorded body itself, so a forge that misreads GitHub's
payloads fails here whatever the fake server does. Nothing skips: without the recordings the tests fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fakegithub.replay import Exchange, ReplayGitHub

from coditect_cli.errors import ExitCode, UnavailableError
from coditect_cli.forge.base import ForgeRepo, ProposalSpec, PullRequest
from coditect_cli.forge.github import GitHubForge, GitHubOptions
from coditect_cli.forge.select import Secret

FAST = GitHubOptions(timeout=5, retries=0, backoff=0.01, backoff_max=0.05, write_interval=0, queue_poll=0.01)
TOKEN = "ghp_ReplayToken0123456789abcdefghijklmnopq"
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="session")
def replay_dir() -> Path:
    """PyGithub's ReplayData: ``$CODITECT_REPLAYDATA``, else fetched (once) by scripts/fetch_replaydata.py."""
    given = os.environ.get("CODITECT_REPLAYDATA")
    if given:
        return Path(given)
    sys.path.insert(0, str(SCRIPTS))
    try:
        from fetch_replaydata import fetch
    finally:
        sys.path.remove(str(SCRIPTS))
    try:
        return fetch()
    except RuntimeError as exc:
        pytest.fail(f"the recorded GitHub exchanges are missing and could not be fetched: {exc}")


@pytest.fixture
def replay(replay_dir: Path) -> Iterator[ReplayGitHub]:
    with ReplayGitHub(replay_dir) as server:
        yield server


def forge_on(server: ReplayGitHub) -> GitHubForge:
    return GitHubForge(server.base_url, Secret(TOKEN), FAST)


def repo(slug: str) -> ForgeRepo:
    return ForgeRepo(slug.split("/")[1], Path("."), None, slug)


def pull(slug: str, number: int, head_sha: str | None = None, base: str = "master") -> PullRequest:
    return PullRequest(slug.split("/")[1], number, base, "topic", "t", "open", head_sha)


# ------------------------------------------------------------------------------------------------ reviews


def test_reviews_as_github_sends_them_including_a_deleted_reviewer(replay: ReplayGitHub) -> None:
    def deleted_first(exchange: Exchange) -> None:
        body = exchange.json()
        body[0]["user"] = None  # the schema's nullable user: the account was deleted
        import json

        exchange.body = json.dumps(body)

    (recorded,) = replay.load(
        "PullRequestReview.testAttributes.txt",
        where=lambda e: e.path.endswith("/reviews"),
        edit=deleted_first,
    )
    body: list[dict[str, Any]] = recorded.json()
    forge = forge_on(replay)
    try:
        got = forge.reviews(repo("PyGithub/PyGithub"), pull("PyGithub/PyGithub", 538))
    finally:
        forge.close()
    kept = [r for r in body if r["state"] in ("APPROVED", "CHANGES_REQUESTED", "COMMENTED")]
    assert kept, "the recording has reviews"
    expected = [
        (f"@{(r['user'] or {}).get('login') or 'ghost'}", r["state"].lower(), r["commit_id"]) for r in kept
    ]
    assert [(r.reviewer, r.state, r.head_sha) for r in got] == expected
    assert got[0].reviewer == "@ghost"
    assert replay.unmatched == []


def test_a_review_when_the_account_cannot_be_read(replay: ReplayGitHub) -> None:
    (recorded,) = replay.load("PullRequest1169.testReviewApproveWithoutBody.txt")
    forge = forge_on(replay)
    try:
        given = forge.review_pr(
            repo("coleslaw-org/coleslaw"), pull("coleslaw-org/coleslaw", 173, "abc"), "@owner", "approved", ""
        )
    finally:
        forge.close()
    body = recorded.json()
    assert (given.reviewer, given.state) == (f"@{body['user']['login']}", body["state"].lower())
    assert given.head_sha == body["commit_id"]
    # GET /user and GraphQL's viewer were not there (as for an app token): the review went out regardless.
    assert replay.unmatched == [("GET", "/user"), ("POST", "/graphql")]
    assert any("does not say which account" in n for n in forge.notes)


# ------------------------------------------------------------------------------------------------ pull requests


def test_listing_and_opening_pull_requests(replay: ReplayGitHub) -> None:
    (listed,) = replay.load("Repository.testGetPulls.txt")
    (created,) = replay.load("Repository.testCreatePull.txt")
    forge = forge_on(replay)
    slug = "PyGithub/PyGithub"
    try:
        prs = forge.list_prs(repo(slug), "master")
        made = created.json()
        opened = forge.open_pr(repo(slug), ProposalSpec("master", "coditect/none-yet", "t", "b"))
    finally:
        forge.close()
    expected = sorted(
        (p["number"], p["head"]["ref"], p["head"]["sha"], f"@{p['user']['login']}", p["state"])
        for p in listed.json()
    )
    assert [
        (p.number, p.head, p.head_sha, p.author, "open" if p.state == "open" else "closed") for p in prs
    ] == expected
    assert made["mergeable"] is None  # GitHub's 201 carries "mergeable": null: not computed yet
    assert opened.created and opened.pr.number == made["number"] and opened.pr.head == made["head"]["ref"]
    assert replay.unmatched == []


def test_merging_reads_the_rules_then_merges(replay: ReplayGitHub) -> None:
    replay.load("PullRequest.setUp.txt", where=lambda e: e.path == "/repos/PyGithub/PyGithub")
    merge = replay.load("PullRequest.testMerge.txt", where=lambda e: e.verb == "PUT")[0]
    forge = forge_on(replay)
    try:
        done = forge.merge_pr(repo("PyGithub/PyGithub"), pull("PyGithub/PyGithub", 31), "merge")
    finally:
        forge.close()
    assert done.pr.state == "merged" and done.commit == merge.json()["sha"]
    # Protection and rulesets were not recorded for that repository: 404 means "not protected".
    assert set(replay.unmatched) == {
        ("GET", "/repos/PyGithub/PyGithub/branches/master/protection"),
        ("GET", "/repos/PyGithub/PyGithub/rules/branches/master"),
    }


# ------------------------------------------------------------------------------------------------ checks


def test_statuses_and_check_runs_as_github_sends_them(replay: ReplayGitHub) -> None:
    slug, sha = "edx/edx-platform", "74e70119a23fa3ffb3db19d4590eccfebd72b659"
    (status,) = replay.load("CommitCombinedStatus.setUp.txt")
    runs = replay.load(
        "CheckRun.testGetCheckRunsForRef.txt",
        where=lambda e: "per_page=1" not in e.query,
        alias={
            f"/repos/{slug}/commits/{sha}/check-runs": (
                "/repos/PyGithub/PyGithub/commits/10a7135a04f71e6101f8b013aded8a662d08fd1f/check-runs"
            )
        },
    )[0]
    forge = forge_on(replay)
    try:
        got = forge.checks(repo(slug), sha)
    finally:
        forge.close()
    states = {"success": "success", "failure": "failure", "error": "failure", "pending": "pending"}
    expected = [(s["context"], states[s["state"]]) for s in status.json()["statuses"]]
    for run in runs.json()["check_runs"]:
        good = run["conclusion"] in ("success", "neutral", "skipped")
        expected.append(
            (run["name"], "pending" if run["status"] != "completed" else ("success" if good else "failure"))
        )
    assert [(c.name, c.status) for c in got] == expected and len(got) > 1
    assert replay.unmatched == []


def test_branch_protection_as_github_sends_it(replay: ReplayGitHub) -> None:
    exchanges = replay.load("BranchProtection.setUp.txt")
    protection = next(e for e in exchanges if e.path.endswith("/protection")).json()
    settings = next(e for e in exchanges if e.path == "/repos/curvewise-forks/PyGithub").json()
    forge = forge_on(replay)
    try:
        rules = forge.branch_rules(repo("curvewise-forks/PyGithub"), "master")
    finally:
        forge.close()
    checks = protection.get("required_status_checks") or {}
    reviews = protection.get("required_pull_request_reviews") or {}
    assert rules.read[:2] == ("repository", "protection")
    assert set(rules.required_checks) == set(checks.get("contexts") or [])
    assert rules.strict is bool(checks.get("strict"))
    assert rules.required_approvals == int(reviews.get("required_approving_review_count") or 0)
    assert rules.code_owner_reviews is bool(reviews.get("require_code_owner_reviews"))
    allowed = {m for m, f in (("squash", "allow_squash_merge"), ("merge", "allow_merge_commit"),
                              ("rebase", "allow_rebase_merge")) if settings.get(f, True)}  # fmt: skip
    assert set(rules.merge_methods or ()) == allowed
    assert replay.unmatched == [("GET", "/repos/curvewise-forks/PyGithub/rules/branches/master")]


def test_team_members_as_github_sends_them(replay: ReplayGitHub) -> None:
    recorded = replay.load(
        "Team.testMembers.txt",
        where=lambda e: e.verb == "GET" and e.path.endswith("/members") and e.body not in ("", "[]"),
        alias={"/orgs/beaversoftware/teams/devs/members": "/organizations/1234567/team/12345678/members"},
    )[0]
    forge = forge_on(replay)
    try:
        members = forge.team_members(repo("BeaverSoftware/x"), "@BeaverSoftware/devs")
    finally:
        forge.close()
    assert members == frozenset(m["login"].lower() for m in recorded.json()) and members


# ------------------------------------------------------------------------------------------------ writes


def test_comments_statuses_and_releases_as_github_answers_them(replay: ReplayGitHub) -> None:
    (comment,) = replay.load("PullRequest.testCreateIssueComment.txt")
    (status,) = replay.load("Commit.testCreateStatusWithAllParameters.txt")
    release = next(
        e for e in replay.load("GitRelease.testGetReleaseByTag.txt") if "/releases/tags/" in e.path
    )
    created = replay.load(
        "GitRelease.testCreateGitTagAndRelease.txt",
        where=lambda e: e.verb == "POST" and e.path.endswith("/releases"),
    )[0]
    forge = forge_on(replay)
    try:
        said = forge.comment_pr(repo("PyGithub/PyGithub"), pull("PyGithub/PyGithub", 31), "hello")
        sha = status.path.rsplit("/", 1)[1]
        forge.record_check(repo("jacquev6/PyGithub"), sha, "gate", "success")
        existing = forge.release(repo("EnricoMi/PyGithub"), "v1.55", "a" * 40, "v1.55")
        made = forge.release(repo("rickrickston123/RepoTest"), created.json()["tag_name"], "b" * 40, "r")
    finally:
        forge.close()
    body = comment.json()
    assert (said.id, said.author, said.body) == (body["id"], f"@{body['user']['login']}", body["body"])
    assert not existing.created and existing.url == release.json()["html_url"]
    assert made.created and made.url == created.json()["html_url"] and made.sha == "b" * 40
    # The tags were not recorded (404: no such tag) and neither was the second release (404: none yet).
    assert set(replay.unmatched) == {
        ("GET", "/repos/EnricoMi/PyGithub/git/ref/tags/v1.55"),
        ("GET", f"/repos/rickrickston123/RepoTest/git/ref/tags/{created.json()['tag_name']}"),
        ("GET", f"/repos/rickrickston123/RepoTest/releases/tags/{created.json()['tag_name']}"),
    }


def test_bad_credentials_as_github_answers_them(replay: ReplayGitHub) -> None:
    replay.load("Exceptions.testBadAuthentication.txt")
    forge = GitHubForge(replay.base_url, Secret(TOKEN), replace(FAST, retries=0))
    try:
        with pytest.raises(UnavailableError) as caught:
            forge.viewer()
    finally:
        forge.close()
    assert "refused the token" in caught.value.message and caught.value.exit_code == ExitCode.UNAVAILABLE
    assert TOKEN not in caught.value.message


def test_the_activity_of_a_pull_request_as_github_sends_it(replay: ReplayGitHub) -> None:
    """What the autopilot reads of an open PR (:meth:`GitHubForge.activity`): the reviews, the review comments
    with file and line, the statuses and the check runs with their output, and the annotations of a failing run
    that has no ``output.text``, from answers GitHub gave."""
    slug, sha, number = "PyGithub/PyGithub", "10a7135a04f71e6101f8b013aded8a662d08fd1f", 31
    (reviews,) = replay.load(
        "PullRequestReview.testAttributes.txt",
        where=lambda e: e.path.endswith("/reviews"),
        alias={f"/repos/{slug}/pulls/{number}/reviews": "/repos/PyGithub/PyGithub/pulls/538/reviews"},
    )
    (comments,) = replay.load("PullRequest.testGetReviewComments.txt")
    (status,) = replay.load(
        "CommitCombinedStatus.setUp.txt",
        alias={
            f"/repos/{slug}/commits/{sha}/status": (
                "/repos/edx/edx-platform/commits/74e70119a23fa3ffb3db19d4590eccfebd72b659/status"
            )
        },
    )
    (runs,) = replay.load("CheckRun.testGetCheckRunsForRef.txt", where=lambda e: "per_page=1" not in e.query)
    failing = [
        r
        for r in runs.json()["check_runs"]
        if r["conclusion"] == "failure" and r["output"]["annotations_count"]
    ]
    assert failing, "the recording has a failing check run with annotations"
    (notes,) = replay.load(
        "CheckRun.testListCheckRunAnnotations.txt",
        where=lambda e: e.path.endswith("/annotations") and "per_page=1" not in e.query,
        alias={
            f"/repos/{slug}/check-runs/{failing[0]['id']}/annotations": (
                "/repos/dhruvmanila/pygithub-testing/check-runs/1280914700/annotations"
            )
        },
    )
    forge = forge_on(replay)
    try:
        got = forge.activity(repo(slug), pull(slug, number, sha))
    finally:
        forge.close()
    kept = [r for r in reviews.json() if r["state"] in ("APPROVED", "CHANGES_REQUESTED", "COMMENTED")]
    assert [(r.id, r.body, r.url) for r in got.reviews] == [
        (r["id"], r["body"] or "", r["html_url"]) for r in kept
    ]
    assert [(c.id, c.author, c.path, c.line, c.commit) for c in got.comments] == [
        (
            c["id"],
            f"@{c['user']['login']}",
            c["path"],
            c.get("line") or c.get("original_line"),
            c["commit_id"],
        )
        for c in comments.json()
    ]
    evidence = {c.name: c for c in got.checks}
    for s in status.json()["statuses"]:
        assert (evidence[s["context"]].summary, evidence[s["context"]].url) == (
            s["description"],
            s["target_url"],
        )
    for run in runs.json()["check_runs"]:
        out = run["output"]
        assert evidence[run["name"]].summary == " - ".join(x for x in (out["title"], out["summary"]) if x)
        assert evidence[run["name"]].url == run["details_url"]
    log = evidence[failing[0]["name"]].log
    for note in notes.json():  # the annotations are the failing run's log excerpt: file, line, message
        assert f"{note['path']}:{note['start_line']}: [{note['annotation_level']}] {note['title']}: " in log
        assert note["message"] in log
    assert got.fresh and replay.unmatched == []
