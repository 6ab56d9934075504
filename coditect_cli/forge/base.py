"""What coditect needs from a forge, as small capability protocols, and the value types they exchange.

After git-town's connectors: instead of one wide interface, each capability (find a proposal, open one, merge
one…) is its own :class:`typing.Protocol`, so a caller states exactly what it uses and a fake implements only
that. :class:`Forge` is their union, implemented by :class:`~coditect_cli.forge.local.LocalForge` (the state
store plus git) and :class:`~coditect_cli.forge.github.GitHubForge` (PyGithub).

Every type here is a frozen dataclass with a ``to_json`` for the ``--json`` envelope. Reviewers are code
owners as CODEOWNERS writes them (``@login``, ``@org/team`` or an e-mail address).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

PrState = Literal["open", "merged", "closed"]
ReviewState = Literal["approved", "changes_requested", "commented"]
CheckStatus = Literal["pending", "success", "failure"]
ChecksSummary = Literal["none", "pending", "success", "failure"]
MergeStrategy = Literal["squash", "merge", "rebase"]

REVIEW_STATES: tuple[ReviewState, ...] = ("approved", "changes_requested", "commented")
CHECK_STATUSES: tuple[CheckStatus, ...] = ("pending", "success", "failure")
STRATEGIES: tuple[MergeStrategy, ...] = ("squash", "merge", "rebase")


@dataclass(frozen=True)
class ForgeRepo:
    """A repository as a forge sees it: the manifest's id, the local clone, origin, and ``owner/name`` on GitHub."""

    id: str
    path: Path
    origin_url: str | None = None
    slug: str | None = None

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {"id": self.id, "path": str(self.path), "slug": self.slug}


@dataclass(frozen=True)
class ProposalSpec:
    """What to open: ``head`` into ``base``, with a title and a Markdown body."""

    base: str
    head: str
    title: str
    body: str


@dataclass(frozen=True)
class PullRequest:
    """A pull request. ``head_sha`` is the head's current commit while open, the merged one once merged."""

    repo: str
    number: int
    base: str
    head: str
    title: str
    state: PrState
    head_sha: str | None = None
    body: str = ""
    merge_commit: str | None = None
    url: str | None = None
    created: str | None = None
    updated: str | None = None
    merged: str | None = None
    author: str | None = None
    draft: bool = False

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "repo": self.repo,
            "number": self.number,
            "base": self.base,
            "head": self.head,
            "title": self.title,
            "state": self.state,
            "head_sha": self.head_sha,
            "merge_commit": self.merge_commit,
            "url": self.url,
            "created": self.created,
            "updated": self.updated,
            "merged": self.merged,
            "author": self.author,
            "draft": self.draft,
        }


@dataclass(frozen=True)
class Opened:
    """The outcome of opening a pull request: the PR, and whether this call created it."""

    pr: PullRequest
    created: bool


@dataclass(frozen=True)
class Review:
    """One review: who, the verdict, when, and on which head commit (when known)."""

    reviewer: str
    state: ReviewState
    time: str | None = None
    body: str = ""
    head_sha: str | None = None
    id: int | None = None  # the forge's id of the review (GitHub's); None where reviews have none
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "reviewer": self.reviewer,
            "state": self.state,
            "time": self.time,
            "head_sha": self.head_sha,
        }


@dataclass(frozen=True)
class Check:
    """One check result on a commit (a gate run, a CI status or check run).

    ``required`` says whether the base branch's protection requires it: True or False when the forge knows its
    rules, None when it does not (the local forge; coditect's own gate results, which always count).
    """

    name: str
    status: CheckStatus
    time: str | None = None
    log: str | None = None
    url: str | None = None
    required: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "name": self.name,
            "status": self.status,
            "time": self.time,
            "log": self.log,
            "url": self.url,
            "required": self.required,
        }


@dataclass(frozen=True)
class PrDetails:
    """What a pull request's status needs beyond the list: reviews, checks, mergeability, changed files.

    ``mergeable`` is None when the forge does not know (yet, or any more: merged and closed PRs). ``files``
    is None when the forge could not list them. ``blockers`` are the forge's own reasons not to merge it now
    (on GitHub: branch protection and rulesets — draft, required checks, required reviews, an out-of-date
    branch), each a sentence naming the rule.
    """

    number: int
    head_sha: str | None
    reviews: tuple[Review, ...] = ()
    checks: tuple[Check, ...] = ()
    mergeable: bool | None = None
    files: tuple[str, ...] | None = None
    blockers: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckEvidence:
    """A check run or commit status with what a stream needs to fix it: its summary (a check run's
    ``output.title`` and ``output.summary``, a status's description), a log excerpt (``output.text``, else the
    run's annotations as ``path:line: message``) and its URL."""

    name: str
    status: CheckStatus
    source: Literal["check_run", "status"]
    summary: str = ""
    log: str = ""
    url: str | None = None
    id: int | None = None
    time: str | None = None


@dataclass(frozen=True)
class ReviewComment:
    """A review comment on a line of a pull request's diff."""

    id: int
    author: str
    body: str
    path: str | None = None
    line: int | None = None
    commit: str | None = None
    time: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class PrActivity:
    """What happened on an open pull request, read for the autopilot: reviews with their text, review comments
    with file and line, and the head commit's checks with their evidence. ``fresh`` is False when every read was
    answered "not modified" (a conditional request: nothing changed, nothing counted against the rate limit)."""

    number: int
    head_sha: str | None
    reviews: tuple[Review, ...] = ()
    comments: tuple[ReviewComment, ...] = ()
    checks: tuple[CheckEvidence, ...] = ()
    fresh: bool = True


@dataclass(frozen=True)
class Merged:
    """The outcome of a merge: the PR as it is now, the new base tip, and whether it was merged before."""

    pr: PullRequest
    commit: str
    strategy: MergeStrategy
    already: bool = False

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "pr": self.pr.to_json(),
            "commit": self.commit,
            "strategy": self.strategy,
            "already": self.already,
        }


@dataclass(frozen=True)
class Comment:
    """A comment on a pull request."""

    id: int
    author: str
    body: str
    time: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Release:
    """A tag (and, on GitHub, a release) on a commit; ``created`` is False when it was there already."""

    tag: str
    sha: str
    created: bool
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {"tag": self.tag, "sha": self.sha, "created": self.created, "url": self.url}


@dataclass(frozen=True)
class BranchRules:
    """What a forge enforces on a branch (GitHub: branch protection and rulesets, merged).

    ``read`` lists where the rules came from (``protection``, ``rulesets``, ``repository``); ``notes`` says
    what could not be read (a 403 for a token without admin rights, say). ``merge_methods`` is None when any
    method is allowed.
    """

    branch: str
    read: tuple[str, ...] = ()
    required_checks: tuple[str, ...] = ()
    strict: bool = False
    required_approvals: int = 0
    code_owner_reviews: bool = False
    merge_queue: bool = False
    merge_methods: tuple[MergeStrategy, ...] | None = None
    linear_history: bool = False
    notes: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        """Whether branch protection or rulesets could be read (else readiness keeps coditect's own rules)."""
        return "protection" in self.read or "rulesets" in self.read

    def allows(self, strategy: MergeStrategy) -> bool:
        """Whether merging with ``strategy`` is allowed (linear history forbids merge commits)."""
        if self.linear_history and strategy == "merge":
            return False
        return self.merge_methods is None or strategy in self.merge_methods

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "branch": self.branch,
            "read": list(self.read),
            "required_checks": list(self.required_checks),
            "strict": self.strict,
            "required_approvals": self.required_approvals,
            "code_owner_reviews": self.code_owner_reviews,
            "merge_queue": self.merge_queue,
            "merge_methods": None if self.merge_methods is None else list(self.merge_methods),
            "linear_history": self.linear_history,
            "notes": list(self.notes),
        }


# ------------------------------------------------------------------------------------------------ capabilities


class ProposalFinder(Protocol):
    """Finds the open pull request of a head branch into a base branch."""

    def find_pr(self, repo: ForgeRepo, base: str, head: str) -> PullRequest | None:
        """The open PR of ``head`` into ``base``, or None (always asks the forge; never a cached answer)."""


class ProposalLister(Protocol):
    """Lists every pull request into a base branch."""

    def list_prs(self, repo: ForgeRepo, base: str) -> list[PullRequest]:
        """Every PR into ``base`` (open, merged and closed), by number; one paginated call on GitHub."""


class ProposalOpener(Protocol):
    """Opens pull requests, idempotently."""

    def open_pr(self, repo: ForgeRepo, spec: ProposalSpec) -> Opened:
        """Open ``spec`` unless a PR of its head into its base is open already (then return that one)."""


class ProposalInspector(Protocol):
    """Reads what a status needs for many pull requests at once."""

    def pr_details(self, repo: ForgeRepo, prs: Sequence[PullRequest]) -> dict[int, PrDetails]:
        """Reviews, checks, mergeability and changed files of ``prs`` (all of ``repo``), by number."""


class ActivityWatcher(Protocol):
    """Reads, for a poller, the details and activity of many pull requests (only forges that poll implement it)."""

    def watch(
        self, repo: ForgeRepo, prs: Sequence[PullRequest]
    ) -> tuple[dict[int, PrDetails], dict[int, PrActivity]]:
        """The details (as :meth:`ProposalInspector.pr_details`) and the activity of the open ones among ``prs``,
        by number; when nothing changed since the previous call, without a request counted against a rate limit."""


class ReviewReader(Protocol):
    """Reads the reviews of one pull request."""

    def reviews(self, repo: ForgeRepo, pr: PullRequest) -> list[Review]:
        """Every review of ``pr``, oldest first."""


class ProposalReviewer(Protocol):
    """Gives reviews."""

    def review_pr(
        self, repo: ForgeRepo, pr: PullRequest, reviewer: str, state: ReviewState, body: str
    ) -> Review:
        """Record ``reviewer``'s verdict on ``pr``."""


class CheckReader(Protocol):
    """Reads check results of a commit."""

    def checks(self, repo: ForgeRepo, sha: str) -> list[Check]:
        """The current result of every check on ``sha``."""


class CheckRecorder(Protocol):
    """Records check results (what a gate run reports)."""

    def record_check(
        self, repo: ForgeRepo, sha: str, name: str, status: CheckStatus, log: str | None = None
    ) -> Check:
        """Record check ``name`` on commit ``sha`` as ``status``; ``log`` is where its output is."""


class ProposalMerger(Protocol):
    """Merges pull requests."""

    def merge_pr(
        self,
        repo: ForgeRepo,
        pr: PullRequest,
        strategy: MergeStrategy,
        *,
        title: str | None = None,
        body: str | None = None,
        expected_head: str | None = None,
    ) -> Merged:
        """Merge ``pr`` into its base with ``strategy``; refuse when its head is no longer ``expected_head``."""


class ProposalCommenter(Protocol):
    """Comments on pull requests."""

    def comment_pr(self, repo: ForgeRepo, pr: PullRequest, body: str) -> Comment:
        """Add a comment to ``pr``."""


class Releaser(Protocol):
    """Tags commits (and publishes releases where the forge has them)."""

    def release(self, repo: ForgeRepo, tag: str, sha: str, title: str, notes: str = "") -> Release:
        """Tag ``sha`` as ``tag`` on origin (idempotent: the same tag on the same commit is reported, not redone)."""


class RulesReader(Protocol):
    """Reads what the forge enforces on a branch (only forges that have such rules implement it)."""

    def branch_rules(self, repo: ForgeRepo, branch: str) -> BranchRules:
        """``branch``'s protection and rulesets, read once per run."""


class TeamReader(Protocol):
    """Resolves team owners (``@org/team``) to their members (only forges with teams implement it)."""

    def team_members(self, repo: ForgeRepo, team: str) -> frozenset[str] | None:
        """The lower-case logins of ``team``'s members, or None when they cannot be read."""


class Forge(
    ProposalFinder,
    ProposalLister,
    ProposalOpener,
    ProposalInspector,
    ReviewReader,
    ProposalReviewer,
    CheckReader,
    CheckRecorder,
    ProposalMerger,
    ProposalCommenter,
    Releaser,
    Protocol,
):
    """Every capability: what a forge implementation provides."""

    kind: str
    notes: list[str]

    def close(self) -> None:
        """Release connections (the forge is not used afterwards)."""


# ------------------------------------------------------------------------------------------------ rules


def pr_state(value: str) -> PrState:
    """``value`` as a :data:`PrState` (ValueError for anything else)."""
    if value == "open":
        return "open"
    if value == "merged":
        return "merged"
    if value == "closed":
        return "closed"
    raise ValueError(f"not a pull request state: {value!r}")


def same_owner(a: str, b: str) -> bool:
    """Whether two owner spellings name the same owner (GitHub logins and teams are case-insensitive)."""
    return a.strip().lstrip("@").lower() == b.strip().lstrip("@").lower()


def latest_verdicts(reviews: Iterable[Review]) -> dict[str, ReviewState]:
    """Each reviewer's standing verdict: their latest approval or change request (comments do not count)."""
    out: dict[str, ReviewState] = {}
    for review in reviews:
        if review.state == "commented":
            continue
        key = review.reviewer.strip().lstrip("@").lower()
        out[key] = review.state
    return out


def verdict_of(verdicts: Mapping[str, ReviewState], owner: str) -> ReviewState | None:
    """``owner``'s standing verdict in ``verdicts`` (from :func:`latest_verdicts`), or None."""
    return verdicts.get(owner.strip().lstrip("@").lower())


def is_team(owner: str) -> bool:
    """Whether a CODEOWNERS owner is a team (``@org/team``) rather than a user or an e-mail address."""
    return owner.startswith("@") and "/" in owner


def team_reviews(reviews: Sequence[Review], members: Mapping[str, frozenset[str]]) -> list[Review]:
    """``reviews`` plus, for each team in ``members`` (``@org/team`` → member logins), every review by one of
    its members again as the team's: a team owner is satisfied by any one member, as on GitHub."""
    out = list(reviews)
    for team, logins in members.items():
        for review in reviews:
            if review.reviewer.strip().lstrip("@").lower() in logins:
                out.append(Review(team, review.state, review.time, review.body, review.head_sha))
    return sorted(out, key=lambda r: r.time or "")


def summarize_checks(checks: Iterable[Check]) -> ChecksSummary:
    """One word for a set of checks: any failure fails, else any pending is pending; ``none`` without checks."""
    statuses = {c.status for c in checks}
    if not statuses:
        return "none"
    if "failure" in statuses:
        return "failure"
    if "pending" in statuses:
        return "pending"
    return "success"
