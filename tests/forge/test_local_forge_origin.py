"""The local forge reads origin as it is now: a branch pushed to origin from another clone is in the next
listing (its head, its changed files), however often the listing ran before with nothing moved."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import PHASE1, build_phase1_sandbox, git_in, repo_dir, setup_with_cwd, stream_worktree

from coditect_cli.project import Project
from coditect_cli.services import prs
from coditect_cli.services.demo import _commit

BRANCH = "feature/phase-1/frontend/auth-ui"


def _view(project: Project) -> prs.PrView:
    (view,) = [
        v for v in prs.list_prs(project, PHASE1).rows if v.stream == "frontend" and v.repo == "frontend"
    ]
    return view


def test_a_push_from_another_clone_is_in_the_next_listing(
    isolated_git: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    worktree = stream_worktree(root, "frontend", "frontend")
    ok, output = _commit(
        worktree, "src/pages/Login.tsx", "\nexport const refresh = true;\n", "feat(ui): refresh"
    )
    assert ok, output
    monkeypatch.chdir(root)
    project = Project(root)
    prs.open_prs(project, PHASE1, "frontend", "frontend")
    first = _view(project)
    assert first.pr is not None and first.pr.head == BRANCH
    assert first.pr.head_sha == git_in(worktree, "rev-parse", "HEAD")
    assert first.files == ("src/pages/Login.tsx",)
    assert _view(project).files == first.files  # nothing moved: the same answer

    origin = Path(git_in(repo_dir(root, "frontend"), "config", "--get", "remote.origin.url"))
    clone = tmp_path / "elsewhere"
    git_in(tmp_path, "clone", "-q", "--branch", BRANCH, str(origin), str(clone))
    (clone / "src" / "pages" / "Profile.tsx").write_text("export const profile = 1;\n", encoding="utf-8")
    git_in(clone, "add", "-A")
    git_in(
        clone, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "feat(ui): profile"
    )
    git_in(clone, "push", "-q", "origin", BRANCH)
    pushed = git_in(clone, "rev-parse", "HEAD")

    second = _view(project)
    assert second.pr is not None and second.pr.head_sha == pushed
    assert second.files == ("src/pages/Login.tsx", "src/pages/Profile.tsx")
    assert git_in(repo_dir(root, "frontend"), "rev-parse", f"refs/remotes/origin/{BRANCH}") == pushed
