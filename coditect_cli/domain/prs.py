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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from coditect_cli.domain.manifest import Manifest, Pair, RepoId
from coditect_cli.forge.base import (
    Check,
    Merged,
    MergeStrategy,
    PullRequest,
    Review,
    ReviewState,
    latest_verdicts,
    summarize_checks,
    verdict_of,
)

NeedState = Literal["approved", "changes_requested", "pending"]


# ------------------------------------------------------------------------------------------------ reports


@dataclass(frozen=True)
class OwnerNeed:
    """One code owner a PR needs, the changed paths that need them, and where their verdict stands."""

    owner: str
    paths: tuple[str, ...]
    shared_paths: tuple[str, ...] = ()
    state: NeedState = "pending"

    @property
    def shared(self) -> bool:
        """Whether a shared path (one that needs every one of its owners) is among ``paths``."""
        return bool(self.shared_paths)

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "owner": self.owner,
            "paths": list(self.paths),
            "shared": self.shared,
            "shared_paths": list(self.shared_paths),
            "state": self.state,
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

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope)."""
        return {
            "stream": self.view.stream,
            "repo": self.view.repo,
            "pr": None if self.view.pr is None else self.view.pr.to_json(),
            "merged": None if self.merged is None else self.merged.to_json(),
            "refused": self.refused,
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
    """The owners a PR changing ``paths`` in ``repo`` needs, and the changed paths nobody owns.

    Each owned path needs its stream's code owner; a shared path needs every owner it lists. When no changed
    path is owned, the PR still needs the code owner of ``author`` (its stream), so nothing merges unreviewed.
    """
    from coditect_cli.domain.ownership import ownership

    own = ownership(manifest).get(RepoId(repo))
    found: dict[str, list[str]] = {}
    shared: dict[str, list[str]] = {}
    unowned: list[str] = []
    for path in paths:
        owners = own.owners(path) if own is not None else None
        if owners is None or not owners.streams:
            unowned.append(path)
            continue
        streams = sorted(owners.streams, key=lambda s: (manifest.stream(s).terminal, s))
        for sid in streams:
            owner = manifest.stream(sid).code_owner
            found.setdefault(owner, []).append(path)
            if owners.shared:
                shared.setdefault(owner, []).append(path)
    if not found and author is not None:
        found[manifest.stream(author).code_owner] = []
    needs = [OwnerNeed(owner, tuple(p), tuple(shared.get(owner, ()))) for owner, p in found.items()]
    return needs, unowned


def judge(needs: Sequence[OwnerNeed], reviews: Sequence[Review]) -> tuple[OwnerNeed, ...]:
    """``needs`` with each owner's standing verdict from ``reviews``."""
    verdicts = latest_verdicts(reviews)
    out: list[OwnerNeed] = []
    for need in needs:
        verdict = verdict_of(verdicts, need.owner)
        state: NeedState = (
            "approved"
            if verdict == "approved"
            else ("changes_requested" if verdict == "changes_requested" else "pending")
        )
        out.append(OwnerNeed(need.owner, need.paths, need.shared_paths, state))
    return tuple(out)


def proposal_text(manifest: Manifest, pair: Pair) -> tuple[str, str]:
    """The title and Markdown body of a stream's PR in one repository, from the manifest."""
    from coditect_cli.domain.ownership import ownership

    stream, work, repo = pair.stream, pair.work, pair.repo
    multi = len(stream.work) > 1
    title = f"[{manifest.phase}] {stream.name}: {work.topic}" + (f" ({repo.id})" if multi else "")
    lines = [
        f"**Stream `{stream.id}`** — {stream.name} (terminal {stream.terminal}) · agent `{stream.agent}` · "
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
    owner: GitHub's rule too, where any one code owner of a file suffices), or coditect's shared-path rule
    (every owning stream approves a shared path, even when another of its owners already did)."""
    approved = {n.owner for n in needs if n.state == "approved"}
    covered = {p for n in needs if n.owner in approved for p in n.paths}
    owner_rule = [n.owner for n in missing if not n.paths or set(n.paths) - covered]
    shared_rule = [n.owner for n in missing if n.owner not in owner_rule]
    parts = []
    if owner_rule:
        parts.append(f"needs approval by {', '.join(owner_rule)}")
    if shared_rule:
        paths = sorted({p for n in missing if n.owner in shared_rule for p in n.shared_paths})
        parts.append(
            f"needs approval by {', '.join(shared_rule)} (coditect's shared-path rule: every owning stream "
            f"approves {', '.join(paths)}; GitHub's rule, any one code owner, is met)"
        )
    return "; ".join(parts)
