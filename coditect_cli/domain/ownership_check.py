"""``codeowners check``: files a feature branch changed outside its stream's ownership."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coditect_cli.domain.manifest import Manifest, Pair, RepoId
from coditect_cli.domain.ownership import RepoOwnership


@dataclass(frozen=True)
class Violation:
    """A changed file the stream does not own, and who does."""

    path: str
    owners: tuple[str, ...]  # stream ids; empty when no stream owns it


@dataclass(frozen=True)
class BranchCheck:
    """The ownership verdict for one feature branch."""

    stream: str
    repo: str
    branch: str
    changed: int
    violations: tuple[Violation, ...]
    shared: tuple[str, ...] = ()
    missing: bool = False  # the branch does not exist (setup not run)


def check_branch(pair: Pair, own: RepoOwnership, changed: tuple[str, ...]) -> BranchCheck:
    """Split ``changed`` into what ``pair``'s stream owns, shared paths it co-owns, and violations."""
    violations: list[Violation] = []
    shared: list[str] = []
    for path in changed:
        owners = own.owners(path)
        if pair.stream.id in owners.streams:
            if owners.shared:
                shared.append(path)
            continue
        violations.append(Violation(path, tuple(sorted(owners.streams))))
    return BranchCheck(
        pair.stream.id, pair.repo.id, pair.branch, len(changed), tuple(violations), tuple(shared)
    )


@dataclass(frozen=True)
class OwnershipReport:
    """Every feature branch of a phase checked against its stream's ownership."""

    phase: str
    integration: str
    branches: tuple[BranchCheck, ...]

    @property
    def violations(self) -> int:
        return sum(len(b.violations) for b in self.branches)

    def to_json(self, manifest: Manifest) -> dict[str, Any]:
        def owner_names(streams: tuple[str, ...]) -> list[str]:
            return [manifest.stream(s).code_owner for s in streams]

        return {
            "phase": self.phase,
            "integration": self.integration,
            "violations": self.violations,
            "branches": [
                {
                    "stream": b.stream,
                    "repo": b.repo,
                    "branch": b.branch,
                    "missing": b.missing,
                    "changed": b.changed,
                    "shared": list(b.shared),
                    "violations": [
                        {"path": v.path, "owners": list(v.owners), "code_owners": owner_names(v.owners)}
                        for v in b.violations
                    ],
                }
                for b in self.branches
            ],
        }


def missing_branch(pair: Pair) -> BranchCheck:
    """The verdict for a feature branch that does not exist yet."""
    return BranchCheck(pair.stream.id, pair.repo.id, pair.branch, 0, (), missing=True)


def group_pairs(manifest: Manifest) -> dict[RepoId, list[Pair]]:
    """The pairs of each repository, in manifest order."""
    out: dict[RepoId, list[Pair]] = {}
    for pair in manifest.pairs():
        out.setdefault(RepoId(pair.repo.id), []).append(pair)
    return out
