"""``coditect conflicts``: predict the textual conflicts between a phase's branches before anyone merges.

Per repository, whatever the number of branches: one ``cat-file --batch-check`` resolves every branch
(local and origin's), one ``rev-parse`` finds the object directory and one ``merge-tree --stdin`` runs
every merge.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from coditect_cli.domain.conflicts import (
    ConflictReport,
    MergeResult,
    RepoChecks,
    build_report,
    fed_checks,
    plan_checks,
)
from coditect_cli.project import Project

RefSource = Literal["local", "remote"]

LOCAL = "refs/heads/"
REMOTE = "refs/remotes/origin/"


def candidates(branch: str, prefer: RefSource = "local") -> tuple[str, str]:
    """The refs ``branch`` may be compared as, best first."""
    local, remote = f"{LOCAL}{branch}", f"{REMOTE}{branch}"
    return (remote, local) if prefer == "remote" else (local, remote)


def resolve_branches(
    found: Mapping[str, str | None], branches: list[str], prefer: RefSource
) -> dict[str, str | None]:
    """Each branch mapped to the first of its :func:`candidates` that exists (None when none does)."""
    return {b: next((ref for ref in candidates(b, prefer) if found.get(ref)), None) for b in branches}


def predict_repo(
    repo_path: Path, checks: RepoChecks, prefer: RefSource = "local"
) -> tuple[dict[str, str | None], list[MergeResult]]:
    """Resolve the branches of ``checks`` in the repository at ``repo_path`` and run its merges."""
    from coditect_cli.adapters.mergetree import merge_tree_batch, verify_refs

    branches = [lane.branch for lane in checks.all_lanes]
    found = verify_refs(repo_path, [ref for b in branches for ref in candidates(b, prefer)])
    refs = resolve_branches(found, branches, prefer)
    fed = fed_checks(checks, refs)
    pairs: list[tuple[str, str]] = []
    for check in fed:
        a, b = refs[check.a.branch], refs[check.b.branch]
        assert a is not None and b is not None
        pairs.append((a, b))
    return refs, merge_tree_batch(repo_path, pairs)


def predict(project: Project, phase: str | None, *, refs: RefSource = "local") -> ConflictReport:
    """Predict the conflicts of ``phase``: in every repository, every pair of feature branches and each
    feature branch against the integration branch.

    ``refs="local"`` compares local branches, falling back to ``origin/<branch>`` for a branch that only
    origin has; ``refs="remote"`` prefers origin's. A branch found nowhere is reported as unknown and its
    pairs are not merged.
    """
    from coditect_cli.services.manifest import load_valid

    checked = load_valid(project, phase)
    manifest = checked.loaded.manifest
    plans = plan_checks(manifest)
    resolved: dict[str, dict[str, str | None]] = {}
    results: dict[str, list[MergeResult]] = {}
    for plan in plans:
        path = (project.root / plan.path).resolve()
        resolved[plan.repo], results[plan.repo] = predict_repo(path, plan, refs)
    return build_report(manifest.phase, plans, resolved, results)
