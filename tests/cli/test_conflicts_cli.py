"""``coditect conflicts`` end to end: the sandbox's real repositories, exit codes, JSON and process counts."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import call_main, run_cli

from coditect_cli.sandbox import build_sandbox
from coditect_cli.services.demo import example_manifest

INTEGRATION = "phase-1-integration"
BACKEND = "submodules/cloud/coditect-cloud-backend"
FEATURES = {  # the example manifest's feature branches, by repository path
    ".": ["feature/phase-1/docs/deployment-guides"],
    "submodules/cloud/coditect-cloud-infra": [
        "feature/phase-1/infra/gcp-foundation",
        "feature/phase-1/deploy/ci-cd",
        "feature/phase-1/docs/infra-architecture",
    ],
    BACKEND: [
        "feature/phase-1/backend/auth-service",
        "feature/phase-1/deploy/kubernetes-manifests",
        "feature/phase-1/docs/backend-api-docs",
    ],
    "submodules/cloud/coditect-cloud-frontend": [
        "feature/phase-1/frontend/auth-ui",
        "feature/phase-1/docs/frontend-user-guide",
    ],
}
PAIRS = sum(len(b) * (len(b) - 1) // 2 + len(b) for b in FEATURES.values())  # 1 + 6 + 6 + 3


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def commit_on(repo: Path, branch: str, files: dict[str, str]) -> None:
    """Commit ``files`` on ``branch`` in a temporary worktree (the main checkout is left alone)."""
    tree = Path(tempfile.mkdtemp(prefix="coditect-test-wt-")) / "wt"
    git(repo, "worktree", "add", "-q", str(tree), branch)
    try:
        for rel, text in files.items():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            (tree / rel).write_text(text, encoding="utf-8")
        git(tree, "add", "-A")
        git(tree, "commit", "-q", "-m", f"edit on {branch}")
    finally:
        git(repo, "worktree", "remove", "--force", str(tree))
        shutil.rmtree(tree.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def pristine(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox whose repositories have the integration branch and every feature branch (no commits)."""
    sandbox = build_sandbox(tmp_path_factory.mktemp("conflicts") / "sandbox", example_manifest())
    for rel, branches in FEATURES.items():
        repo = sandbox.root / rel
        git(repo, "branch", INTEGRATION, "develop")
        for branch in branches:
            git(repo, "branch", branch, INTEGRATION)
    return sandbox.root


@pytest.fixture
def sandbox(pristine: Path, tmp_path: Path, isolated_git: Path) -> Iterator[Path]:
    """A private copy of the pristine sandbox's working clone (submodule links are relative)."""
    copy = tmp_path / pristine.name
    shutil.copytree(pristine, copy, symlinks=True)
    yield copy


def plant_backend_conflict(root: Path) -> None:
    backend = root / BACKEND
    text = (backend / "README.md").read_text(encoding="utf-8")
    first, rest = text.split("\n", 1)
    commit_on(backend, "feature/phase-1/backend/auth-service", {"README.md": f"{first} (auth)\n{rest}"})
    commit_on(backend, "feature/phase-1/deploy/kubernetes-manifests", {"README.md": f"{first} (k8s)\n{rest}"})


def backend_pairs(data: dict[str, Any]) -> list[dict[str, Any]]:
    [backend] = [r for r in data["repositories"] if r["repo"] == "backend"]
    pairs: list[dict[str, Any]] = backend["pairs"]
    return pairs


# ------------------------------------------------------------------------------------------------ tests


def test_clean_phase_exits_0(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = call_main(["--root", str(sandbox), "conflicts", "--json"], capsys)
    assert result.code == 0, result.stdout + result.stderr
    envelope = result.json()
    assert envelope["command"] == "conflicts" and envelope["ok"] is True
    data = envelope["data"]
    assert data["phase"] == "phase-1" and data["conflicts"] == 0 and data["pairs"] == PAIRS
    assert [r["repo"] for r in data["repositories"]] == ["root", "infra", "backend", "frontend"]
    assert all(not r["unknown_refs"] for r in data["repositories"])
    assert envelope["problems"] == []


def test_conflicting_streams_exit_3_with_the_paths(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plant_backend_conflict(sandbox)
    commit_on(sandbox / BACKEND, "feature/phase-1/docs/backend-api-docs", {"docs/extra.md": "# Extra\n"})
    result = call_main(["--root", str(sandbox), "conflicts", "--json"], capsys)
    assert result.code == 3, result.stdout
    envelope = result.json()
    assert envelope["exit_code"] == 3 and envelope["data"]["conflicts"] == 1
    conflicting = [p for p in backend_pairs(envelope["data"]) if p["conflict"]]
    assert [(p["a_label"], p["b_label"], p["paths"]) for p in conflicting] == [
        ("backend", "deploy", ["README.md"])
    ]
    assert conflicting[0]["kinds"] == {"README.md": ["contents"]}
    assert [p["code"] for p in envelope["problems"]] == ["conflict"]


def test_human_output_shows_the_matrix_and_the_conflicting_paths(
    sandbox: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    plant_backend_conflict(sandbox)
    result = call_main(["--root", str(sandbox), "conflicts"], capsys)
    assert result.code == 3
    out = result.stdout
    assert "backend (submodules/cloud/coditect-cloud-backend)" in out
    assert "✗ 1" in out and "✓" in out and "integration" in out
    assert "Conflicting pairs" in out
    assert "backend × deploy" in out and "    README.md (contents)" in out
    assert f"1 of {PAIRS} pair(s) would conflict" in out


def test_a_branch_conflicting_with_integration(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backend = sandbox / BACKEND
    commit_on(backend, INTEGRATION, {"openapi.yaml": "openapi: 3.1.0\n# changed on integration\n"})
    commit_on(
        backend, "feature/phase-1/backend/auth-service", {"openapi.yaml": "openapi: 3.1.0\n# feature\n"}
    )
    result = call_main(["--root", str(sandbox), "conflicts", "--json"], capsys)
    assert result.code == 3
    conflicting = [p for p in backend_pairs(result.json()["data"]) if p["conflict"]]
    assert [(p["a"], p["b"], p["paths"]) for p in conflicting] == [
        ("feature/phase-1/backend/auth-service", INTEGRATION, ["openapi.yaml"])
    ]


def test_unknown_branch_exits_1_and_is_not_a_conflict(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    git(sandbox / BACKEND, "branch", "-D", "feature/phase-1/docs/backend-api-docs")
    result = call_main(["--root", str(sandbox), "conflicts", "--json"], capsys)
    assert result.code == 1, result.stdout
    envelope = result.json()
    data = envelope["data"]
    assert data["conflicts"] == 0 and data["unknown_refs"] == 1
    [backend] = [r for r in data["repositories"] if r["repo"] == "backend"]
    assert backend["unknown_refs"] == ["feature/phase-1/docs/backend-api-docs"]
    assert all("docs" not in (p["a_label"], p["b_label"]) for p in backend["pairs"])
    assert len(backend["pairs"]) == 3  # backend × deploy, and each vs integration
    [problem] = envelope["problems"]
    assert problem["code"] == "unknown-ref"
    assert problem["message"] == (
        "branch feature/phase-1/docs/backend-api-docs does not exist in repo backend "
        "(run `coditect streams setup`)"
    )
    human = call_main(["--root", str(sandbox), "conflicts"], capsys)
    assert human.code == 1 and "does not exist in repo backend" in human.stdout


def test_unknown_branch_with_a_conflict_exits_3(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plant_backend_conflict(sandbox)
    git(sandbox / BACKEND, "branch", "-D", "feature/phase-1/docs/backend-api-docs")
    result = call_main(["--root", str(sandbox), "conflicts", "--json"], capsys)
    assert result.code == 3
    assert sorted(p["code"] for p in result.json()["problems"]) == ["conflict", "unknown-ref"]


# ---------------------------------------------------------------------------------- processes per repo


def _project(root: Path, streams: int) -> Path:
    """A one-repository project with ``streams`` streams and all their branches (s2 and s3 conflicting)."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.invalid")
    blocks = "".join(
        f"  - id: s{i}\n    terminal: {i}\n    name: S{i}\n    agent: a{i}\n"
        f"    work:\n      - {{repo: app, topic: work, owns: [s{i}/]}}\n"
        for i in range(1, streams + 1)
    )
    (root / "workstreams").mkdir()
    (root / "workstreams" / "p1.yaml").write_text(
        "version: 1\nphase: p1\nschedule: {start: 2027-01-04, days: 10}\n"
        f"repositories:\n  - {{id: app, path: .}}\nstreams:\n{blocks}",
        encoding="utf-8",
    )
    for i in range(1, streams + 1):
        (root / f"s{i}").mkdir()
        (root / f"s{i}" / "file.txt").write_text(f"{i}\n", encoding="utf-8")
    (root / "shared.txt").write_text("one\ntwo\n", encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    git(root, "branch", "p1-integration", "main")
    for i in range(1, streams + 1):
        git(root, "branch", f"feature/p1/s{i}/work", "p1-integration")
    commit_on(root, "feature/p1/s2/work", {"shared.txt": "one\ns2\n"})
    commit_on(root, "feature/p1/s3/work", {"shared.txt": "one\ns3\n"})
    return root


def _git_calls(project: Path, shim_dir: Path, log: Path) -> tuple[int, list[str]]:
    """Run ``coditect conflicts --json`` in a subprocess with the git-counting shim first on PATH."""
    log.write_text("", encoding="utf-8")
    env = {"PATH": f"{shim_dir}{os.pathsep}{os.environ['PATH']}", "CODITECT_TEST_GIT_LOG": str(log)}
    done = run_cli(["--root", str(project), "conflicts", "--json"], env=env)
    assert done.code == 3, done.output
    assert done.json()["data"]["conflicts"] == 1
    return done.code, log.read_text(encoding="utf-8").splitlines()


def test_git_processes_do_not_grow_with_the_number_of_branches(tmp_path: Path, isolated_git: Path) -> None:
    real_git = shutil.which("git")
    assert real_git is not None
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "git"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "$CODITECT_TEST_GIT_LOG"\nexec {real_git} "$@"\n')
    shim.chmod(0o755)
    log = tmp_path / "git.log"
    _, few = _git_calls(_project(tmp_path / "three", 3), shim_dir, log)
    _, many = _git_calls(_project(tmp_path / "twelve", 12), shim_dir, log)
    assert few, "the shim was not used"
    assert len(few) == len(many), (few, many)
    assert sum("merge-tree" in line for line in many) == 1
    assert sum("cat-file" in line for line in many) == 1


def test_above_twelve_streams_the_human_output_lists_the_conflicting_pairs_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    project = _project(tmp_path / "many", 99)
    pairs = 99 * 98 // 2 + 99

    short = call_main(["--root", str(project), "conflicts"], capsys)
    assert short.code == 3, short.stdout + short.stderr
    out = short.stdout
    assert "app (.): 99 streams, " + f"{pairs} pair(s) checked, 1 conflicting" in out
    assert "--all shows it" in out
    assert "Conflicting pairs" in out and "app: s2 × s3" in out and "    shared.txt (contents)" in out
    assert "✓" not in out and "s99 " not in out  # no matrix: no clean cell, no row of a clean stream
    assert f"1 of {pairs} pair(s) would conflict" in out

    monkeypatch.setenv("COLUMNS", "2000")  # room for 101 columns
    full = call_main(["--root", str(project), "conflicts", "--all"], capsys)
    assert full.code == 3
    rows = [line for line in full.stdout.splitlines() if "feature/p1/" in line and "×" not in line]
    assert len(rows) == 99  # one matrix row per stream
    assert sum(line.count("✗ 1") for line in rows) == 2  # s2 × s3 and s3 × s2
    assert "✗ 1" in full.stdout and "✓" in full.stdout and "--all shows it" not in full.stdout
    assert "app: s2 × s3" in full.stdout


def test_at_twelve_streams_the_matrix_is_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    project = _project(tmp_path / "twelve", 12)
    result = call_main(["--root", str(project), "conflicts"], capsys)
    assert result.code == 3
    assert "✗ 1" in result.stdout and "✓" in result.stdout and "--all shows it" not in result.stdout
