"""The local forge's tables on a real state store: pull requests, reviews, checks, comments."""

from __future__ import annotations

import pytest

from coditect_cli.state import StateError, Store
from coditect_cli.state import forge_records as fr

TOKEN = "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"


def test_open_numbers_per_repository_and_is_idempotent(store: Store) -> None:
    first, created = fr.open_pull_request(store, "app", "int", "feature/a", "A", "", "s1")
    again, created_again = fr.open_pull_request(store, "app", "int", "feature/a", "other", "x", "s2")
    second, _ = fr.open_pull_request(store, "app", "int", "feature/b", "B", "", None)
    other, _ = fr.open_pull_request(store, "web", "int", "feature/a", "C", "", "s3")
    assert (created, created_again) == (True, False)
    assert again == first
    assert [(r.repo, r.number) for r in (first, second, other)] == [("app", 1), ("app", 2), ("web", 1)]
    assert fr.pull_request(store, "app", 2) == second
    assert fr.pull_request(store, "app", 9) is None
    assert fr.find_pull_request(store, "app", "int", "feature/b") == second
    assert fr.find_pull_request(store, "app", "int", "nope") is None


def test_keys_are_stored_as_given_and_free_text_redacted(store: Store) -> None:
    record, _ = fr.open_pull_request(
        store, "app", "int", f"feature/{TOKEN}", f"title {TOKEN}", f"b {TOKEN}", "s"
    )
    assert record.head == f"feature/{TOKEN}"
    assert TOKEN not in record.title + record.body
    review = fr.add_review(store, record.id, f"r {TOKEN}", "approved", f"ok {TOKEN}")
    comment = fr.add_comment(store, record.id, "me", f"hi {TOKEN}")
    check = fr.record_check(store, "app", "s", f"lint {TOKEN}", "failure", f"log {TOKEN}")
    assert TOKEN not in review.reviewer + review.body + comment.body + check.name + (check.log or "")
    assert fr.reviews(store, [record.id]) == [review]
    assert fr.comments(store, record.id) == [comment]


def test_filters_and_unknown_values(store: Store) -> None:
    fr.open_pull_request(store, "app", "int", "feature/a", "A", "", "s1")
    fr.open_pull_request(store, "app", "develop", "int", "land", "", "s2")
    assert [r.base for r in fr.pull_requests(store, repo="app", base="develop")] == ["develop"]
    assert len(fr.pull_requests(store, state="open")) == 2
    with pytest.raises(ValueError, match="pull request state"):
        fr.pull_requests(store, state="weird")
    with pytest.raises(ValueError, match="review state"):
        fr.add_review(store, 1, "r", "lgtm")
    with pytest.raises(ValueError, match="check status"):
        fr.record_check(store, "app", "s1", "unit", "ok")
    with pytest.raises(ValueError, match="merge strategy"):
        fr.mark_pull_request_merged(
            store, 1, head_sha="h", base_sha="b", merge_commit="m", strategy="octopus"
        )
    with pytest.raises(StateError, match="FOREIGN KEY"):
        fr.add_comment(store, 99, "me", "x")


def test_merge_close_and_reopen(store: Store) -> None:
    a, _ = fr.open_pull_request(store, "app", "int", "feature/a", "A", "", "s1")
    b, _ = fr.open_pull_request(store, "app", "int", "feature/b", "B", "", "s2")
    merged = fr.mark_pull_request_merged(
        store, a.id, head_sha="h", base_sha="b", merge_commit="m", strategy="squash"
    )
    assert (merged.state, merged.merge_commit, merged.strategy) == ("merged", "m", "squash")
    with pytest.raises(StateError, match="#1 of app is merged, not open"):
        fr.mark_pull_request_merged(
            store, a.id, head_sha="h", base_sha="b", merge_commit="m", strategy="squash"
        )
    with pytest.raises(StateError, match="no pull request with id 99"):
        fr.close_pull_request(store, 99)
    closed = fr.close_pull_request(store, b.id)
    assert closed.state == "closed"
    assert fr.close_pull_request(store, b.id) == closed

    fr.reopen_merged_pull_requests(store, "app", None, "other-commit")
    assert fr.pull_request(store, "app", 1) == merged
    fr.reopen_merged_pull_requests(store, "app", 1, "m")
    reopened = fr.pull_request(store, "app", 1)
    assert reopened is not None
    assert (reopened.state, reopened.merge_commit, reopened.strategy, reopened.merged) == (
        "open",
        None,
        None,
        None,
    )


def test_the_latest_check_per_name_wins(store: Store) -> None:
    fr.record_check(store, "app", "s1", "unit", "failure", "l")
    fr.record_check(store, "app", "s1", "unit", "success")
    fr.record_check(store, "app", "s1", "lint", "pending")
    fr.record_check(store, "app", "s2", "unit", "failure")
    fr.record_check(store, "web", "s1", "unit", "failure")
    found = fr.checks(store, "app", ["s2", "s1", "s1", "unknown"])
    assert [(c.sha, c.name, c.status) for c in found] == [
        ("s1", "lint", "pending"),
        ("s1", "unit", "success"),
        ("s2", "unit", "failure"),
    ]
    assert fr.checks(store, "app", []) == []
    assert fr.reviews(store, []) == []
