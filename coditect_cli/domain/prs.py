"""Pull-request rules and reports, as pure data: the code owners a PR needs and where their verdicts stand,
its title and body, why it cannot merge yet, and the result values of the ``pr`` commands.

A stream's PR goes from its feature branch into the phase's integration branch, one per repository the
stream works in. Which owners must approve is computed, not configured: the paths the PR changes (what
merging it would change in the base, from git or the forge) are matched against the manifest's ownership
rules; each path needs its stream's code owner, and a shared path needs *every* one of its owners. Any
standing "changes requested" blocks, as on GitHub.

The services (:mod:`coditect_cli.services.prs`, :mod:`coditect_cli.services.reviews`) read the changed
files, reviews and checks from git and the forges and hand them here; :mod:`coditect_cli.render.prs` prints
the reports. Nothing here touches git, the store or the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from coditect_cli.domain.gating import GateSpec
from coditect_cli.domain.manifest import Manifest, Pair, RepoId
from coditect_cli.forge.base import (
    Check,
    Merged,
    MergeStrategy,
    PrActivity,
    PullRequest,
    Review,
    ReviewState,
    latest_verdicts,
    summarize_checks,
    verdict_of,
)

NeedState = Literal["approved", "changes_requested", "pending", "stale"]

MAINTAINER = "maintainer"
"""The ``owner`` of the approval that paths no stream owns need (one of the manifest's ``maintainers``)."""


# ------------------------------------------------------------------------------------------------ reports


@dataclass(frozen=True)
class OwnerNeed:
    """One approval a PR needs, the changed paths that need it, and where it stands.

    ``owner`` is a code owner; for paths no stream owns it is :data:`MAINTAINER` and ``any_of`` lists the
    manifest's maintainers, one of whom must approve. ``foreign_paths`` are the paths among ``paths`` that
    the PR's own stream does not own. An approval given on an earlier head is ``stale`` when the commits
    pushed since change ``stale_paths`` (paths of this need), or when that earlier head is unknown
    (``stale_reason`` says which).
    """

    owner: str
    paths: tuple[str, ...]
    shared_paths: tuple[str, ...] = ()
    state: NeedState = "pending"
    any_of: tuple[str, ...] = ()
    foreign_paths: tuple[str, ...] = ()
    approved_by: str | None = None
    reviewed_head: str | None = None
    stale_paths: tuple[str, ...] = ()
    stale_reason: str | None = None

    @property
    def shared(self) -> bool:
        """Whether a shared path (one that needs every one of its owners) is among ``paths``."""
        return bool(self.shared_paths)

    @property
    def maintainer(self) -> bool:
        """Whether this need is for paths no stream owns (one of ``any_of`` approves)."""
        return self.owner == MAINTAINER

    @property
    def who(self) -> str:
        """Who must approve, in words: ``@b`` or ``a maintainer (@m1 or @m2)``."""
        if not self.maintainer:
            return self.owner
        if not self.any_of:
            return "a maintainer (the manifest names none: add `maintainers:`)"
        return f"a maintainer ({' or '.join(self.any_of)})"

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "owner": self.owner,
            "any_of": list(self.any_of),
            "paths": list(self.paths),
            "shared": self.shared,
            "shared_paths": list(self.shared_paths),
            "foreign_paths": list(self.foreign_paths),
            "state": self.state,
            "approved_by": self.approved_by,
            "reviewed_head": self.reviewed_head,
            "stale_paths": list(self.stale_paths),
            "stale_reason": self.stale_reason,
        }


@dataclass(frozen=True)
class PrView:
    """A stream's PR in one repository (``pr`` None: not opened yet) with what its status needs."""

    stream: str | None
    repo: str
    branch: str
    base: str
    forge: str
    pr: PullRequest | None = None
    needs: tuple[OwnerNeed, ...] = ()
    reviews: tuple[Review, ...] = ()
    checks: tuple[Check, ...] = ()
    mergeable: bool | None = None
    files: tuple[str, ...] | None = None
    unowned: tuple[str, ...] = ()
    forge_blockers: tuple[str, ...] = ()
    activity: PrActivity | None = None  # read for the autopilot on a forge that polls (GitHub)

    @property
    def blocked_by(self) -> tuple[str, ...]:
        """Reviewers whose standing verdict is "changes requested"."""
        verdicts = latest_verdicts(self.reviews)
        return tuple(
            sorted(
                {r.reviewer for r in self.reviews if verdict_of(verdicts, r.reviewer) == "changes_requested"}
            )
        )

    @property
    def approved(self) -> bool:
        """Every needed owner approved, and nobody's standing verdict is "changes requested".

        Never True while the changed files are unknown: the owners a PR needs come from them.
        """
        return (
            self.files is not None
            and bool(self.needs)
            and all(n.state == "approved" for n in self.needs)
            and not self.blocked_by
        )

    @property
    def stale(self) -> tuple[OwnerNeed, ...]:
        """The needs whose approval was given on an earlier head and no longer counts (and why)."""
        return tuple(n for n in self.needs if n.state == "stale")

    @property
    def approvals(self) -> tuple[int, int]:
        """(needed owners who approved, needed owners)."""
        return sum(1 for n in self.needs if n.state == "approved"), len(self.needs)

    @property
    def checks_state(self) -> str:
        """``none``, ``pending``, ``success`` or ``failure``."""
        return summarize_checks(self.checks)

    @property
    def gating_checks_state(self) -> str:
        """The checks that decide readiness, in one word: all of them, except the ones the forge's branch rules
        say are not required (on GitHub a failing non-required check does not block a merge; a pending required
        one does, and is among ``forge_blockers``)."""
        return summarize_checks(c for c in self.checks if c.required is not False)

    @property
    def ready(self) -> bool:
        """Open, approved, mergeable, no failing check that counts, nothing the forge's rules block on: what a
        checkpoint may merge."""
        return (
            self.pr is not None
            and self.pr.state == "open"
            and self.approved
            and self.mergeable is True
            and self.gating_checks_state != "failure"
            and not self.forge_blockers
        )

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        done, needed = self.approvals
        return {
            "stream": self.stream,
            "repo": self.repo,
            "branch": self.branch,
            "base": self.base,
            "forge": self.forge,
            "pr": None if self.pr is None else self.pr.to_json(),
            "approved": self.approved,
            "approvals": {"approved": done, "needed": needed},
            "needs": [n.to_json() for n in self.needs],
            "blocked_by": list(self.blocked_by),
            "stale": [
                {
                    "owner": n.who,
                    "approved_by": n.approved_by,
                    "reviewed_head": n.reviewed_head,
                    "paths": list(n.stale_paths),
                    "reason": n.stale_reason,
                }
                for n in self.stale
            ],
            "reviews": [r.to_json() for r in self.reviews],
            "checks": {"state": self.checks_state, "results": [c.to_json() for c in self.checks]},
            "mergeable": self.mergeable,
            "files": None if self.files is None else list(self.files),
            "unowned": list(self.unowned),
            "forge_blockers": list(self.forge_blockers),
            "ready": self.ready,
            "not_ready": not_ready_reason(self) if self.pr is not None and self.pr.state == "open" else None,
        }


@dataclass
class PrListing:
    """``pr list``: every PR into the phase's integration branches."""

    phase: str
    base: str
    rows: list[PrView]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "phase": self.phase,
            "base": self.base,
            "prs": [r.to_json() for r in self.rows],
            "notes": self.notes,
        }


@dataclass
class StatusReport:
    """``pr status STREAM``: the stream's PR in each of its repositories."""

    phase: str
    stream: str
    rows: list[PrView]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "phase": self.phase,
            "stream": self.stream,
            "prs": [r.to_json() for r in self.rows],
            "ready": bool(self.rows) and all(r.ready for r in self.rows),
            "notes": self.notes,
        }


@dataclass(frozen=True)
class OpenOutcome:
    """One (stream, repository) pair of ``pr open``: the PR, or why none was opened."""

    stream: str
    repo: str
    branch: str
    base: str
    forge: str
    pr: PullRequest | None = None
    created: bool = False
    pushed: bool = False
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "stream": self.stream,
            "repo": self.repo,
            "branch": self.branch,
            "base": self.base,
            "forge": self.forge,
            "pr": None if self.pr is None else self.pr.to_json(),
            "created": self.created,
            "pushed": self.pushed,
            "skipped": self.skipped,
        }


@dataclass
class OpenReport:
    """``pr open``: an outcome per pair."""

    phase: str
    stream: str | None
    outcomes: list[OpenOutcome]
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def nothing(self) -> bool:
        """No pair has a PR (every one was skipped)."""
        return all(o.pr is None and not (self.dry_run and o.skipped is None) for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "phase": self.phase,
            "stream": self.stream,
            "dry_run": self.dry_run,
            "opened": [o.to_json() for o in self.outcomes],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class ReviewOutcome:
    """One review given (or, dry run, that would be given), or why a pair was skipped."""

    stream: str
    repo: str
    pr: PullRequest | None
    review: Review | None = None
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "stream": self.stream,
            "repo": self.repo,
            "pr": None if self.pr is None else self.pr.to_json(),
            "review": None if self.review is None else self.review.to_json(),
            "skipped": self.skipped,
        }


@dataclass
class ReviewReport:
    """``pr approve`` / ``pr request-changes``."""

    phase: str
    stream: str
    owner: str
    state: ReviewState
    outcomes: list[ReviewOutcome]
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "phase": self.phase,
            "stream": self.stream,
            "owner": self.owner,
            "state": self.state,
            "dry_run": self.dry_run,
            "reviews": [o.to_json() for o in self.outcomes],
            "notes": self.notes,
        }


@dataclass(frozen=True)
class MergeOutcome:
    """One PR merged (``merged``), or why it was not (``refused``)."""

    view: PrView
    merged: Merged | None = None
    refused: str | None = None
    gates_run: tuple[str, ...] = ()  # gates run on the head first (a dry run: that would be run)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "stream": self.view.stream,
            "repo": self.view.repo,
            "pr": None if self.view.pr is None else self.view.pr.to_json(),
            "merged": None if self.merged is None else self.merged.to_json(),
            "refused": self.refused,
            "gates_run": list(self.gates_run),
        }


@dataclass
class MergeReport:
    """``pr merge``."""

    phase: str
    stream: str
    strategy: MergeStrategy
    outcomes: list[MergeOutcome]
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def refused(self) -> bool:
        """Whether any pull request was not merged."""
        return any(o.refused for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "phase": self.phase,
            "stream": self.stream,
            "strategy": self.strategy,
            "dry_run": self.dry_run,
            "merges": [o.to_json() for o in self.outcomes],
            "notes": self.notes,
        }


# ------------------------------------------------------------------------------------------------ rules


def code_owners(manifest: Manifest, repo: str) -> list[str]:
    """Every owner the CODEOWNERS file of ``repo`` names, in order of first appearance."""
    from coditect_cli.domain.ownership import ownership

    owners: dict[str, None] = {}
    own = ownership(manifest).get(RepoId(repo))
    for rule in own.rules if own is not None else ():
        for sid in rule.streams:
            owners.setdefault(manifest.stream(sid).code_owner, None)
    return list(owners)


def owner_needs(
    manifest: Manifest, repo: str, paths: Sequence[str], author: str | None = None
) -> tuple[list[OwnerNeed], list[str]]:
    """The approvals a PR changing ``paths`` in ``repo`` needs, and the changed paths no stream owns.

    Each owned path needs its stream's code owner; a shared path needs every owner it lists. Paths no stream
    owns need one of the manifest's ``maintainers`` (a need nobody can meet when it names none: such a PR
    does not merge unreviewed). When no changed path is owned, the PR still needs the code owner of
    ``author`` (its stream), so nothing merges without its own owner's review. Paths ``author`` does not own
    are each need's ``foreign_paths``.
    """
    from coditect_cli.domain.ownership import ownership

    own = ownership(manifest).get(RepoId(repo))
    found: dict[str, list[str]] = {}
    shared: dict[str, list[str]] = {}
    foreign: dict[str, list[str]] = {}
    unowned: list[str] = []
    for path in paths:
        owners = own.owners(path) if own is not None else None
        if owners is None or not owners.streams:
            unowned.append(path)
            continue
        mine = author is not None and author in owners.streams
        streams = sorted(owners.streams, key=lambda s: (manifest.stream(s).terminal, s))
        for sid in streams:
            owner = manifest.stream(sid).code_owner
            found.setdefault(owner, []).append(path)
            if owners.shared:
                shared.setdefault(owner, []).append(path)
            if not mine:
                foreign.setdefault(owner, []).append(path)
    if not found and author is not None:
        found[manifest.stream(author).code_owner] = []
    needs = [
        OwnerNeed(owner, tuple(p), tuple(shared.get(owner, ())), foreign_paths=tuple(foreign.get(owner, ())))
        for owner, p in found.items()
    ]
    if unowned:
        needs.append(
            OwnerNeed(
                MAINTAINER, tuple(unowned), any_of=tuple(manifest.maintainers), foreign_paths=tuple(unowned)
            )
        )
    return needs, unowned


def _reviewer_key(owner: str) -> str:
    return owner.strip().lstrip("@").lower()


def latest_reviews(reviews: Iterable[Review]) -> dict[str, Review]:
    """Each reviewer's standing review (their latest approval or change request; comments do not count),
    keyed like :func:`coditect_cli.forge.base.latest_verdicts`."""
    out: dict[str, Review] = {}
    for review in reviews:
        if review.state != "commented":
            out[_reviewer_key(review.reviewer)] = review
    return out


def _still_valid(
    review: Review, need: OwnerNeed, head_sha: str | None, changed: Mapping[str, frozenset[str] | None]
) -> tuple[bool, tuple[str, ...], str | None]:
    """Whether ``review`` (an approval) still counts for ``need`` at ``head_sha``: (valid, stale paths, why not)."""
    if head_sha is None or review.head_sha == head_sha:
        return True, (), None
    if review.head_sha is None:
        return False, (), f"{review.reviewer}'s approval does not say which commit it approved"
    since = changed.get(review.head_sha)
    if since is None:
        return False, (), f"the commit {review.reviewer} approved ({review.head_sha[:12]}) is not known here"
    touched = tuple(p for p in need.paths if p in since)
    if not touched:
        return True, (), None
    return (
        False,
        touched,
        f"commits pushed since {review.reviewer} approved {review.head_sha[:12]} change " + _some(touched),
    )


def judge(
    needs: Sequence[OwnerNeed],
    reviews: Sequence[Review],
    head_sha: str | None = None,
    changed: Mapping[str, frozenset[str] | None] | None = None,
) -> tuple[OwnerNeed, ...]:
    """``needs`` with where each stands after ``reviews``, on the PR's current head ``head_sha``.

    An approval counts for the head it was given on. Given on an earlier head, it still counts when the
    paths changed since (``changed[reviewed head]``, None when that head is unknown) include none of the
    need's paths; else the need is ``stale``. A standing change request by a candidate wins over approvals.
    ``head_sha`` None (not known, or not open) takes approvals as they are.
    """
    latest = latest_reviews(reviews)
    since = changed or {}
    out: list[OwnerNeed] = []
    for need in needs:
        candidates = need.any_of if need.maintainer else (need.owner,)
        standing = [r for r in (latest.get(_reviewer_key(c)) for c in candidates) if r is not None]
        if any(r.state == "changes_requested" for r in standing):
            out.append(replace(need, state="changes_requested"))
            continue
        approvals = [r for r in standing if r.state == "approved"]
        if not approvals:
            out.append(replace(need, state="pending"))
            continue
        stale: tuple[Review, tuple[str, ...], str | None] | None = None
        valid: Review | None = None
        for review in approvals:
            ok, paths, why = _still_valid(review, need, head_sha, since)
            if ok:
                valid = review
                break
            stale = stale or (review, paths, why)
        if valid is not None:
            out.append(
                replace(need, state="approved", approved_by=valid.reviewer, reviewed_head=valid.head_sha)
            )
        else:
            assert stale is not None
            review, paths, why = stale
            out.append(
                replace(
                    need,
                    state="stale",
                    approved_by=review.reviewer,
                    reviewed_head=review.head_sha,
                    stale_paths=paths,
                    stale_reason=why,
                )
            )
    return tuple(out)


def _some(paths: Sequence[str], shown: int = 5) -> str:
    """``a, b, c`` (at most ``shown`` paths, then ``and N more``)."""
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(paths[:shown]) + more


def need_text(need: OwnerNeed) -> str:
    """Why ``need`` holds a PR back, in words (for a need that is not approved)."""
    if need.state == "stale":
        return f"approval by {need.approved_by or need.who} went stale ({need.stale_reason})"
    if need.maintainer:
        return f"{_some(need.paths)} (owned by no stream) need approval by {need.who}"
    if need.foreign_paths:
        return f"needs approval by {need.who} for {_some(need.foreign_paths)}"
    return f"needs approval by {need.who}"


def proposal_text(manifest: Manifest, pair: Pair) -> tuple[str, str]:
    """The title and Markdown body of a stream's PR in one repository, from the manifest."""
    from coditect_cli.domain.ownership import ownership

    stream, work, repo = pair.stream, pair.work, pair.repo
    multi = len(stream.work) > 1
    title = f"[{manifest.phase}] {stream.name}: {work.topic}" + (f" ({repo.id})" if multi else "")
    lines = [
        f"**Stream `{stream.id}`** — {stream.name} (terminal {stream.terminal}) · agent `{stream.role}` · "
        f"code owner {stream.code_owner}",
        "",
        f"Phase `{manifest.phase}`{': ' + manifest.title if manifest.title else ''}. "
        f"`{pair.branch}` → `{manifest.integration_branch}` in repository `{repo.id}` (`{repo.path}`).",
    ]
    if stream.depends_on:
        lines += ["", "Depends on: " + ", ".join(f"`{d}`" for d in stream.depends_on)]
    if stream.deliverables:
        lines += ["", "### Deliverables", ""]
        for d in stream.deliverables:
            after = f" — after {', '.join(d.depends_on)}" if d.depends_on else ""
            days = f"day {d.days}" if d.days.first == d.days.last else f"days {d.days}"
            lines.append(f"- [ ] `{d.id}` ({days}): {d.title}{after}")
    lines += ["", f"### Owned paths in `{repo.id}`", ""] + [f"- `{p}`" for p in work.owns]
    own = ownership(manifest).get(RepoId(repo.id))
    shared = [r for r in own.shared_rules() if stream.id in r.streams] if own is not None else []
    if shared:
        lines += ["", "### Shared paths (every listed owner must approve)", ""]
        for rule in shared:
            owners = " ".join(manifest.stream(s).code_owner for s in rule.streams)
            lines.append(f"- `{rule.pattern}`: {owners}")
    lines += [
        "",
        "---",
        "Opened by coditect. Approvals needed are computed from the files this PR changes (CODEOWNERS).",
    ]
    return title, "\n".join(lines) + "\n"


def not_ready_reason(view: PrView) -> str | None:
    """Why ``view``'s PR cannot be merged now (None when it can)."""
    if view.pr is None:
        return "no open pull request"
    if view.files is None:
        return "its changed files are unknown, so are the owners it needs"
    if view.blocked_by:
        return f"changes requested by {', '.join(view.blocked_by)}"
    missing = [n for n in view.needs if n.state != "approved"]
    if missing:
        return _missing_approvals(view.needs, missing)
    if not view.needs:
        return "nobody's approval can be computed for it (no stream's branch, no changed file)"
    if view.gating_checks_state == "failure":
        failed = [c.name for c in view.checks if c.status == "failure" and c.required is not False]
        return f"failing check(s): {', '.join(failed)}"
    if view.mergeable is False:
        return "conflicts with its base"
    if view.forge_blockers:
        return f"{view.forge} forge: " + "; ".join(view.forge_blockers)
    return None


def _missing_approvals(needs: Sequence[OwnerNeed], missing: Sequence[OwnerNeed]) -> str:
    """Which rule each missing approval comes from: the code-owner rule (some changed path has no approving
    owner: GitHub's rule too, where any one code owner of a file suffices; paths the PR's stream does not own
    are named), or coditect's shared-path rule (every owning stream approves a shared path, even when another
    of its owners already did); then paths no stream owns (a maintainer) and approvals gone stale with a push."""
    later = [n for n in missing if n.state == "stale" or n.maintainer]
    pending = [n for n in missing if n not in later]
    approved = {n.owner for n in needs if n.state == "approved"}
    covered = {p for n in needs if n.owner in approved for p in n.paths}
    owner_rule = [n for n in pending if not n.paths or set(n.paths) - covered]
    shared_rule = [n.owner for n in pending if n not in owner_rule]
    parts = []
    plain = [n.owner for n in owner_rule if not n.foreign_paths]
    if plain:
        parts.append(f"needs approval by {', '.join(plain)}")
    parts += [need_text(n) for n in owner_rule if n.foreign_paths]
    if shared_rule:
        paths = sorted({p for n in pending if n.owner in shared_rule for p in n.shared_paths})
        parts.append(
            f"needs approval by {', '.join(shared_rule)} (coditect's shared-path rule: every owning stream "
            f"approves {', '.join(paths)}; GitHub's rule, any one code owner, is met)"
        )
    parts += [need_text(n) for n in later]
    return "; ".join(parts)


def gates_reason(view: PrView, specs: Sequence[GateSpec], before_running: bool = False) -> str | None:
    """Why ``view``'s PR cannot be merged on the strength of its head's checks (None when it can).

    ``specs`` are its stream's gates in its repository: each must have passed on the head. Without any, the
    head needs at least one check, every one passed. ``before_running``: gates without a result yet are
    what ``pr merge`` runs first (a dry run says so instead of refusing).
    """
    if view.pr is None:
        return "no open pull request"
    head = (view.pr.head_sha or "?")[:12]
    status = {c.name: c.status for c in view.checks}
    if not specs:
        if not view.checks:
            return (
                f"no check ran on its head {head} and stream {view.stream} has no gates in repository "
                f"{view.repo}: nothing shows it works (add gates to the stream, or merge it at a checkpoint)"
            )
        unsettled = [c.name for c in view.checks if c.status != "success"]
        return f"check(s) not passed on its head {head}: {', '.join(unsettled)}" if unsettled else None
    names = [name for spec in specs for name in spec.names]
    failed = [n for n in names if status.get(n) == "failure"]
    if failed:
        return f"gate(s) {', '.join(failed)} failed on its head {head}"
    missing = [n for n in names if status.get(n) != "success"]
    if missing and before_running:
        return None
    if missing:
        return f"gate(s) {', '.join(missing)} have not passed on its head {head}"
    return None
