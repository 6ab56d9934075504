"""The pull-request rules on the shipped example, with no git, store or forge: owners, verdicts, readiness."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from helpers import EXAMPLE_TEXT

from coditect_cli.domain.loader import load_manifest_text
from coditect_cli.domain.manifest import Manifest
from coditect_cli.domain.prs import (
    MAINTAINER,
    OwnerNeed,
    PrView,
    code_owners,
    judge,
    need_text,
    not_ready_reason,
    owner_needs,
)
from coditect_cli.forge.base import Check, PullRequest, Review

ARCHITECT = "@codi-code-architect"
FRONTEND = "@codi-frontend-specialist"
DEVOPS = "@codi-devops-engineer"


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest_text(EXAMPLE_TEXT, "phase-1.yaml").manifest


def test_code_owners_lists_each_owner_once_in_order_of_first_rule(manifest: Manifest) -> None:
    assert code_owners(manifest, "backend") == [ARCHITECT, DEVOPS, "@codi-documentation-writer", FRONTEND]


def test_a_shared_path_needs_every_owner_and_unowned_paths_are_reported(manifest: Manifest) -> None:
    needs, unowned = owner_needs(
        manifest, "backend", ["src/api/v1/auth.py", "openapi.yaml", "Dockerfile", "x.txt"]
    )
    by_owner = {n.owner: n for n in needs}
    assert by_owner[ARCHITECT].paths == ("src/api/v1/auth.py", "openapi.yaml")
    assert by_owner[ARCHITECT].shared_paths == ("openapi.yaml",)
    assert by_owner[FRONTEND].shared and by_owner[FRONTEND].paths == ("openapi.yaml",)
    assert not by_owner[DEVOPS].shared
    assert unowned == ["x.txt"]


def test_without_an_owned_path_the_author_streams_owner_is_needed(manifest: Manifest) -> None:
    needs, _ = owner_needs(manifest, "backend", ["x.txt"], author="deploy")
    assert [(n.owner, n.paths) for n in needs] == [(DEVOPS, ()), (MAINTAINER, ("x.txt",))]


def test_unowned_paths_need_a_maintainer_and_other_streams_paths_are_foreign(manifest: Manifest) -> None:
    # Without `maintainers:` nobody can approve an unowned path: the PR is never ready.
    (need,) = owner_needs(manifest, "backend", ["x.txt"])[0]
    assert (need.owner, need.paths, need.any_of) == (MAINTAINER, ("x.txt",), ())
    assert "the manifest names none" in need_text(need)
    with_leads = manifest.model_copy(update={"maintainers": ("@lead", "@org/release")})
    needs, unowned = owner_needs(
        with_leads, "backend", ["src/api/v1/auth.py", "Dockerfile", "ci/x.py"], "backend"
    )
    by_owner = {n.owner: n for n in needs}
    assert unowned == ["ci/x.py"]
    assert by_owner[ARCHITECT].foreign_paths == ()  # the stream's own path
    assert by_owner[DEVOPS].foreign_paths == ("Dockerfile",)  # the deploy stream's
    assert need_text(by_owner[DEVOPS]) == f"needs approval by {DEVOPS} for Dockerfile"
    maintainers = by_owner[MAINTAINER]
    assert (
        need_text(maintainers)
        == "ci/x.py (owned by no stream) need approval by a maintainer (@lead or @org/release)"
    )
    # Any one maintainer's approval meets it; the stream's own owner's does not.
    assert judge([maintainers], [Review(ARCHITECT, "approved")])[0].state == "pending"
    assert judge([maintainers], [Review("@ORG/release", "approved")])[0].state == "approved"


def test_an_approval_counts_for_its_head_unless_the_commits_since_leave_its_paths_alone() -> None:
    need = OwnerNeed(FRONTEND, ("openapi.yaml",), ("openapi.yaml",))
    given = [Review(FRONTEND, "approved", head_sha="a" * 40)]
    assert judge([need], given, "a" * 40)[0].state == "approved"
    # Pushed since: only another owner's file changed -> still approved, and which head it approved is kept.
    kept = judge([need], given, "b" * 40, {"a" * 40: frozenset({"src/api/v1/auth.py"})})[0]
    assert (kept.state, kept.reviewed_head) == ("approved", "a" * 40)
    # The shared file changed -> stale, naming the path.
    stale = judge([need], given, "b" * 40, {"a" * 40: frozenset({"openapi.yaml", "src/x.py"})})[0]
    assert (stale.state, stale.stale_paths) == ("stale", ("openapi.yaml",))
    assert need_text(stale) == (
        f"approval by {FRONTEND} went stale (commits pushed since {FRONTEND} approved aaaaaaaaaaaa change openapi.yaml)"
    )
    # An approved head that is not known, or a review that does not say its head: stale.
    assert judge([need], given, "b" * 40, {"a" * 40: None})[0].state == "stale"
    assert judge([need], [Review(FRONTEND, "approved")], "b" * 40)[0].state == "stale"


def test_judge_takes_each_owners_latest_verdict_and_ignores_comments() -> None:
    needs = [OwnerNeed(ARCHITECT, ("a",)), OwnerNeed(FRONTEND, ("b",)), OwnerNeed(DEVOPS, ("c",))]
    reviews = [
        Review("codi-code-architect", "changes_requested"),
        Review(ARCHITECT, "approved"),
        Review(FRONTEND, "changes_requested"),
        Review(FRONTEND, "commented"),
    ]
    assert [n.state for n in judge(needs, reviews)] == ["approved", "changes_requested", "pending"]


# Open, approved by the one owner it needs, mergeable, no checks: ready. Each case below breaks one thing.
READY = PrView(
    stream="backend",
    repo="backend",
    branch="feature/x",
    base="phase-1-integration",
    forge="local",
    pr=PullRequest("backend", 7, "phase-1-integration", "feature/x", "t", "open", "abc"),
    needs=(OwnerNeed(ARCHITECT, ("src/a.py",), state="approved"),),
    mergeable=True,
    files=("src/a.py",),
)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"pr": None}, "no open pull request"),
        ({"files": None}, "its changed files are unknown, so are the owners it needs"),
        ({"reviews": (Review(DEVOPS, "changes_requested"),)}, f"changes requested by {DEVOPS}"),
        ({"needs": (OwnerNeed(ARCHITECT, ("src/a.py",)),)}, f"needs approval by {ARCHITECT}"),
        (
            {
                "needs": (
                    OwnerNeed(
                        ARCHITECT, ("src/a.py",), state="stale", approved_by=ARCHITECT, stale_reason="x"
                    ),
                )
            },
            f"approval by {ARCHITECT} went stale (x)",
        ),
        ({"checks": (Check("unit", "failure"), Check("lint", "success"))}, "failing check(s): unit"),
        ({"mergeable": False}, "conflicts with its base"),
    ],
)
def test_not_ready_reason_agrees_with_ready(changes: dict[str, Any], reason: str | None) -> None:
    view = replace(READY, **changes)
    assert not_ready_reason(view) == reason
    assert view.ready is (reason is None)
