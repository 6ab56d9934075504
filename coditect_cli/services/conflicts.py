"""``coditect conflicts``: predict the textual conflicts between a phase's branches before anyone merges.

Per repository, whatever the number of branches: one ``cat-file --batch-check`` resolves every branch
(local and origin's), one ``merge-base --octopus`` and one ``git log`` read the phase's history (which rules
out every pair that cannot conflict), and one ``merge-tree --stdin`` runs the merges that remain.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from coditect_cli.adapters.history import LoggedCommit, ancestors, common_base, history
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


def _touched(commits: set[str], graph: dict[str, LoggedCommit]) -> tuple[set[str], set[str]]:
    """The paths ``commits`` touched, and every directory above them."""
    files = {f for sha in commits for f in graph[sha].files}
    dirs = {f.rsplit("/", i)[0] for f in files for i in range(1, f.count("/") + 1)}
    return files, dirs


def may_conflict(a: str, b: str, graph: dict[str, LoggedCommit], reach: dict[str, set[str]]) -> bool:
    """Whether merging ``a`` and ``b`` can conflict at all (False means: certainly clean).

    A textual conflict needs a path both sides changed since their merge base, or a file on one side where
    the other has a directory. The changes on ``a``'s side are made by commits ``a`` has and ``b`` lacks
    (and vice versa), so paths touched by those two sets of commits that never meet cannot conflict.
    """
    only_a, only_b = reach[a] - reach[b], reach[b] - reach[a]
    if not only_a or not only_b:
        return False  # one side is an ancestor of the other: a fast-forward
    files_a, dirs_a = _touched(only_a, graph)
    files_b, dirs_b = _touched(only_b, graph)
    return bool(files_a & files_b or files_a & dirs_b or files_b & dirs_a)


def predict_repo(
    repo_path: Path,
    checks: RepoChecks,
    prefer: RefSource = "local",
    graph: dict[str, LoggedCommit] | None = None,
    known: Mapping[str, str] | None = None,
) -> tuple[dict[str, str | None], list[MergeResult]]:
    """Resolve the branches of ``checks`` in the repository at ``repo_path`` and run its merges.

    One ``git log`` over every branch first tells which pairs cannot conflict (see :func:`may_conflict`);
    only the others go to ``merge-tree``. With 50 branches that touch their own paths, that is a handful of
    merges instead of 1,275, at the same verdicts. A caller that has read that history already passes it as
    ``graph``: every commit reachable from the branches' local and origin refs but not from their common base;
    one that has read the repository's refs (``for-each-ref`` of ``refs/heads`` and ``refs/remotes/origin``)
    passes them as ``known`` (ref name -> commit id), and nothing is resolved again.
    """
    from coditect_cli.adapters.mergetree import merge_tree_batch, verify_refs

    branches = [lane.branch for lane in checks.all_lanes]
    wanted = [ref for b in branches for ref in candidates(b, prefer)]
    found: Mapping[str, str | None] = (
        {ref: known.get(ref) for ref in wanted} if known is not None else verify_refs(repo_path, wanted)
    )
    refs = resolve_branches(found, branches, prefer)
    fed = fed_checks(checks, refs)
    pairs: list[tuple[str, str]] = []
    for check in fed:
        a, b = refs[check.a.branch], refs[check.b.branch]
        assert a is not None and b is not None
        pairs.append((a, b))
    tips = sorted({ref for pair in pairs for ref in pair})
    if graph is None:
        graph = history(repo_path, tips, [base] if (base := common_base(repo_path, tips)) else [])
    reach = {tip: ancestors(found[tip] or tip, graph) for tip in tips}
    merge = [pair for pair in pairs if may_conflict(*pair, graph, reach)]
    # With the commits the refs name now: a merge made before in this process is reused.
    merged = dict(zip(merge, merge_tree_batch(repo_path, merge, ids=found), strict=True))
    return refs, [merged.get(pair) or MergeResult(pair[0], pair[1], True) for pair in pairs]


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
