"""The embedded sandbox, built with real git: origins, the working clone, and the ci/check.py gates."""

from __future__ import annotations

import glob
import json
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from coditect_cli.adapters import proc
from coditect_cli.errors import ExitCode, ManifestError, RefusedError
from coditect_cli.sandbox import IDENTITY_EMAIL, MARKER, SUPERPROJECT, Sandbox, build_sandbox

MANIFEST = Path(__file__).resolve().parent.parent / "workstreams" / "phase-1.yaml"
SPEC: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
REPOS: dict[str, str] = {repo["id"]: repo["path"] for repo in SPEC["repositories"]}
SUBMODULES = {rid: path for rid, path in REPOS.items() if rid != "root"}
ALL_ORIGINS = {SUPERPROJECT, *(Path(path).name for path in SUBMODULES.values())}


def git(*args: str, cwd: Path | None = None) -> str:
    return proc.run(["git", *args], cwd=cwd).stdout.rstrip("\n")


def check(repo: Path, what: str) -> proc.Completed:
    return proc.run([sys.executable, "ci/check.py", what], cwd=repo, check=False)


@pytest.fixture(scope="module")
def sandbox(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    return build_sandbox(tmp_path_factory.mktemp("shared") / "sandbox", MANIFEST)


def repo_dir(sandbox: Sandbox, rid: str) -> Path:
    return sandbox.root / REPOS[rid]


# ----------------------------------------------------------------------------------------------- origins


def test_origins_are_bare_with_main_and_develop_one_commit_apart(sandbox: Sandbox) -> None:
    assert set(sandbox.origins) == ALL_ORIGINS
    target = sandbox.root.parent
    for name, origin in sandbox.origins.items():
        assert origin == target / "origins" / f"{name}.git"
        assert git("--git-dir", str(origin), "rev-parse", "--is-bare-repository") == "true"
        assert git("--git-dir", str(origin), "symbolic-ref", "HEAD") == "refs/heads/main"
        heads = git("--git-dir", str(origin), "for-each-ref", "--format=%(refname)", "refs/heads")
        assert heads.splitlines() == ["refs/heads/develop", "refs/heads/main"]
        main = git("--git-dir", str(origin), "rev-parse", "main")
        assert git("--git-dir", str(origin), "rev-parse", "develop^") == main


def test_superproject_branches_point_at_the_submodules_matching_branches(sandbox: Sandbox) -> None:
    superproject = sandbox.origins[SUPERPROJECT]
    for path in SUBMODULES.values():
        sub_origin = sandbox.origins[Path(path).name]
        for branch in ("main", "develop"):
            entry = git("--git-dir", str(superproject), "ls-tree", branch, path).split()
            assert entry[:2] == ["160000", "commit"]
            assert entry[2] == git("--git-dir", str(sub_origin), "rev-parse", branch)
    gitmodules = git("--git-dir", str(superproject), "show", "main:.gitmodules")
    for path in SUBMODULES.values():
        assert f"url = {sandbox.origins[Path(path).name]}" in gitmodules


# ------------------------------------------------------------------------------------------------ clone


def test_clone_and_submodules_are_on_develop_and_clean(sandbox: Sandbox) -> None:
    root = sandbox.root
    assert root == sandbox.root.parent / SUPERPROJECT
    assert git("symbolic-ref", "--short", "HEAD", cwd=root) == "develop"
    status = git("submodule", "status", cwd=root).splitlines()
    assert len(status) == len(SUBMODULES)
    assert all(line.startswith(" ") for line in status), status  # not '-' (uninitialised) nor '+'
    for path in SUBMODULES.values():
        sub = root / path
        assert (sub / ".git").is_file()
        assert git("symbolic-ref", "--short", "HEAD", cwd=sub) == "develop"
        assert git("rev-parse", "--abbrev-ref", "develop@{upstream}", cwd=sub) == "origin/develop"
        assert git("status", "--porcelain", cwd=sub) == ""
        assert git("config", "user.email", cwd=sub) == IDENTITY_EMAIL
    assert git("status", "--porcelain", cwd=root) == ""


def test_clone_has_every_path_the_manifest_owns(sandbox: Sandbox) -> None:
    owned: list[tuple[str, str]] = []
    for stream in SPEC["streams"]:
        owned += [(work["repo"], path) for work in stream["work"] for path in work["owns"]]
    owned += [(shared["repo"], path) for shared in SPEC["shared"] for path in shared["paths"]]
    for rid, path in owned:
        full = repo_dir(sandbox, rid) / path
        if path.endswith("/"):
            assert full.is_dir() and any(p.is_file() for p in full.rglob("*")), f"{rid}: {path}"
        else:
            assert full.is_file(), f"{rid}: {path}"
    for rid in REPOS:
        for common in ("README.md", "CHANGELOG.md", "ci/check.py"):
            assert (repo_dir(sandbox, rid) / common).is_file(), f"{rid}: {common}"
        assert any((repo_dir(sandbox, rid) / "docs").glob("*.md"))
    backend = repo_dir(sandbox, "backend")
    for path in ("src/api/v1/auth.py", "src/services/auth_service.py", "src/models/user.py", "openapi.yaml"):
        assert (backend / path).is_file()
    infra = repo_dir(sandbox, "infra")
    for module in ("cloud-run", "database", "networking"):
        assert (infra / "opentofu" / "modules" / module / "main.tf").is_file()


def test_clone_carries_the_manifest_gitignore_and_marker(sandbox: Sandbox) -> None:
    copied = sandbox.root / "workstreams" / MANIFEST.name
    assert copied.read_bytes() == MANIFEST.read_bytes()
    assert ".coditect/" in (sandbox.root / ".gitignore").read_text().splitlines()
    marker = json.loads((sandbox.root.parent / MARKER).read_text())
    assert marker == {"kind": "coditect-sandbox", "version": 1}
    assert not sandbox.rebuilt
    assert not (sandbox.root.parent / ".build").exists()


# ------------------------------------------------------------------------------------------------ gates


def manifest_gates() -> list[tuple[str, str]]:
    gates: list[tuple[str, str]] = []
    for stream in SPEC["streams"]:
        for gate in stream.get("gates", []):
            gates += [(work["repo"], gate["run"]) for work in stream["work"]]
    for checkpoint in SPEC["checkpoints"]:
        gates += [(gate["repo"], gate["run"]) for gate in checkpoint["gates"]]
    gates += [(gate["repo"], gate["run"]) for gate in SPEC["merge"]["suite"]]
    return sorted(set(gates))


@pytest.mark.parametrize(("rid", "command"), manifest_gates())
def test_every_manifest_gate_passes_and_leaves_the_repo_clean(
    sandbox: Sandbox, rid: str, command: str
) -> None:
    repo = repo_dir(sandbox, rid)
    done = proc.run(shlex.split(command), cwd=repo, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert git("status", "--porcelain", cwd=repo) == ""


RELEVANT = [
    ("root", "docs"),
    ("root", "security"),
    ("infra", "opentofu"),
    ("infra", "security"),
    ("infra", "kubernetes"),
    ("infra", "docs"),
    ("backend", "openapi"),
    ("backend", "tests"),
    ("backend", "kubernetes"),
    ("backend", "database"),
    ("backend", "docs"),
    ("backend", "security"),
    ("frontend", "typescript"),
    ("frontend", "tests"),
    ("frontend", "docs"),
]


@pytest.mark.parametrize(("rid", "what"), RELEVANT)
def test_check_passes_on_the_sandbox_content(sandbox: Sandbox, rid: str, what: str) -> None:
    done = check(repo_dir(sandbox, rid), what)
    assert done.returncode == 0, done.stderr
    assert f"check {what}: ok" in done.stdout


@pytest.mark.parametrize(
    ("rid", "what"),
    [("root", "openapi"), ("infra", "tests"), ("frontend", "database"), ("backend", "opentofu")],
)
def test_check_fails_where_its_subject_is_missing(sandbox: Sandbox, rid: str, what: str) -> None:
    done = check(repo_dir(sandbox, rid), what)
    assert done.returncode == 1
    assert f"check {what}: FAILED" in done.stderr.splitlines()[-1]


def test_unknown_or_missing_check_is_a_usage_error(sandbox: Sandbox) -> None:
    done = check(sandbox.root, "lint")
    assert done.returncode == 2
    assert "unknown check 'lint'" in done.stderr
    done = proc.run([sys.executable, "ci/check.py"], cwd=sandbox.root, check=False)
    assert done.returncode == 2
    assert "usage:" in done.stderr


def append(rel: str, text: str) -> Callable[[Path], None]:
    def mutate(repo: Path) -> None:
        with (repo / rel).open("a", encoding="utf-8") as handle:
            handle.write(text)

    return mutate


def replace(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def mutate(repo: Path) -> None:
        path = repo / rel
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return mutate


def remove(pattern: str) -> Callable[[Path], None]:
    def mutate(repo: Path) -> None:
        found = list(repo.glob(pattern))
        assert found
        for path in found:
            path.unlink()

    return mutate


def two_heads(repo: Path) -> None:
    for name in ("0002_orgs", "0002_licenses"):
        (repo / "alembic" / "versions" / f"{name}.py").write_text(
            f'revision = "{name}"\ndown_revision = "0001"\n\n\ndef upgrade() -> None:\n    pass\n'
        )


BREAKAGES = [
    ("backend", "tests", append("tests/test_security.py", "# FAIL_GATE\n"), "FAIL_GATE marker"),
    ("backend", "tests", remove("tests/test_*.py"), "no test files"),
    ("frontend", "tests", append("src/App.tsx", "// FAIL_GATE\n"), "src/App.tsx:"),
    ("backend", "openapi", replace("openapi.yaml", "operationId: login", "operationId: signup"), "duplicate"),
    ("backend", "openapi", remove("openapi.yaml"), "openapi.yaml: missing"),
    ("backend", "openapi", replace("openapi.yaml", "openapi: 3.1.0", "swagger: 2.0"), "must start with"),
    ("infra", "opentofu", append("opentofu/environments/dev/main.tf", 'module "x" {\n'), "never closed"),
    ("infra", "opentofu", append("opentofu/modules/database/main.tf", "# TODO-BREAK\n"), "TODO-BREAK"),
    (
        "infra",
        "security",
        replace("opentofu/modules/networking/main.tf", '"35.191.0.0/16", ', '"0.0.0.0/0", '),
        "networking/main.tf:20: open to the whole internet",
    ),
    ("frontend", "typescript", append("src/api/client.ts", "export function f() {\n"), "never closed"),
    (
        "frontend",
        "typescript",
        replace("src/App.tsx", "useState<string | null>(null)", "useState(]"),
        "closes",
    ),
    ("backend", "kubernetes", replace("kubernetes/deployment.yaml", "kind: Service\n", ""), "no `kind:`"),
    ("infra", "kubernetes", replace("kubernetes/base/namespace.yaml", "apiVersion: v1\n", ""), "apiVersion"),
    (
        "root",
        "docs",
        append("README.md", "\nSee [the plan](docs/missing.md).\n"),
        "README.md:11: broken link",
    ),
    (
        "infra",
        "docs",
        replace("docs/architecture.md", "cloud-run/main.tf", "cloud-run/mian.tf"),
        "broken link",
    ),
    ("backend", "database", remove("alembic/versions/*.py"), "no migration files"),
    ("backend", "database", two_heads, "multiple heads"),
]


@pytest.mark.parametrize(
    ("rid", "what", "mutate", "expected"), BREAKAGES, ids=[f"{r}-{w}-{e}" for r, w, _, e in BREAKAGES]
)
def test_check_fails_with_a_clear_message_on_broken_content(
    sandbox: Sandbox, tmp_path: Path, rid: str, what: str, mutate: Callable[[Path], None], expected: str
) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(repo_dir(sandbox, rid), copy, ignore=shutil.ignore_patterns(".git"))
    assert check(copy, what).returncode == 0
    mutate(copy)
    done = check(copy, what)
    assert done.returncode == 1, done.stdout
    assert expected in done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"check {what}: FAILED")


def test_checks_skip_hidden_directories_and_nested_repositories(sandbox: Sandbox, tmp_path: Path) -> None:
    copy = tmp_path / "root"
    shutil.copytree(sandbox.root, copy, ignore=lambda d, names: [".git"] if Path(d) == sandbox.root else [])
    (copy / ".coditect" / "worktrees" / "docs").mkdir(parents=True)
    (copy / ".coditect" / "worktrees" / "docs" / "README.md").write_text("[x](nowhere.md)\n")
    (copy / REPOS["infra"] / "docs" / "broken.md").write_text("[x](nowhere.md)\n")
    (copy / REPOS["infra"] / "opentofu" / "open.tf").write_text('cidr = "0.0.0.0/0"\n')
    assert check(copy, "docs").returncode == 0
    assert check(copy, "security").returncode == 0
    assert check(copy / REPOS["infra"], "docs").returncode == 1
    assert check(copy / REPOS["infra"], "security").returncode == 1


def test_backend_unit_tests_pass(sandbox: Sandbox) -> None:
    backend = repo_dir(sandbox, "backend")
    done = proc.run([sys.executable, "-m", "unittest", "discover", "-s", "tests", "-t", "."], cwd=backend)
    assert "OK" in done.stderr
    assert "Ran 5 tests" in done.stderr


# ------------------------------------------------------------------------------- identity, refusal, rebuild


def test_commits_work_in_the_clone_without_a_global_identity(tmp_path: Path, isolated_git: Path) -> None:
    assert proc.run(["git", "config", "--global", "user.email"], check=False).returncode == 1
    built = build_sandbox(tmp_path / "sb", MANIFEST)
    for repo in (built.root, built.root / REPOS["backend"]):
        (repo / "docs" / "note.md").write_text("# Note\n")
        git("add", "docs/note.md", cwd=repo)
        git("commit", "-q", "-m", "docs: add a note", cwd=repo)
        assert git("log", "-1", "--format=%ae", cwd=repo) == IDENTITY_EMAIL


def test_refuses_a_non_empty_directory_that_is_not_a_sandbox(tmp_path: Path, isolated_git: Path) -> None:
    target = tmp_path / "precious"
    (target / "sub").mkdir(parents=True)
    (target / "notes.txt").write_text("keep me\n")
    (target / "sub" / "data.bin").write_bytes(b"\x00\x01")
    before = sorted(
        (p.relative_to(target), p.read_bytes() if p.is_file() else b"") for p in target.rglob("*")
    )
    with pytest.raises(RefusedError) as caught:
        build_sandbox(target, MANIFEST)
    message = caught.value.message
    assert str(target) in message and "not empty" in message and "not a coditect sandbox" in message
    assert caught.value.exit_code == ExitCode.REFUSED
    after = sorted((p.relative_to(target), p.read_bytes() if p.is_file() else b"") for p in target.rglob("*"))
    assert after == before


def test_refuses_a_directory_whose_marker_is_not_a_sandbox_marker(tmp_path: Path, isolated_git: Path) -> None:
    target = tmp_path / "fake"
    target.mkdir()
    (target / MARKER).write_text('{"kind": "something-else"}')
    with pytest.raises(RefusedError):
        build_sandbox(target, MANIFEST)
    assert [p.name for p in target.iterdir()] == [MARKER]


def test_refuses_a_file_and_reports_a_missing_manifest(tmp_path: Path, isolated_git: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RefusedError, match="not a directory"):
        build_sandbox(tmp_path / "file", MANIFEST)
    with pytest.raises(ManifestError, match="does not exist"):
        build_sandbox(tmp_path / "new", tmp_path / "absent.yaml")
    assert not (tmp_path / "new").exists()


def test_rebuilds_over_a_previous_sandbox_deterministically(
    tmp_path: Path, isolated_git: Path, sandbox: Sandbox
) -> None:
    target = tmp_path / "sb"
    target.mkdir()  # an existing empty directory is fine
    first = build_sandbox(target, MANIFEST)
    assert not first.rebuilt
    heads = {
        name: git("--git-dir", str(path), "rev-parse", "main", "develop")
        for name, path in first.origins.items()
    }
    (first.root / "scratch.txt").write_text("left over\n")
    second = build_sandbox(target, MANIFEST)
    assert second.rebuilt
    assert second.root == first.root and second.origins == first.origins
    assert not (second.root / "scratch.txt").exists()
    assert git("submodule", "status", cwd=second.root).count("heads/develop") == len(SUBMODULES)
    again = {
        name: git("--git-dir", str(path), "rev-parse", "main", "develop")
        for name, path in second.origins.items()
    }
    assert again == heads  # same identity, dates and content: the same commits
    # The submodules' commits do not depend on where the sandbox lives.
    for name in ALL_ORIGINS - {SUPERPROJECT}:
        assert git("--git-dir", str(sandbox.origins[name]), "rev-parse", "main", "develop") == heads[name]


# --------------------------------------------------------------------------------------------- package data


def test_package_data_ships_every_sandbox_template() -> None:
    """pyproject's package-data globs skip dot-files (.gitignore, .github/) unless a pattern spells the dot."""
    tomllib = pytest.importorskip("tomllib")
    root = MANIFEST.parent.parent
    package = root / "coditect_cli"
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["coditect_cli"]
    shipped = {Path(p) for pattern in patterns for p in glob.glob(str(package / pattern), recursive=True)}
    templates = package / "templates" / "sandbox"
    present = {p for p in templates.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert any(p.name.startswith(".") for p in present)
    assert sorted(present - shipped) == []
