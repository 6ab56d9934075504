"""Predicted textual conflicts between the feature branches of a phase.

Pure: :func:`plan_checks` turns a manifest into the merges to try in each repository (every unordered pair
of feature branches there, and each feature branch against the integration branch); the service resolves
the refs and runs the merges; :func:`build_report` folds the outcomes into a :class:`ConflictReport`.
No git is called here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Any

from coditect_cli.errors import Problem

if TYPE_CHECKING:
    from coditect_cli.domain.manifest import Manifest

INTEGRATION = "integration"  # the label of the integration branch in reports and matrices


# ------------------------------------------------------------------------------------------ merge results


@dataclass(frozen=True)
class MergeMessage:
    """One informational or conflict message of ``git merge-tree``: the paths it is about, its type
    (``CONFLICT (contents)``, ``CONFLICT (modify/delete)``, ``Auto-merging``...) and its text."""

    paths: tuple[str, ...]
    kind: str
    text: str

    @property
    def is_conflict(self) -> bool:
        return self.kind.startswith("CONFLICT")


@dataclass(frozen=True)
class MergeResult:
    """The outcome of merging ``theirs`` into ``ours`` without touching any work tree.

    ``paths`` are the conflicted paths (empty when clean). ``error`` is set when git could not merge the
    two at all (unrelated histories, an object that is not a commit): then ``clean`` is False and
    ``paths`` empty, and the pair is neither clean nor a conflict.
    """

    ours: str
    theirs: str
    clean: bool
    paths: tuple[str, ...] = ()
    tree: str | None = None
    messages: tuple[MergeMessage, ...] = ()
    error: str | None = None

    @property
    def conflict(self) -> bool:
        return not self.clean and self.error is None

    def kinds(self) -> dict[str, tuple[str, ...]]:
        """The conflict types (``contents``, ``modify/delete``...) of each conflicted path."""
        out: dict[str, list[str]] = {p: [] for p in self.paths}
        for message in self.messages:
            if not message.is_conflict:
                continue
            kind = message.kind.removeprefix("CONFLICT").strip().strip("()") or "conflict"
            for path in message.paths:
                if path in out and kind not in out[path]:
                    out[path].append(kind)
        return {p: tuple(k) for p, k in out.items()}


# ------------------------------------------------------------------------------------------------ checks


@dataclass(frozen=True)
class Lane:
    """A branch taking part in the checks: a stream's feature branch, or the integration branch."""

    label: str  # the stream id, or INTEGRATION
    branch: str

    @property
    def is_integration(self) -> bool:
        return self.label == INTEGRATION


@dataclass(frozen=True)
class Check:
    """One merge to try: ``b`` merged into ``a`` (symmetric as far as conflicts go)."""

    a: Lane
    b: Lane


@dataclass(frozen=True)
class RepoChecks:
    """Every merge to try in one repository."""

    repo: str
    path: str  # relative to the project root, as in the manifest
    lanes: tuple[Lane, ...]  # the feature branches, in the manifest's stream order
    integration: Lane
    checks: tuple[Check, ...]

    @property
    def all_lanes(self) -> tuple[Lane, ...]:
        return (*self.lanes, self.integration)


def plan_checks(manifest: Manifest) -> tuple[RepoChecks, ...]:
    """Per repository with at least one feature branch: every unordered pair of its feature branches,
    then each feature branch against the integration branch. Repositories keep the manifest's order."""
    integration = Lane(INTEGRATION, str(manifest.integration_branch))
    from coditect_cli.domain.manifest import pairs_by_repo

    by_repo = {
        repo: [Lane(pair.stream.id, str(pair.branch)) for pair in group]
        for repo, group in pairs_by_repo(manifest.pairs()).items()
    }
    out: list[RepoChecks] = []
    for repo in manifest.repositories:
        lanes = tuple(by_repo.get(repo.id, ()))
        if not lanes:
            continue
        checks = [Check(a, b) for a, b in combinations(lanes, 2)]
        checks += [Check(lane, integration) for lane in lanes]
        out.append(RepoChecks(repo.id, repo.path, lanes, integration, tuple(checks)))
    return tuple(out)


def unknown_branch_message(branch: str, repo: str) -> str:
    return f"branch {branch} does not exist in repo {repo} (run `coditect streams setup`)"


# ------------------------------------------------------------------------------------------------ report


@dataclass(frozen=True)
class PairOutcome:
    """What merging one pair predicts."""

    a: Lane
    b: Lane
    conflict: bool
    paths: tuple[str, ...] = ()
    kinds: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a.branch,
            "b": self.b.branch,
            "a_label": self.a.label,
            "b_label": self.b.label,
            "conflict": self.conflict,
            "paths": list(self.paths),
            "kinds": {p: list(k) for p, k in self.kinds.items()},
            "error": self.error,
        }


@dataclass(frozen=True)
class UnknownRef:
    """A branch the manifest expects that exists neither locally nor on origin."""

    lane: Lane
    message: str


@dataclass(frozen=True)
class RepoReport:
    """The predictions for one repository."""

    repo: str
    path: str
    lanes: tuple[Lane, ...]
    integration: Lane
    outcomes: tuple[PairOutcome, ...]
    unknown: tuple[UnknownRef, ...] = ()
    refs: Mapping[str, str] = field(default_factory=dict)  # branch -> the ref compared (refs/heads/...)

    @property
    def all_lanes(self) -> tuple[Lane, ...]:
        return (*self.lanes, self.integration)

    @property
    def conflicts(self) -> tuple[PairOutcome, ...]:
        return tuple(o for o in self.outcomes if o.conflict)

    @property
    def errors(self) -> tuple[PairOutcome, ...]:
        return tuple(o for o in self.outcomes if o.error is not None)

    def outcome(self, a: str, b: str) -> PairOutcome | None:
        """The outcome between the lanes labelled ``a`` and ``b`` (either order), None when not checked."""
        for o in self.outcomes:
            if {o.a.label, o.b.label} == {a, b}:
                return o
        return None

    def is_unknown(self, label: str) -> bool:
        return any(u.lane.label == label for u in self.unknown)

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "path": self.path,
            "branches": [lane.branch for lane in self.lanes],
            "streams": {lane.branch: lane.label for lane in self.lanes},
            "integration": self.integration.branch,
            "refs": dict(self.refs),
            "pairs": [o.to_json() for o in self.outcomes],
            "unknown_refs": [u.lane.branch for u in self.unknown],
            "conflicts": len(self.conflicts),
        }


@dataclass(frozen=True)
class ConflictReport:
    """Predicted conflicts of a phase, repository by repository."""

    phase: str
    repositories: tuple[RepoReport, ...]

    @property
    def conflicts(self) -> int:
        """How many pairs are predicted to conflict, over all repositories."""
        return sum(len(r.conflicts) for r in self.repositories)

    @property
    def any_conflict(self) -> bool:
        return self.conflicts > 0

    @property
    def unknown_refs(self) -> tuple[tuple[str, UnknownRef], ...]:
        return tuple((r.repo, u) for r in self.repositories for u in r.unknown)

    @property
    def errors(self) -> tuple[tuple[str, PairOutcome], ...]:
        return tuple((r.repo, o) for r in self.repositories for o in r.errors)

    @property
    def pairs(self) -> int:
        return sum(len(r.outcomes) for r in self.repositories)

    def problems(self) -> tuple[Problem, ...]:
        """Unknown refs and failed merges (errors), then each predicted conflict (also an error)."""
        out = [Problem("unknown-ref", u.message) for _, u in self.unknown_refs]
        out += [
            Problem("merge-failed", f"in repo {repo}: cannot merge {o.a.branch} and {o.b.branch}: {o.error}")
            for repo, o in self.errors
        ]
        for r in self.repositories:
            for o in r.conflicts:
                shown = ", ".join(o.paths[:5]) + (f" and {len(o.paths) - 5} more" if len(o.paths) > 5 else "")
                out.append(
                    Problem(
                        "conflict",
                        f"in repo {r.repo}: {o.a.label} ({o.a.branch}) and {o.b.label} ({o.b.branch}) "
                        f"conflict in {len(o.paths)} path(s): {shown}",
                    )
                )
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "repositories": [r.to_json() for r in self.repositories],
            "pairs": self.pairs,
            "conflicts": self.conflicts,
            "unknown_refs": len(self.unknown_refs),
            "errors": len(self.errors),
        }


def fed_checks(checks: RepoChecks, refs: Mapping[str, str | None]) -> tuple[Check, ...]:
    """The checks whose two branches both resolved (the ones to hand to merge-tree), in order."""
    return tuple(c for c in checks.checks if refs.get(c.a.branch) and refs.get(c.b.branch))


def build_report(
    phase: str,
    plans: Sequence[RepoChecks],
    refs: Mapping[str, Mapping[str, str | None]],
    results: Mapping[str, Sequence[MergeResult]],
) -> ConflictReport:
    """Fold merge results into a report.

    ``refs[repo][branch]`` is the ref each branch was compared as (None: it does not exist);
    ``results[repo]`` holds one MergeResult per check of :func:`fed_checks`, in that order.
    """
    reports: list[RepoReport] = []
    for plan in plans:
        repo_refs = refs.get(plan.repo, {})
        fed = fed_checks(plan, repo_refs)
        got = list(results.get(plan.repo, ()))
        if len(got) != len(fed):
            raise ValueError(f"repo {plan.repo}: {len(fed)} merge(s) expected, {len(got)} result(s) given")
        outcomes = tuple(
            PairOutcome(check.a, check.b, r.conflict, r.paths, r.kinds(), r.error)
            for check, r in zip(fed, got, strict=True)
        )
        unknown = tuple(
            UnknownRef(lane, unknown_branch_message(lane.branch, plan.repo))
            for lane in plan.all_lanes
            if not repo_refs.get(lane.branch)
        )
        known = {b: r for b, r in repo_refs.items() if r}
        reports.append(
            RepoReport(plan.repo, plan.path, plan.lanes, plan.integration, outcomes, unknown, known)
        )
    return ConflictReport(phase, tuple(reports))
