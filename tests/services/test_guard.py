"""The ownership guard (pre-commit hook) that ``streams setup`` installs in each stream's worktree.

Real commits in a real sandbox: owned paths pass, foreign and unowned paths are refused (nothing is
committed), shared paths pass with a note, ``--no-verify`` skips only the early check (the ref update is still
refused), the repository's own hooks are chained, and the hooks are scoped to the stream worktrees (the main
checkouts are not guarded and keep working). Merges, rebases and the like: test_guard_landing.py.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    assert_streams_set_up,
    build_phase1_sandbox,
    git_in,
    origin_of,
    repo_dir,
    setup_with_cwd,
    stream_worktree,
)

from coditect_cli.domain.guard import CHAIN_RECORD, GUARD_SCRIPT, HOOK_MARKER, HOOK_NAMES


class Sandbox:
    """The set-up sandbox of this module, and the marker file the chained repository hook appends to."""

    def __init__(self, root: Path, marker: Path):
        self.root = root
        self.marker = marker

    def chained_runs(self) -> list[str]:
        return self.marker.read_text(encoding="utf-8").splitlines() if self.marker.exists() else []


@pytest.fixture(scope="module")
def sandbox(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox whose backend repository had its own pre-commit hook before ``streams setup`` ran."""
    base = tmp_path_factory.mktemp("guard")
    root = build_phase1_sandbox(base / "sandbox")
    marker = base / "chained-hook-ran"
    backend_common = Path(
        git_in(repo_dir(root, "backend"), "rev-parse", "--path-format=absolute", "--git-common-dir")
    )
    hook = backend_common / "hooks" / "pre-commit"
    hook.write_text(f'#!/bin/sh\necho "$PWD $*" >> "{marker}"\nexit 0\n', encoding="utf-8")
    hook.chmod(0o755)
    setup_with_cwd(root)
    yield Sandbox(root, marker)


def commit(
    worktree: Path, files: dict[str, str | None], *options: str, message: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Write (or, for None, delete) ``files`` in ``worktree``, stage everything and try to commit."""
    for rel, text in files.items():
        path = worktree / rel
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    git_in(worktree, "add", "-A")
    return subprocess.run(
        ["git", "-C", str(worktree), "commit", "-q", "-m", message or f"touch {', '.join(files)}", *options],
        capture_output=True,
        text=True,
        check=False,
    )


def discard(worktree: Path) -> None:
    """Drop whatever a refused commit left staged or written."""
    git_in(worktree, "reset", "-q", "--hard", "HEAD")
    git_in(worktree, "clean", "-q", "-fd")


def refused(worktree: Path, files: dict[str, str | None]) -> str:
    """Commit ``files``, assert the guard refused and nothing was committed; return stderr."""
    head = git_in(worktree, "rev-parse", "HEAD")
    done = commit(worktree, files)
    try:
        assert done.returncode != 0, f"commit of {list(files)} in {worktree} was not refused"
        assert git_in(worktree, "rev-parse", "HEAD") == head
    finally:
        discard(worktree)
    return done.stderr


def passed(worktree: Path, files: dict[str, str | None], *options: str) -> str:
    """Commit ``files``, assert it went through as one new commit; return stderr."""
    head = git_in(worktree, "rev-parse", "HEAD")
    done = commit(worktree, files, *options)
    assert done.returncode == 0, done.stderr
    assert git_in(worktree, "rev-parse", "HEAD^") == head
    assert git_in(worktree, "status", "--porcelain") == ""
    return done.stderr


@pytest.fixture
def backend_wt(sandbox: Sandbox) -> Path:
    return stream_worktree(sandbox.root, "backend", "backend")


# ------------------------------------------------------------------------------------ the backend stream


def test_setup_left_every_guard_in_place(sandbox: Sandbox) -> None:
    assert_streams_set_up(sandbox.root, pushed=True)


def test_commit_in_owned_paths_passes_and_runs_the_chained_repository_hook(
    sandbox: Sandbox, backend_wt: Path
) -> None:
    runs = len(sandbox.chained_runs())
    stderr = passed(backend_wt, {"src/api/v1/auth.py": "# auth\n", "tests/test_new.py": "# new test\n"})
    assert "coditect" not in stderr
    assert sandbox.chained_runs()[runs:] == [f"{backend_wt} "]  # ran once, at the worktree's top


def test_commit_touching_another_streams_file_is_refused_naming_file_and_owner(
    sandbox: Sandbox, backend_wt: Path
) -> None:
    runs = len(sandbox.chained_runs())
    stderr = refused(backend_wt, {"Dockerfile": "FROM scratch\n"})
    assert "coditect: stream backend may not commit these files in backend (phase phase-1):" in stderr
    assert "  Dockerfile  owned by deploy (@codi-devops-engineer)" in stderr
    assert sandbox.chained_runs()[runs:] == []  # the repository's hook runs only once the check passes


def test_mixed_commit_is_refused_listing_only_the_foreign_files(backend_wt: Path) -> None:
    stderr = refused(
        backend_wt,
        {
            "src/api/v1/auth.py": "# mine\n",
            "kubernetes/deployment.yaml": "kind: Deployment\n",
            "docs/x.md": "x\n",
        },
    )
    assert "kubernetes/deployment.yaml  owned by deploy (@codi-devops-engineer)" in stderr
    assert "docs/x.md  owned by docs (@codi-documentation-writer)" in stderr
    assert "src/api/v1/auth.py" not in stderr


def test_commit_of_a_shared_path_passes_with_a_note_naming_the_other_owner(backend_wt: Path) -> None:
    stderr = passed(backend_wt, {"openapi.yaml": "openapi: 3.1.0\n"})
    assert "coditect: committing shared paths:" in stderr
    assert "openapi.yaml: shared with frontend; their approval is needed on the PR" in stderr


def test_commit_of_a_file_no_stream_owns_is_refused(backend_wt: Path) -> None:
    stderr = refused(backend_wt, {"ci/check.py": "print('changed')\n"})
    assert "  ci/check.py  owned by no stream" in stderr


def test_deleting_a_file_the_stream_does_not_own_is_refused(backend_wt: Path) -> None:
    assert (backend_wt / "Dockerfile").is_file()
    stderr = refused(backend_wt, {"Dockerfile": None})
    assert "  Dockerfile  owned by deploy (@codi-devops-engineer)" in stderr
    assert (backend_wt / "Dockerfile").is_file()


def test_no_verify_skips_the_pre_commit_check_but_not_the_ref_update_check(
    sandbox: Sandbox, backend_wt: Path
) -> None:
    """The issue's gate-neutering commit: ``--no-verify`` skips pre-commit; reference-transaction still runs."""
    runs = len(sandbox.chained_runs())
    head = git_in(backend_wt, "rev-parse", "HEAD")
    done = commit(backend_wt, {"ci/check.py": "import sys\nsys.exit(0)\n"}, "--no-verify")
    try:
        assert done.returncode != 0, done.stdout
        assert git_in(backend_wt, "rev-parse", "HEAD") == head
        branch = git_in(backend_wt, "symbolic-ref", "--short", "HEAD")
        assert (
            f"coditect: refused to move {branch}: stream backend may not land commits changing these files "
            "in backend (phase phase-1):" in done.stderr
        )
        assert "  ci/check.py  owned by no stream  (changed by " in done.stderr
        assert sandbox.chained_runs()[runs:] == []  # --no-verify: the repository's pre-commit did not run
    finally:
        discard(backend_wt)


# ------------------------------------------------------------------------------------- other streams, repos


def test_deploy_stream_may_commit_the_dockerfile_but_not_backend_code(sandbox: Sandbox) -> None:
    deploy = stream_worktree(sandbox.root, "deploy", "backend")
    passed(deploy, {"Dockerfile": "FROM python:3.12-slim AS build\n"})
    stderr = refused(deploy, {"src/api/v1/auth.py": "# not mine\n"})
    assert "coditect: stream deploy may not commit these files in backend" in stderr
    assert "src/api/v1/auth.py  owned by backend (@codi-code-architect)" in stderr
    # A shared path is refused to a stream that is not one of its owners, naming them all.
    stderr = refused(deploy, {"openapi.yaml": "openapi: 3.1.0\n"})
    assert (
        "openapi.yaml  owned by backend (@codi-code-architect), frontend (@codi-frontend-specialist)"
        in stderr
    )


def test_guards_of_the_infra_and_root_worktrees_follow_their_own_rules(sandbox: Sandbox) -> None:
    infra_deploy = stream_worktree(sandbox.root, "deploy", "infra")
    passed(infra_deploy, {".github/workflows/deploy.yml": "on: push\n"})
    stderr = refused(infra_deploy, {"opentofu/main.tf": "# mine?\n"})
    assert "coditect: stream deploy may not commit these files in infra" in stderr
    assert "opentofu/main.tf  owned by infra (@cloud-architect)" in stderr

    docs_root = stream_worktree(sandbox.root, "docs", "root")
    passed(docs_root, {"docs/runbook.md": "# Runbook\n"})
    stderr = refused(docs_root, {"ci/check.py": "# no\n"})
    assert "coditect: stream docs may not commit these files in root" in stderr
    assert "ci/check.py  owned by no stream" in stderr


# ----------------------------------------------------------------------------------------------- scoping


def test_the_submodules_main_checkout_is_not_guarded(sandbox: Sandbox) -> None:
    backend = repo_dir(sandbox.root, "backend")
    runs = len(sandbox.chained_runs())
    git_in(backend, "switch", "-q", "-c", "scratch/main-checkout", "develop")
    try:
        assert git_in(backend, "config", "--get", "core.hooksPath", check=False) == ""
        passed(backend, {"Dockerfile": "FROM scratch\n# committed in the main checkout\n"})
        # Not the guard: the repository's own hook (the one the guard chains) still runs there as usual.
        assert sandbox.chained_runs()[runs:] == [f"{backend} "]
    finally:
        git_in(backend, "switch", "-q", "develop")
        git_in(backend, "branch", "-q", "-D", "scratch/main-checkout")
    assert git_in(sandbox.root, "status", "--porcelain") == ""


def test_linked_worktrees_and_main_checkouts_keep_their_own_top_level(sandbox: Sandbox) -> None:
    """Regression: per-worktree config is enabled by moving ``core.worktree`` into ``config.worktree``.

    Left in the common config, a submodule's ``core.worktree`` would make every linked worktree resolve to
    the submodule's main checkout.
    """
    for rid in ("infra", "backend", "frontend"):
        sub = repo_dir(sandbox.root, rid)
        common = Path(git_in(sub, "rev-parse", "--path-format=absolute", "--git-common-dir"))
        assert (
            git_in(sub, "config", "--file", str(common / "config"), "--get", "extensions.worktreeConfig")
            == "true"
        )
        assert (
            git_in(sub, "config", "--file", str(common / "config"), "--get", "core.worktree", check=False)
            == ""
        )
        assert (
            git_in(sub, "config", "--file", str(common / "config.worktree"), "--get", "core.worktree") != ""
        )
        assert git_in(sub, "rev-parse", "--show-toplevel") == str(sub)
        assert git_in(sub / "ci", "rev-parse", "--show-toplevel") == str(sub)
        assert git_in(sub, "status", "--porcelain") == ""
        assert git_in(sub, "symbolic-ref", "--short", "HEAD") == "develop"
        for stream in ("docs", "deploy", "backend", "infra", "frontend"):
            worktree = stream_worktree(sandbox.root, stream, rid)
            if not worktree.exists():
                continue
            assert git_in(worktree, "rev-parse", "--show-toplevel") == str(worktree)
            assert git_in(worktree / "ci", "rev-parse", "--show-toplevel") == str(worktree)
            assert git_in(worktree, "rev-parse", "--path-format=absolute", "--git-common-dir") == str(common)
    assert git_in(sandbox.root, "submodule", "status").count(" (heads/develop)") == 3
    assert git_in(sandbox.root, "status", "--porcelain") == ""


def test_the_hooks_are_per_worktree_and_chain_the_repositorys_hooks_directory(sandbox: Sandbox) -> None:
    backend = repo_dir(sandbox.root, "backend")
    common = Path(git_in(backend, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    paths = {}
    for stream in ("backend", "deploy", "docs"):
        worktree = stream_worktree(sandbox.root, stream, "backend")
        hooks = Path(git_in(worktree, "config", "--worktree", "--get", "core.hooksPath"))
        paths[stream] = hooks
        guard = (hooks / GUARD_SCRIPT).read_text(encoding="utf-8")
        assert guard.startswith("#!/usr/bin/env python3\n" + HOOK_MARKER)
        assert f'STREAM = "{stream}"' in guard
        for name in HOOK_NAMES:
            assert os.access(hooks / name, os.X_OK), name
            text = (hooks / name).read_text(encoding="utf-8")
            assert text.startswith("#!/bin/sh\n" + HOOK_MARKER), name
            assert f"hook={common / 'hooks'}/{name}\n" in text, name
        assert (hooks / CHAIN_RECORD).read_text(encoding="utf-8") == f"{common / 'hooks'}\n"
    assert len(set(paths.values())) == 3


def test_a_hook_configured_with_core_hookspath_is_chained_too(isolated_git: Path, tmp_path: Path) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    hooks = tmp_path / "team-hooks"
    hooks.mkdir()
    marker = tmp_path / "team-hook-ran"
    (hooks / "pre-commit").write_text(f'#!/bin/sh\necho "$PWD" >> "{marker}"\n', encoding="utf-8")
    (hooks / "pre-commit").chmod(0o755)
    git_in(repo_dir(root, "frontend"), "config", "core.hooksPath", str(hooks))
    setup_with_cwd(root)
    worktree = stream_worktree(root, "frontend", "frontend")
    passed(worktree, {"src/main.tsx": "// changed\n"})
    assert marker.is_file(), "the repository's own pre-commit hook did not run in the stream worktree"
    assert marker.read_text(encoding="utf-8").splitlines() == [str(worktree)]


def write_hook(hooks: Path, name: str, body: str) -> None:
    hooks.mkdir(parents=True, exist_ok=True)
    (hooks / name).write_text("#!/bin/sh\n" + body, encoding="utf-8")
    (hooks / name).chmod(0o755)


def test_the_repositorys_commit_msg_pre_push_and_reference_transaction_hooks_still_run(
    isolated_git: Path, tmp_path: Path
) -> None:
    """Hooks of every name are chained, with their arguments and stdin, and their exit codes count.

    They are added after setup: the guard's scripts look for them when they run.
    """
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    backend = repo_dir(root, "backend")
    common = Path(git_in(backend, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    log = tmp_path / "hooks.log"
    write_hook(
        common / "hooks",
        "commit-msg",
        "grep -qE '^[A-Z]+-[0-9]+ ' \"$1\" && exit 0\necho 'commit-msg: start with a ticket (ABC-123)' >&2\nexit 1\n",
    )
    write_hook(common / "hooks", "pre-push", f'echo "pre-push $*" >> "{log}"\ncat >> "{log}"\nexit 7\n')
    write_hook(common / "hooks", "reference-transaction", f'echo "rt $1" >> "{log}"\ncat >> "{log}"\n')
    worktree = stream_worktree(root, "backend", "backend")
    branch = git_in(worktree, "symbolic-ref", "--short", "HEAD")
    head = git_in(worktree, "rev-parse", "HEAD")

    (worktree / "src" / "api" / "v1" / "auth.py").write_text("# auth\n", encoding="utf-8")
    git_in(worktree, "add", "-A")
    done = subprocess.run(
        ["git", "-C", str(worktree), "commit", "-q", "-m", "add auth"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "commit-msg: start with a ticket (ABC-123)" in done.stderr
    assert git_in(worktree, "rev-parse", "HEAD") == head
    assert not log.exists()  # refused before any ref moved

    git_in(worktree, "commit", "-q", "-m", "AUTH-1 add auth")
    new = git_in(worktree, "rev-parse", "HEAD")
    assert log.read_text(encoding="utf-8").splitlines() == [
        "rt prepared",
        f"{head} {new} HEAD",
        f"{head} {new} refs/heads/{branch}",
        "rt committed",
        f"{head} {new} HEAD",
        f"{head} {new} refs/heads/{branch}",
    ]
    log.unlink()

    origin = str(origin_of(backend))
    done = subprocess.run(
        ["git", "-C", str(worktree), "push", "-q", "origin", branch],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert git_in(Path(origin), "rev-parse", f"refs/heads/{branch}") == head  # the push was refused
    assert log.read_text(encoding="utf-8").splitlines()[:2] == [
        f"pre-push origin {origin}",
        f"refs/heads/{branch} {new} refs/heads/{branch} {head}",
    ]


def test_a_husky_style_relative_hooks_path_runs_each_worktrees_own_hooks(
    isolated_git: Path, tmp_path: Path
) -> None:
    """``core.hooksPath = .husky`` is relative: git (and the guard's scripts) resolve it in the worktree the
    hook runs in, so a stream worktree runs the hooks its own branch carries. Setup records that path: run
    again, even with ``core.hooksPath`` pointing at a coditect hooks directory, it does not chain to itself."""
    root = build_phase1_sandbox(tmp_path / "sandbox")
    frontend = repo_dir(root, "frontend")
    marker = tmp_path / "husky-ran"
    write_hook(
        frontend / ".husky",
        "commit-msg",
        f'echo "$PWD $0" >> "{marker}"\n'
        "grep -qE '^(feat|fix|chore)(\\(.+\\))?: ' \"$1\" && exit 0\n"
        "echo 'husky: use a conventional commit message' >&2\nexit 1\n",
    )
    git_in(frontend, "add", ".husky")
    git_in(frontend, "commit", "-q", "-m", "chore: husky commit-msg hook")
    git_in(frontend, "config", "core.hooksPath", ".husky")
    setup_with_cwd(root)
    worktree = stream_worktree(root, "frontend", "frontend")
    hooks = Path(git_in(worktree, "config", "--worktree", "--get", "core.hooksPath"))
    assert (hooks / CHAIN_RECORD).read_text(encoding="utf-8") == ".husky\n"

    refused_stderr = refused(worktree, {"src/main.tsx": "// changed\n"})
    assert "husky: use a conventional commit message" in refused_stderr
    assert marker.read_text(encoding="utf-8").splitlines() == [f"{worktree} .husky/commit-msg"]
    done = commit(worktree, {"src/main.tsx": "// changed\n"}, message="feat: change main")
    assert done.returncode == 0, done.stderr
    # The guard still comes first: a foreign file is refused before husky is asked.
    stderr = refused(worktree, {"Dockerfile": "FROM scratch\n"})
    assert "coditect: stream frontend may not commit these files in frontend" in stderr
    assert len(marker.read_text(encoding="utf-8").splitlines()) == 2

    git_in(frontend, "config", "core.hooksPath", str(hooks))
    try:
        assert setup_with_cwd(root).plan.empty
    finally:
        git_in(frontend, "config", "core.hooksPath", ".husky")
    assert (hooks / CHAIN_RECORD).read_text(encoding="utf-8") == ".husky\n"
