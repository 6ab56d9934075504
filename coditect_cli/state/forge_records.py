"""Pull requests, reviews, check results and comments of the local forge, in the state store (migration 2).

Pull requests are numbered per repository, after its last one; at most one is open per repository, base and
head. Checks are a history by commit: the latest row per repository, commit and name is the current result.

Repository ids, branch names and object ids are lookup keys and are stored exactly as given; titles, bodies,
reviewers, authors, check names and logs are redacted first, like everything else the store keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from coditect_cli.adapters.proc import redact
from coditect_cli.state.store import StateError, Store, redact_optional, utc_now, where_clause

PR_STATES = ("open", "merged", "closed")
"""Every value ``pull_requests.state`` takes."""
REVIEW_STATES = ("approved", "changes_requested", "commented")
"""Every value ``reviews.state`` takes."""
CHECK_STATUSES = ("pending", "success", "failure")
"""Every value ``checks.status`` takes."""
MERGE_STRATEGIES = ("squash", "merge", "rebase")
"""Every value ``pull_requests.strategy`` takes (once merged)."""


@dataclass(frozen=True)
class PullRequestRecord:
    """One row of ``pull_requests``: a pull request of the local forge."""

    id: int
    repo: str
    number: int
    base: str
    head: str
    title: str
    body: str
    state: str
    head_sha: str | None  # the head when the PR was opened
    merged_head_sha: str | None  # the head that was merged
    base_sha: str | None  # the base tip the merge was made on
    merge_commit: str | None  # the base tip after the merge
    strategy: str | None
    created: str
    updated: str
    merged: str | None
    closed: str | None


@dataclass(frozen=True)
class ReviewRecord:
    """One row of ``reviews``: a verdict on a pull request, with the head it was given on."""

    id: int
    pr_id: int
    reviewer: str
    state: str
    body: str
    head_sha: str | None
    time: str


@dataclass(frozen=True)
class CheckRecord:
    """One row of ``checks``: a check result (a gate run) on one commit."""

    id: int
    repo: str
    sha: str
    name: str
    status: str
    log: str | None
    time: str


@dataclass(frozen=True)
class CommentRecord:
    """One row of ``comments``."""

    id: int
    pr_id: int
    author: str
    body: str
    time: str
    path: str | None = None
    line: int | None = None


_PR_COLUMNS = (
    "id, repo, number, base, head, title, body, state, head_sha, merged_head_sha, base_sha, merge_commit, "
    "strategy, created, updated, merged, closed"
)

# ---------------------------------------------------------------------------------------------- pull requests


def open_pull_request(
    store: Store, repo: str, base: str, head: str, title: str, body: str, head_sha: str | None
) -> tuple[PullRequestRecord, bool]:
    """Open a pull request of ``head`` into ``base`` in ``repo``, numbered after the repository's last one.

    Idempotent: when one is already open for (repo, base, head) it is returned unchanged. Returns the
    record and whether it was created.
    """
    with store.transaction():
        existing = find_pull_request(store, repo, base, head)
        if existing is not None:
            return existing, False
        now = utc_now()
        ((number,),) = store.query(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM pull_requests WHERE repo = ?", [repo]
        )
        cursor = store.execute_verbatim(
            "INSERT INTO pull_requests (repo, number, base, head, title, body, state, head_sha, created, "
            "updated) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)",
            # repo, base and head are lookup keys (manifest ids, branch names): stored as given.
            (repo, int(number), base, head, redact(title), redact(body), head_sha, now, now),
        )
        assert cursor.lastrowid is not None
        created = _pull_request_by_id(store, cursor.lastrowid)
    return created, True


def _pull_request_by_id(store: Store, pr_id: int) -> PullRequestRecord:
    rows = store.query(f"SELECT {_PR_COLUMNS} FROM pull_requests WHERE id = ?", [pr_id])
    if not rows:
        raise StateError(f"no pull request with id {pr_id} in the state store {store.path}")
    return PullRequestRecord(*rows[0])


def pull_request(store: Store, repo: str, number: int) -> PullRequestRecord | None:
    """Pull request ``number`` of ``repo``, or None."""
    rows = store.query(
        f"SELECT {_PR_COLUMNS} FROM pull_requests WHERE repo = ? AND number = ?", [repo, number]
    )
    return PullRequestRecord(*rows[0]) if rows else None


def find_pull_request(
    store: Store, repo: str, base: str, head: str, state: str | None = "open"
) -> PullRequestRecord | None:
    """The latest pull request of ``head`` into ``base`` in ``repo`` in ``state`` (None: any), or None."""
    found = pull_requests(store, repo=repo, base=base, head=head, state=state)
    return found[-1] if found else None


def pull_requests(
    store: Store,
    *,
    repo: str | None = None,
    base: str | None = None,
    head: str | None = None,
    state: str | None = None,
) -> list[PullRequestRecord]:
    """Pull requests matching every filter given, by repository then number."""
    if state is not None and state not in PR_STATES:
        raise ValueError(f"a pull request state is one of {', '.join(PR_STATES)}, not {state!r}")
    where, params = where_clause(repo=repo, base=base, head=head, state=state)
    rows = store.query(f"SELECT {_PR_COLUMNS} FROM pull_requests{where} ORDER BY repo, number", params)
    return [PullRequestRecord(*row) for row in rows]


def mark_pull_request_merged(
    store: Store, pr_id: int, *, head_sha: str, base_sha: str, merge_commit: str, strategy: str
) -> PullRequestRecord:
    """Record that the open pull request ``pr_id`` was merged; StateError when it is not open."""
    if strategy not in MERGE_STRATEGIES:
        raise ValueError(f"a merge strategy is one of {', '.join(MERGE_STRATEGIES)}, not {strategy!r}")
    now = utc_now()
    cursor = store.execute_verbatim(
        "UPDATE pull_requests SET state = 'merged', merged_head_sha = ?, base_sha = ?, merge_commit = ?, "
        "strategy = ?, merged = ?, updated = ? WHERE id = ? AND state = 'open'",
        (head_sha, base_sha, merge_commit, strategy, now, now, pr_id),
    )
    record = _pull_request_by_id(store, pr_id)
    if cursor.rowcount != 1:
        raise StateError(f"pull request #{record.number} of {record.repo} is {record.state}, not open")
    return record


def reopen_merged_pull_requests(store: Store, repo: str, number: int | None, merge_commit: str) -> None:
    """Undo :func:`mark_pull_request_merged` for the PRs of ``repo`` (only #``number``, unless None) that were
    merged as ``merge_commit``: they are open again, with no merge recorded."""
    store.execute(
        "UPDATE pull_requests SET state = 'open', merged_head_sha = NULL, base_sha = NULL, merge_commit = NULL, "
        "strategy = NULL, merged = NULL WHERE repo = ? AND (? IS NULL OR number = ?) AND state = 'merged' "
        "AND merge_commit = ?",
        (repo, number, number, merge_commit),
    )


def close_pull_request(store: Store, pr_id: int) -> PullRequestRecord:
    """Close the open pull request ``pr_id`` without merging it (a closed one is returned unchanged)."""
    now = utc_now()
    store.execute_verbatim(
        "UPDATE pull_requests SET state = 'closed', closed = ?, updated = ? WHERE id = ? AND state = 'open'",
        (now, now, pr_id),
    )
    return _pull_request_by_id(store, pr_id)


# ---------------------------------------------------------------------------------------------- reviews


def add_review(
    store: Store, pr_id: int, reviewer: str, state: str, body: str = "", head_sha: str | None = None
) -> ReviewRecord:
    """Append a review of pull request ``pr_id`` by ``reviewer`` (approved, changes_requested, commented)."""
    if state not in REVIEW_STATES:
        raise ValueError(f"a review state is one of {', '.join(REVIEW_STATES)}, not {state!r}")
    now = utc_now()
    cursor = store.execute_verbatim(
        "INSERT INTO reviews (pr_id, reviewer, state, body, head_sha, time) VALUES (?, ?, ?, ?, ?, ?)",
        (pr_id, redact(reviewer), state, redact(body), head_sha, now),
    )
    assert cursor.lastrowid is not None
    return ReviewRecord(cursor.lastrowid, pr_id, redact(reviewer), state, redact(body), head_sha, now)


def reviews(store: Store, pr_ids: Sequence[int]) -> list[ReviewRecord]:
    """Every review of the pull requests ``pr_ids``, oldest first (one query)."""
    ids = list(dict.fromkeys(pr_ids))
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    rows = store.query(
        f"SELECT id, pr_id, reviewer, state, body, head_sha, time FROM reviews WHERE pr_id IN ({marks}) ORDER BY id",
        ids,
    )
    return [ReviewRecord(*row) for row in rows]


# ---------------------------------------------------------------------------------------------- checks


def record_check(
    store: Store, repo: str, sha: str, name: str, status: str, log: str | None = None
) -> CheckRecord:
    """Record a check result on commit ``sha`` of ``repo`` (pending, success, failure); the latest wins."""
    if status not in CHECK_STATUSES:
        raise ValueError(f"a check status is one of {', '.join(CHECK_STATUSES)}, not {status!r}")
    now = utc_now()
    cursor = store.execute_verbatim(
        "INSERT INTO checks (repo, sha, name, status, log, time) VALUES (?, ?, ?, ?, ?, ?)",
        (repo, sha, redact(name), status, redact_optional(log), now),
    )
    assert cursor.lastrowid is not None
    return CheckRecord(cursor.lastrowid, repo, sha, redact(name), status, redact_optional(log), now)


def checks(store: Store, repo: str, shas: Sequence[str]) -> list[CheckRecord]:
    """The current result of every check on each of ``shas`` in ``repo`` (the latest row per name)."""
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return []
    marks = ", ".join("?" * len(wanted))
    rows = store.query(
        "SELECT id, repo, sha, name, status, log, time FROM checks WHERE id IN ("
        f"SELECT MAX(id) FROM checks WHERE repo = ? AND sha IN ({marks}) GROUP BY sha, name"
        ") ORDER BY sha, name",
        [repo, *wanted],
    )
    return [CheckRecord(*row) for row in rows]


# ---------------------------------------------------------------------------------------------- comments


def add_comment(
    store: Store, pr_id: int, author: str, body: str, path: str | None = None, line: int | None = None
) -> CommentRecord:
    """Append a comment to pull request ``pr_id`` (about ``path``, at ``line``, when given)."""
    now = utc_now()
    cursor = store.execute_verbatim(
        "INSERT INTO comments (pr_id, author, body, time, path, line) VALUES (?, ?, ?, ?, ?, ?)",
        (pr_id, redact(author), redact(body), now, path, line),
    )
    assert cursor.lastrowid is not None
    return CommentRecord(cursor.lastrowid, pr_id, redact(author), redact(body), now, path, line)


def comments(store: Store, pr_id: int) -> list[CommentRecord]:
    """The comments of pull request ``pr_id``, oldest first."""
    rows = store.query(
        "SELECT id, pr_id, author, body, time, path, line FROM comments WHERE pr_id = ? ORDER BY id", [pr_id]
    )
    return [CommentRecord(*row) for row in rows]
