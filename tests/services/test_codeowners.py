"""CODEOWNERS: the generated files (golden, re-rooted per repository, GitHub's rules and matching), in-place
generation, what setup commits on the integration branches, and ``codeowners check`` on real branches."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    EXAMPLE_MANIFEST,
    GOLDEN_CODEOWNERS,
    NO_HOOKS,
    PHASE1_INTEGRATION,
    PHASE1_PAIRS,
    PHASE1_REPOS,
    REPO_ROOT,
    build_phase1_sandbox,
    call_main,
    git_in,
    repo_dir,
    setup_with_cwd,
    stream_worktree,
)

from codeowners import CodeOwners
from coditect_cli.domain.codeowners import MAX_BYTES, codeowners_problems, generate
from coditect_cli.domain.loader import load_manifest
from coditect_cli.domain.manifest import Manifest, RepoId
from coditect_cli.domain.ownership import ownership

REGENERATE = "run `coditect codeowners generate phase-1 --output codeowners` and commit the result"
ARCHITECT, FRONTEND, DEVOPS, WRITER, CLOUD = (
    "@codi-code-architect",
    "@codi-frontend-specialist",
    "@codi-devops-engineer",
    "@codi-documentation-writer",
    "@cloud-architect",
)


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest(EXAMPLE_MANIFEST).manifest


@pytest.fixture(scope="module")
def texts(manifest: Manifest) -> dict[str, str]:
    return {rid: f.text for rid, f in generate(manifest, "workstreams/phase-1.yaml").items()}


def rule_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


# ------------------------------------------------------------------------------------------ the generated files


def test_generate_output_equals_the_committed_golden_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "codeowners"
    code, _stdout, stderr = call_main(
        ["--root", str(REPO_ROOT), "codeowners", "generate", "phase-1", "--output", str(out)], capsys
    )
    assert code == 0, stderr
    produced = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    golden = {
        p.relative_to(GOLDEN_CODEOWNERS).as_posix(): p.read_bytes()
        for p in sorted(GOLDEN_CODEOWNERS.rglob("*"))
        if p.is_file()
    }
    assert sorted(produced) == sorted(golden) == [f"{rid}/CODEOWNERS" for rid in sorted(PHASE1_REPOS)], (
        REGENERATE
    )
    for name, content in golden.items():
        assert produced[name] == content, f"codeowners/{name} is stale: {REGENERATE}"


def test_generate_output_is_unchanged_on_a_second_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--root",
        str(REPO_ROOT),
        "--json",
        "codeowners",
        "generate",
        "phase-1",
        "--output",
        str(tmp_path),
    ]
    first = json.loads(call_main(args, capsys).stdout)
    second = json.loads(call_main(args, capsys).stdout)
    assert [f["changed"] for f in first["data"]["files"]] == [True] * 4
    assert [f["changed"] for f in second["data"]["files"]] == [False] * 4


def test_backend_file_is_rooted_at_the_backend_repository(texts: dict[str, str]) -> None:
    backend = rule_lines(texts["backend"])
    patterns = [line.split()[0] for line in backend]
    assert "/src/" in patterns and "/openapi.yaml" in patterns and "/Dockerfile" in patterns
    for rid, text in texts.items():
        for line in rule_lines(text):
            assert "submodules/" not in line, f"{rid}: {line!r} is not relative to the repository's root"
            assert line.split()[0].startswith("/"), (
                f"{rid}: {line!r} is not anchored at the repository's root"
            )
    assert "# Repository 'backend' (submodules/cloud/coditect-cloud-backend)" in texts["backend"]


def test_shared_paths_come_last_and_list_every_owner(texts: dict[str, str]) -> None:
    lines = rule_lines(texts["backend"])
    assert [line.split() for line in lines[-2:]] == [
        ["/openapi.yaml", ARCHITECT, FRONTEND],
        ["/contracts/", ARCHITECT, FRONTEND],
    ]
    assert texts["backend"].rstrip("\n").splitlines()[-3] == "# Shared: every listed owner must approve"
    for rid in ("root", "infra", "frontend"):
        assert "Shared" not in texts[rid]


def test_generated_files_follow_githubs_rules(texts: dict[str, str]) -> None:
    for rid, text in texts.items():
        assert codeowners_problems(text) == [], rid
        assert text.endswith("\n") and not text.endswith("\n\n")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("!/src/ @a", "'!' negation is not supported"),
        ("/src/[ab]/ @a", "'[ ]' character ranges are not supported"),
        ("/docs/*.md] @a", "'[ ]' character ranges are not supported"),
        ("/notes/\\#1 @a", "'\\#' escapes are not supported"),
        ("/src/", "/src/ has no owner"),
    ],
)
def test_codeowners_problems_flags_what_github_does_not_support(line: str, problem: str) -> None:
    text = f"# header\n\n/ok/ @owner\n{line}\n"
    assert codeowners_problems(text) == [f"line 4: {problem}"]


def test_codeowners_problems_flags_a_file_of_3_mb_or_more() -> None:
    line = "/src/ @owner\n"
    big = line * (MAX_BYTES // len(line) + 1)
    problems = codeowners_problems(big)
    assert len(problems) == 1 and "GitHub ignores CODEOWNERS of 3 MB or more" in problems[0]
    assert codeowners_problems(line * ((MAX_BYTES - 1) // len(line))) == []
    assert codeowners_problems("# only comments\n\n   # indented comment\n") == []


@pytest.mark.parametrize(
    ("repo", "path", "owners"),
    [
        ("backend", "src/api/v1/auth.py", [ARCHITECT]),
        ("backend", "src/README.md", [ARCHITECT]),  # README.md is anchored: only the root README is docs'
        ("backend", "openapi.yaml", [ARCHITECT, FRONTEND]),
        ("backend", "contracts/auth.pact.json", [ARCHITECT, FRONTEND]),
        ("backend", "kubernetes/deployment.yaml", [DEVOPS]),
        ("backend", "Dockerfile", [DEVOPS]),
        ("backend", ".github/workflows/ci.yml", [DEVOPS]),
        ("backend", "README.md", [WRITER]),
        ("backend", "ci/check.py", []),
        ("infra", "kubernetes/base/namespace.yaml", [CLOUD]),
        ("infra", "opentofu/modules/vpc/main.tf", [CLOUD]),
        ("infra", ".github/workflows/plan.yml", [DEVOPS]),
        ("frontend", "src/pages/Login.tsx", [FRONTEND]),
        ("frontend", "docs/user-guide.md", [WRITER]),
        ("root", "docs/architecture.md", [WRITER]),
        ("root", "submodules/cloud/coditect-cloud-backend", []),
    ],
)
def test_github_matching_gives_the_expected_owners_and_agrees_with_the_guard(
    texts: dict[str, str], manifest: Manifest, repo: str, path: str, owners: list[str]
) -> None:
    matched = [owner for _kind, owner in CodeOwners(texts[repo]).of(path)]
    assert matched == owners
    # What the guard and `codeowners check` enforce is what GitHub will ask for.
    streams = ownership(manifest)[RepoId(repo)].owners(path).streams
    assert sorted(manifest.stream(s).code_owner for s in streams) == sorted(owners)


# ------------------------------------------------------------------------------------------ in place


def test_in_place_generate_refuses_to_overwrite_uncommitted_edits(
    isolated_git: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    backend = repo_dir(root, "backend")
    target = backend / ".github" / "CODEOWNERS"
    target.parent.mkdir(exist_ok=True)
    target.write_text("/src/ @someone\n", encoding="utf-8")
    git_in(backend, "add", ".github/CODEOWNERS")
    git_in(backend, "commit", "-q", "-m", "hand-written CODEOWNERS")
    target.write_text("/src/ @someone-else\n", encoding="utf-8")
    monkeypatch.chdir(root)

    code, _out, err = call_main(["codeowners", "generate", "phase-1"], capsys)
    assert code == 4, err
    assert "CODEOWNERS has uncommitted changes; not overwriting" in err
    assert "submodules/cloud/coditect-cloud-backend/.github/CODEOWNERS (M)" in err
    assert target.read_text(encoding="utf-8") == "/src/ @someone-else\n"
    for rid in ("root", "infra", "frontend"):  # refused before anything was written
        assert not (repo_dir(root, rid) / ".github" / "CODEOWNERS").exists()

    git_in(backend, "checkout", "--", ".github/CODEOWNERS")
    code, _out, err = call_main(["codeowners", "generate", "phase-1"], capsys)
    assert code == 0, err
    for rid in PHASE1_REPOS:
        written = repo_dir(root, rid) / ".github" / "CODEOWNERS"
        assert written.read_bytes() == (GOLDEN_CODEOWNERS / rid / "CODEOWNERS").read_bytes()


# ------------------------------------------------------------------------------------- after streams setup


@pytest.fixture(scope="module")
def set_up(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = build_phase1_sandbox(tmp_path_factory.mktemp("codeowners") / "sandbox")
    setup_with_cwd(root)
    yield root


def test_each_integration_branch_carries_the_generated_file(set_up: Path, texts: dict[str, str]) -> None:
    for rid in PHASE1_REPOS:
        committed = git_in(
            repo_dir(set_up, rid), "show", f"{PHASE1_INTEGRATION}:.github/CODEOWNERS", strip=False
        )
        assert committed == texts[rid], rid


def check(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict[str, object]]]:
    """``codeowners check --json`` from ``root``: the exit code and each branch's verdict by branch name."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        code, out, err = call_main(["--json", "codeowners", "check", "phase-1"], capsys)
    envelope = json.loads(out)
    assert envelope["exit_code"] == code, err
    return code, {b["branch"]: b for b in envelope["data"]["branches"]}


def test_codeowners_check_clean_then_shared_then_a_violation(
    set_up: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, branches = check(set_up, capsys)
    assert code == 0
    assert sorted(branches) == sorted(b for _s, _r, b in PHASE1_PAIRS)
    assert all(not b["missing"] and b["changed"] == 0 and b["violations"] == [] for b in branches.values())

    backend_wt = stream_worktree(set_up, "backend", "backend")
    (backend_wt / "openapi.yaml").write_text("openapi: 3.1.0\ninfo: {title: changed}\n", encoding="utf-8")
    (backend_wt / "src" / "api" / "v1" / "auth.py").write_text("# backend's own\n", encoding="utf-8")
    git_in(backend_wt, "commit", "-q", "-am", "contract and code")
    code, branches = check(set_up, capsys)
    assert code == 0
    mine = branches["feature/phase-1/backend/auth-service"]
    assert (mine["changed"], mine["shared"], mine["violations"]) == (2, ["openapi.yaml"], [])

    deploy_wt = stream_worktree(set_up, "deploy", "backend")
    (deploy_wt / "src" / "api" / "v1" / "auth.py").write_text("# deploy was here\n", encoding="utf-8")
    done = subprocess.run(
        ["git", "-C", str(deploy_wt), *NO_HOOKS, "commit", "-q", "-am", "outside my paths"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    code, branches = check(set_up, capsys)
    assert code == 3
    deploy = branches["feature/phase-1/deploy/kubernetes-manifests"]
    assert deploy["violations"] == [
        {"path": "src/api/v1/auth.py", "owners": ["backend"], "code_owners": [ARCHITECT]}
    ]
    others = [b for name, b in branches.items() if name != "feature/phase-1/deploy/kubernetes-manifests"]
    assert all(b["violations"] == [] for b in others)
    assert branches["feature/phase-1/backend/auth-service"]["shared"] == ["openapi.yaml"]

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(set_up)
        code, out, _err = call_main(["codeowners", "check", "phase-1"], capsys)
    assert code == 3
    assert "src/api/v1/auth.py" in out
