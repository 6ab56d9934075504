"""The ownership guard sees every way a commit lands on a stream's branch, not only ``git commit``.

In a set-up sandbox, the backend stream's worktree tries to take in the deploy stream's Dockerfile change by
cherry-pick, merge, rebase, revert, ``commit --amend --no-verify``, ``reset`` and on another branch of its own:
each is refused at the ref update (the branch does not move) naming the file, its owner and the commit. Taking
the same change from the integration branch (merge, rebase, fast-forward) is allowed, and so is the
commit that resolves a merge conflict in a path the stream shares.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import (
    PHASE1_INTEGRATION,
    build_phase1_sandbox,
    git_in,
    repo_dir,
    setup_with_cwd,
    stream_worktree,
)

from coditect_cli.adapters.git import commit_file

DOCKERFILE_OWNER = "Dockerfile  owned by deploy (@codi-devops-engineer)"


@dataclass(frozen=True)
class Sandbox:
    root: Path
    backend: Path  # the backend stream's worktree in the backend repository
    branch: str  # its branch
    foreign: str  # a commit of the deploy stream changing the Dockerfile, on the deploy stream's branch
    foreign_branch: str


@pytest.fixture(scope="module")
def sandbox(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    root = build_phase1_sandbox(tmp_path_factory.mktemp("landing") / "sandbox")
    setup_with_cwd(root)
    deploy = stream_worktree(root, "deploy", "backend")
    (deploy / "Dockerfile").write_text("FROM python:3.12-slim AS deploy\n", encoding="utf-8")
    git_in(deploy, "commit", "-q", "-am", "deploy: multi-stage Dockerfile")
    backend = stream_worktree(root, "backend", "backend")
    (backend / "src" / "api" / "v1" / "auth.py").write_text("# auth\n", encoding="utf-8")
    git_in(backend, "add", "-A")
    git_in(backend, "commit", "-q", "-m", "backend: auth endpoint")
    yield Sandbox(
        root,
        backend,
        git_in(backend, "symbolic-ref", "--short", "HEAD"),
        git_in(deploy, "rev-parse", "HEAD"),
        git_in(deploy, "symbolic-ref", "--short", "HEAD"),
    )


def git(worktree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(worktree), *args], capture_output=True, text=True, check=False)


def restore(worktree: Path, branch: str, head: str) -> None:
    """Abort whatever operation a refusal left in progress and put ``branch`` back at ``head``, checked out."""
    for operation in ("merge", "cherry-pick", "revert", "rebase"):
        git(worktree, operation, "--abort")
    git_in(worktree, "switch", "-q", "--force", branch)
    git_in(worktree, "reset", "-q", "--hard", head)
    git_in(worktree, "clean", "-q", "-fd")


def refused(s: Sandbox, *args: str) -> str:
    """Run ``git ARGS`` in the backend worktree; assert it failed and its branch did not move; return stderr."""
    branch = s.branch
    head = before = git_in(s.backend, "rev-parse", branch)
    done = git(s.backend, *args)
    try:
        assert done.returncode != 0, f"git {' '.join(args)} was not refused: {done.stdout}{done.stderr}"
        assert git_in(s.backend, "rev-parse", branch) == before, f"git {' '.join(args)} moved {branch}"
        assert "fatal: ref updates aborted by hook" in done.stderr
        assert (
            f"coditect: refused to move {branch}: stream backend may not land commits changing these files "
            "in backend (phase phase-1):" in done.stderr
        ), done.stderr
    finally:
        restore(s.backend, s.branch, head)
    return done.stderr


def subject(worktree: Path, commit: str) -> str:
    return git_in(worktree, "log", "-1", "--format=%h %s", commit)


def test_cherry_pick_of_another_streams_commit_is_refused(sandbox: Sandbox) -> None:
    stderr = refused(sandbox, "cherry-pick", sandbox.foreign)
    assert f"  {DOCKERFILE_OWNER}  (changed by " in stderr
    assert "hand the change to the owning stream" in stderr


def test_merge_of_another_streams_branch_is_refused_naming_its_commit(sandbox: Sandbox) -> None:
    stderr = refused(sandbox, "merge", "--no-edit", sandbox.foreign_branch)
    assert f"  {DOCKERFILE_OWNER}  (changed by {subject(sandbox.backend, sandbox.foreign)})" in stderr


def test_rebase_onto_another_streams_branch_is_refused_and_can_be_aborted(sandbox: Sandbox) -> None:
    head = git_in(sandbox.backend, "rev-parse", "HEAD")
    done = git(sandbox.backend, "rebase", sandbox.foreign_branch)
    try:
        assert done.returncode != 0
        assert (
            f"  {DOCKERFILE_OWNER}  (changed by {subject(sandbox.backend, sandbox.foreign)})" in done.stderr
        )
        # The rebased commits were made on a detached HEAD; the branch itself never moved.
        assert git_in(sandbox.backend, "rev-parse", sandbox.branch) == head
        assert git_in(sandbox.backend, "rebase", "--abort") == ""
        assert git_in(sandbox.backend, "symbolic-ref", "--short", "HEAD") == sandbox.branch
        assert git_in(sandbox.backend, "rev-parse", "HEAD") == head
    finally:
        restore(sandbox.backend, sandbox.branch, head)


def test_amend_adding_a_foreign_file_is_refused_even_with_no_verify(sandbox: Sandbox) -> None:
    (sandbox.backend / "kubernetes").mkdir(exist_ok=True)
    (sandbox.backend / "kubernetes" / "deployment.yaml").write_text("kind: Deployment\n", encoding="utf-8")
    git_in(sandbox.backend, "add", "-A")
    stderr = refused(sandbox, "commit", "-q", "--amend", "--no-edit", "--no-verify")
    assert "  kubernetes/deployment.yaml  owned by deploy (@codi-devops-engineer)  (changed by " in stderr
    # The amended commit's own file is the stream's: only the foreign one is named.
    assert "src/api/v1/auth.py" not in stderr


def test_reset_and_update_ref_to_another_streams_commit_are_refused(sandbox: Sandbox) -> None:
    assert DOCKERFILE_OWNER in refused(sandbox, "reset", "-q", "--hard", sandbox.foreign)
    assert DOCKERFILE_OWNER in refused(sandbox, "update-ref", f"refs/heads/{sandbox.branch}", sandbox.foreign)


def test_the_streams_other_branches_are_guarded_too(sandbox: Sandbox) -> None:
    other = sandbox.branch.rsplit("/", 1)[0] + "/second-topic"
    done = git(sandbox.backend, "branch", other, sandbox.foreign)
    assert done.returncode != 0
    assert f"coditect: refused to move {other}: stream backend may not land commits" in done.stderr
    assert DOCKERFILE_OWNER in done.stderr
    assert git(sandbox.backend, "rev-parse", "--verify", "--quiet", f"refs/heads/{other}").returncode == 1


def test_a_branch_outside_the_streams_names_is_not_guarded(sandbox: Sandbox) -> None:
    """Scratch branches are the stream's business: nothing reaches its PR branch from them unchecked."""
    git_in(sandbox.backend, "branch", "scratch/look-at-deploy", sandbox.foreign)
    try:
        assert git_in(sandbox.backend, "rev-parse", "scratch/look-at-deploy") == sandbox.foreign
        refused(sandbox, "merge", "--no-edit", "scratch/look-at-deploy")
    finally:
        git_in(sandbox.backend, "branch", "-q", "-D", "scratch/look-at-deploy")


def test_taking_the_same_change_from_the_integration_branch_is_allowed_and_reverting_it_is_not(
    sandbox: Sandbox,
) -> None:
    """A checkpoint landed deploy's Dockerfile on the integration branch: backend may merge it, rebase onto it
    and fast-forward to it; reverting it is a change to deploy's file like any other."""
    repo = repo_dir(sandbox.root, "backend")
    before = {b: git_in(repo, "rev-parse", b) for b in (PHASE1_INTEGRATION, sandbox.branch)}
    _old, landed = commit_file(
        repo, PHASE1_INTEGRATION, "Dockerfile", "FROM scratch\n", "deploy: land Dockerfile"
    )
    try:
        done = git(sandbox.backend, "merge", "--no-edit", PHASE1_INTEGRATION)
        assert done.returncode == 0, done.stderr
        assert "coditect" not in done.stderr
        merged = git_in(sandbox.backend, "rev-parse", "HEAD")
        assert git_in(sandbox.backend, "rev-parse", f"{merged}^2") == landed

        stderr = refused(sandbox, "revert", "--no-edit", landed)
        assert f"  {DOCKERFILE_OWNER}  (changed by " in stderr
        assert 'Revert "deploy: land Dockerfile"' in stderr

        # Rebase the stream's own commit onto the integration branch instead of merging it.
        git_in(sandbox.backend, "reset", "-q", "--hard", before[sandbox.branch])
        done = git(sandbox.backend, "rebase", PHASE1_INTEGRATION)
        assert done.returncode == 0, done.stderr
        assert git_in(sandbox.backend, "rev-parse", f"{sandbox.branch}^") == landed

        # A branch without commits of its own fast-forwards to the integration tip.
        git_in(sandbox.backend, "reset", "-q", "--hard", before[PHASE1_INTEGRATION])
        done = git(sandbox.backend, "merge", "--ff-only", PHASE1_INTEGRATION)
        assert done.returncode == 0, done.stderr
        assert git_in(sandbox.backend, "rev-parse", sandbox.branch) == landed
    finally:
        restore(sandbox.backend, sandbox.branch, before[sandbox.branch])
        git_in(repo, "update-ref", f"refs/heads/{PHASE1_INTEGRATION}", before[PHASE1_INTEGRATION], landed)


def test_a_merge_resolving_a_conflict_in_a_shared_path_is_allowed(sandbox: Sandbox) -> None:
    """openapi.yaml is shared by backend and frontend: the resolution is the merge's own change, and allowed."""
    repo = repo_dir(sandbox.root, "backend")
    before = {b: git_in(repo, "rev-parse", b) for b in (PHASE1_INTEGRATION, sandbox.branch)}
    commit_file(repo, PHASE1_INTEGRATION, "openapi.yaml", "openapi: 3.1.0\nversion: frontend\n", "frontend")
    try:
        (sandbox.backend / "openapi.yaml").write_text("openapi: 3.1.0\nversion: backend\n", encoding="utf-8")
        git_in(sandbox.backend, "commit", "-q", "-am", "backend: bump the contract")
        assert git(sandbox.backend, "merge", "--no-edit", PHASE1_INTEGRATION).returncode == 1  # conflict
        (sandbox.backend / "openapi.yaml").write_text("openapi: 3.1.0\nversion: both\n", encoding="utf-8")
        git_in(sandbox.backend, "add", "openapi.yaml")
        done = git(sandbox.backend, "commit", "-q", "--no-edit")
        assert done.returncode == 0, done.stderr
        assert git_in(sandbox.backend, "show", f"{sandbox.branch}:openapi.yaml").endswith("version: both")
    finally:
        restore(sandbox.backend, sandbox.branch, before[sandbox.branch])
        git_in(repo, "update-ref", f"refs/heads/{PHASE1_INTEGRATION}", before[PHASE1_INTEGRATION])


def test_the_local_integration_branch_takes_from_a_streams_worktree_only_what_origin_has(
    sandbox: Sandbox,
) -> None:
    """The stream's branches trust the local integration branch, so a stream may not put another stream's
    commit there (``update-ref``, or a ``--no-verify`` commit on it) and merge it from there; moving it to
    what origin's integration branch holds (a fetch after a checkpoint) is allowed."""
    repo = repo_dir(sandbox.root, "backend")
    before = git_in(repo, "rev-parse", PHASE1_INTEGRATION)
    ref = f"refs/heads/{PHASE1_INTEGRATION}"
    done = git(sandbox.backend, "update-ref", ref, sandbox.foreign)
    assert done.returncode != 0
    assert (
        f"coditect: refused to move {PHASE1_INTEGRATION}: stream backend may not land commits" in done.stderr
    )
    assert DOCKERFILE_OWNER in done.stderr
    assert git_in(repo, "rev-parse", PHASE1_INTEGRATION) == before

    git_in(sandbox.backend, "switch", "-q", "--detach", before)
    try:
        (sandbox.backend / "Dockerfile").write_text("FROM evil\n", encoding="utf-8")
        git_in(sandbox.backend, "commit", "-q", "--no-verify", "-am", "sneak the Dockerfile in")
        sneaked = git_in(sandbox.backend, "rev-parse", "HEAD")
        done = git(sandbox.backend, "branch", "-f", PHASE1_INTEGRATION, sneaked)
        assert done.returncode != 0, done.stdout
        assert git_in(repo, "rev-parse", PHASE1_INTEGRATION) == before
        # The merge it was for finds nothing trusted and is refused as well.
        git_in(sandbox.backend, "switch", "-q", "--force", sandbox.branch)
        stderr = refused(sandbox, "merge", "--no-edit", sneaked)
        assert "sneak the Dockerfile in" in stderr
    finally:
        restore(sandbox.backend, sandbox.branch, git_in(repo, "rev-parse", sandbox.branch))

    # A checkpoint landed deploy's Dockerfile on origin's integration branch: a fetch into the local branch
    # from the stream's worktree is allowed.
    _old, landed = commit_file(
        repo, PHASE1_INTEGRATION, "Dockerfile", "FROM scratch\n", "deploy: land Dockerfile"
    )
    try:
        git_in(repo, "push", "-q", "origin", PHASE1_INTEGRATION)
        git_in(repo, "update-ref", ref, before)
        done = git(sandbox.backend, "fetch", "-q", "origin", f"{PHASE1_INTEGRATION}:{PHASE1_INTEGRATION}")
        assert done.returncode == 0, done.stderr
        assert git_in(repo, "rev-parse", PHASE1_INTEGRATION) == landed
    finally:
        git_in(repo, "update-ref", ref, before)
        git_in(repo, "push", "-q", "--force", "origin", f"{before}:{ref}")
