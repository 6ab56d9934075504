"""``codeowners generate`` and ``codeowners check``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coditect_cli.domain.codeowners import CodeownersFile, codeowners_problems, generate
from coditect_cli.domain.manifest import RepoId
from coditect_cli.domain.ownership import ownership
from coditect_cli.domain.ownership_check import (
    BranchCheck,
    OwnershipReport,
    check_branch,
    group_pairs,
    missing_branch,
)
from coditect_cli.domain.plan import CODEOWNERS_PATH
from coditect_cli.errors import CoditectError, RefusedError
from coditect_cli.project import Project
from coditect_cli.services.manifest import Checked, load_valid, manifest_label


def files_for(checked: Checked) -> dict[RepoId, CodeownersFile]:
    """The CODEOWNERS file of every repository, checked against GitHub's rules."""
    files = generate(checked.loaded.manifest, manifest_label(checked))
    for repo, f in files.items():
        problems = codeowners_problems(f.text)
        if problems:
            raise CoditectError(
                f"generated CODEOWNERS for {repo!r} breaks GitHub's rules: {'; '.join(problems)}"
            )
    return files


@dataclass(frozen=True)
class Written:
    repo: str
    path: str
    changed: bool


def write_files(project: Project, phase: str | None, output: Path | None) -> tuple[Checked, list[Written]]:
    """Write each repository's CODEOWNERS: into ``output/<repo>/CODEOWNERS``, or ``.github/CODEOWNERS`` in place.

    In place, a CODEOWNERS with uncommitted edits is not overwritten (refused, exit 4).
    """
    from coditect_cli.adapters.git import Git

    checked = load_valid(project, phase, with_repos=output is None)
    manifest = checked.loaded.manifest
    written: list[Written] = []
    targets: dict[RepoId, Path] = {}
    files = files_for(checked)
    for repo_id in files:
        if output is not None:
            targets[repo_id] = output / repo_id / "CODEOWNERS"
        else:
            targets[repo_id] = (project.root / manifest.repository(repo_id).path / CODEOWNERS_PATH).resolve()
    if output is None:
        dirty = []
        for target in targets.values():
            repo = target.parent.parent
            status = Git(repo).out("status", "--porcelain", "--", CODEOWNERS_PATH)
            if status and not status.startswith("??"):
                dirty.append(f"{project.display(target)} ({status.split()[0]})")
        if dirty:
            raise RefusedError(
                "CODEOWNERS has uncommitted changes; not overwriting: " + ", ".join(dirty),
                hint="commit or discard those edits (the manifest is the source of truth), then generate again",
            )
    for repo_id, f in files.items():
        target = targets[repo_id]
        changed = not target.exists() or target.read_text(encoding="utf-8") != f.text
        if changed:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(f.text, encoding="utf-8")
        written.append(Written(repo_id, project.display(target), changed))
    return checked, written


def check(project: Project, phase: str | None) -> tuple[Checked, OwnershipReport]:
    """Every feature branch's changes since the integration branch, against its stream's ownership.

    Two git processes per repository for the changes (whatever the number of branches), plus the state read.
    """
    from coditect_cli.adapters.changes import changed_since
    from coditect_cli.adapters.git import read_state

    checked = load_valid(project, phase)
    manifest = checked.loaded.manifest
    integration = manifest.integration_branch
    rules = ownership(manifest)
    results: list[BranchCheck] = []
    for repo_id, pairs in group_pairs(manifest).items():
        path = (project.root / manifest.repository(repo_id).path).resolve()
        state = read_state(path)
        base = state.start_point(integration)
        if base is None:
            results.extend(missing_branch(p) for p in pairs)
            continue
        heads = {p.branch: state.start_point(p.branch) for p in pairs}
        changes = changed_since(path, base, [h for h in heads.values() if h is not None])
        for pair in pairs:
            head = heads[pair.branch]
            if head is None:
                results.append(missing_branch(pair))
            else:
                results.append(check_branch(pair, rules[repo_id], changes[head]))
    return checked, OwnershipReport(manifest.phase, integration, tuple(results))
