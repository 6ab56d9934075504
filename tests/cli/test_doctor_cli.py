"""``coditect doctor`` end to end: real sandboxes (set up and not), real git, exit codes, JSON and text.

The set-up sandbox is shared by the module; a test that breaks something in it (a manifest, a repository, a
worktree, the lock) restores it in a ``finally``. Doctor itself must change nothing: one test proves it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from fakegithub import FakeGitHub
from helpers import (
    EXAMPLE_TEXT,
    PHASE1,
    PHASE1_INTEGRATION,
    alias_bomb,
    build_phase1_sandbox,
    call_main,
    git_in,
    line_of,
    refs_snapshot,
    replace_once,
    run_cli,
    setup_with_cwd,
    stream_worktree,
)

FRONTEND = "submodules/cloud/coditect-cloud-frontend"
BACKEND = "submodules/cloud/coditect-cloud-backend"
SECRET = "ghp_doctorSecretValue0123456789abcdefXYZ"


@pytest.fixture(scope="module")
def set_up(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox after `streams setup phase-1` (pushed): the root of the superproject."""
    root = build_phase1_sandbox(tmp_path_factory.mktemp("doctor") / "sandbox")
    setup_with_cwd(root)
    return root


@pytest.fixture
def agents_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `claude` on PATH (the example manifest's agent), so the agents check can pass."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "claude"
    fake.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GH_TOKEN", "GITHUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def doctor(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """Run `doctor --json` in-process; return the exit code and the envelope."""
    code, out, _ = call_main(["--root", str(root), "doctor", *args, "--json"], capsys)
    return code, json.loads(out)


def doctor_beside(
    root: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, *args: str
) -> tuple[int, dict[str, Any]]:
    """Run :func:`doctor` with ``workstreams/<name>.yaml`` holding ``text`` (removed afterwards)."""
    target = root / "workstreams" / f"{name}.yaml"
    target.write_text(text, encoding="utf-8")
    try:
        return doctor(root, capsys, *args)
    finally:
        target.unlink()


def checks(payload: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The envelope's checks by (check, subject)."""
    return {(c["check"], c["subject"]): c for c in payload["data"]["checks"]}


def only(payload: dict[str, Any], check: str) -> dict[str, Any]:
    """The one check of kind ``check`` (store, project: their subject is a path as the user sees it)."""
    (found,) = [c for c in payload["data"]["checks"] if c["check"] == check]
    return found


def not_ok(payload: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {key: c["status"] for key, c in checks(payload).items() if c["status"] != "ok"}


def _tree_state(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``directory`` with its size and modification time."""
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------------------------- all well


def _claude_trusts(root: Path, home: Path) -> None:
    """A user who ran Claude Code once and trusted the project (what `streams launch --trust` leaves)."""
    from coditect_cli.adapters.claude_config import grant_trust
    from coditect_cli.project import Project
    from coditect_cli.services.launch import trust_paths
    from coditect_cli.services.manifest import load

    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}))
    manifest = load(Project(root), PHASE1).manifest
    grant_trust(trust_paths(Project(root), manifest, [s.id for s in manifest.streams]), None)


def test_claude_code_that_would_ask_is_a_warning_with_the_command_that_fixes_it(
    set_up: Path, isolated_git: Path, agents_on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, payload = doctor(set_up, capsys)
    assert code == 0
    trust = checks(payload)["agent-trust", f"{PHASE1}/claude"]
    assert trust["status"] == "warn" and "never set up" in trust["detail"]
    (isolated_git / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}))
    code, payload = doctor(set_up, capsys)
    trust = checks(payload)["agent-trust", f"{PHASE1}/claude"]
    assert trust["status"] == "warn" and "not trusted" in trust["detail"] and "--trust" in trust["hint"]
    (isolated_git / ".claude.json").write_text("{broken")
    code, payload = doctor(set_up, capsys)
    trust = checks(payload)["agent-trust", f"{PHASE1}/claude"]
    assert code == 3 and trust["status"] == "fail" and "not valid JSON" in trust["detail"]


def test_set_up_sandbox_is_healthy_and_doctor_changes_nothing(
    set_up: Path,
    isolated_git: Path,
    agents_on_path: Path,
    no_token: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _claude_trusts(set_up, isolated_git)
    before = (refs_snapshot(set_up), _tree_state(set_up / ".git"))
    code, payload = doctor(set_up, capsys)
    assert (refs_snapshot(set_up), _tree_state(set_up / ".git")) == before, "doctor must not change anything"

    assert code == 0
    assert payload["ok"] is True and payload["command"] == "doctor"
    assert payload["data"]["phases"] == [PHASE1]
    assert payload["data"]["project"] == str(set_up)
    # The example manifest leaves some tracked files unowned: validate's warnings, the only ones expected.
    assert not_ok(payload) == {("manifest", PHASE1): "warn"}
    found = checks(payload)
    for key in [
        ("python", "python"),
        ("git", "git"),
        ("setup", PHASE1),
        ("lock", PHASE1),
        ("agents", PHASE1),
        ("agent-trust", f"{PHASE1}/claude"),
    ]:
        assert found[key]["status"] == "ok", found[key]
    assert "schema version" in only(payload, "store")["detail"]
    worktrees = [c for c in payload["data"]["checks"] if c["check"] == "worktree"]
    assert len(worktrees) == 9
    assert all("ownership guard installed" in c["detail"] for c in worktrees)
    for repo in ("root", "infra", "backend", "frontend"):
        for kind in ("repository", "origin", "branches"):
            assert found[kind, f"{PHASE1}/{repo}"]["status"] == "ok"
    assert "local forge" in found["forge", PHASE1]["detail"]
    warnings = [p for p in payload["problems"] if p["severity"] == "warning"]
    assert warnings and all(p["code"] == "unowned-files" for p in warnings)
    assert all(p["file"].endswith("workstreams/phase-1.yaml") and p["line"] > 0 for p in warnings)


def test_human_output_is_a_table_with_a_verdict(
    set_up: Path, isolated_git: Path, agents_on_path: Path, no_token: None
) -> None:
    code, out, err = run_cli(["doctor"], cwd=set_up, env={"NO_COLOR": "1", "COLUMNS": "220"})
    assert code == 0, err
    assert "\x1b[" not in out, "NO_COLOR: no escape sequences"
    assert "coditect doctor" in out
    for word in ("✓ ok", "! warn", "worktree", "phase-1/docs/backend", "ownership guard installed"):
        assert word in out
    assert "→ see `coditect validate phase-1`" in out
    assert "workstreams/phase-1.yaml:" in out and "[unowned-files]" in out
    assert out.rstrip().splitlines()[-1].endswith("0 failure(s)")


def test_not_set_up_warns_and_passes(
    shared_sandbox: Path,
    isolated_git: Path,
    agents_on_path: Path,
    no_token: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store_dir = shared_sandbox / ".git" / "coditect"
    had_store = store_dir.exists()
    code, payload = doctor(shared_sandbox, capsys, PHASE1)
    assert store_dir.exists() == had_store, "doctor created the store"
    assert code == 0
    found = checks(payload)
    setup = found["setup", PHASE1]
    assert setup["status"] == "warn"
    assert setup["detail"].startswith("setup incomplete:") and "AddWorktree" in setup["detail"]
    assert "coditect streams setup phase-1" in setup["hint"]
    assert found["branches", f"{PHASE1}/backend"]["detail"] == "missing: phase-1-integration"
    assert found["worktree", PHASE1]["status"] == "warn", "one row, not nine, when no worktree exists"
    assert only(payload, "store")["status"] == "ok"
    assert not any(c["status"] == "fail" for c in payload["data"]["checks"])


# ----------------------------------------------------------------------------------------------- failures


def test_manifest_with_an_error_fails_naming_file_and_line(
    set_up: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = replace_once(EXAMPLE_TEXT, "tag: v0.1.0", "tag: v0..1")
    target = set_up / "workstreams" / "broken.yaml"
    target.write_text(text, encoding="utf-8")
    try:
        code, payload = doctor(set_up, capsys, "broken")
        human = call_main(["--root", str(set_up), "doctor", "broken"], capsys)
    finally:
        target.unlink()
    assert code == 3
    assert payload["ok"] is False and payload["exit_code"] == 3
    manifest = checks(payload)["manifest", PHASE1]
    assert manifest["status"] == "fail"
    line = line_of(text, "tag: v0..1")
    assert f"broken.yaml:{line}" in manifest["detail"]
    errors = [p for p in payload["problems"] if p["severity"] == "error"]
    assert [(p["code"], p["line"]) for p in errors] == [("bad-tag-name", line)]
    assert checks(payload)["setup", PHASE1]["status"] == "skip"
    assert human.code == 3
    assert f"broken.yaml:{line}: error:" in human.stdout
    assert "failure(s)" in human.stdout.splitlines()[-1]


def test_unreadable_manifest_fails_with_its_line(
    set_up: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = replace_once(EXAMPLE_TEXT, "    terminal: 4\n", '    terminal: "four"\n')
    code, payload = doctor_beside(set_up, capsys, "unreadable", text, "unreadable")
    assert code == 3
    manifest = checks(payload)["manifest", "unreadable"]
    assert manifest["status"] == "fail"
    assert [p["line"] for p in manifest["problems"]] == [line_of(text, 'terminal: "four"')]


def test_an_alias_bomb_among_the_manifests_fails_at_its_line_and_the_others_are_checked(
    set_up: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = alias_bomb()
    code, payload = doctor_beside(set_up, capsys, "bomb", bomb)
    assert code == 3
    found = checks(payload)
    assert found["manifest", "bomb"]["status"] == "fail"
    assert [(p["code"], p["line"]) for p in found["manifest", "bomb"]["problems"]] == [
        ("yaml-too-large", line_of(bomb, "f: &f"))
    ]
    assert found["manifest", PHASE1]["status"] != "fail"


def test_unknown_phase_fails(set_up: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, payload = doctor(set_up, capsys, "nosuchphase")
    assert code == 3
    manifest = checks(payload)["manifest", "nosuchphase"]
    assert manifest["status"] == "fail"
    assert "no manifest for phase 'nosuchphase'" in manifest["detail"]


def test_without_phase_every_manifest_is_checked(
    set_up: Path, isolated_git: Path, agents_on_path: Path, no_token: None, capsys: pytest.CaptureFixture[str]
) -> None:
    text = replace_once(EXAMPLE_TEXT, "phase: phase-1\n", "phase: phase-2\n")
    code, payload = doctor_beside(set_up, capsys, "phase-2", text)
    assert code == 0
    assert payload["data"]["phases"] == [PHASE1, "phase-2"]
    found = checks(payload)
    assert found["setup", PHASE1]["status"] == "ok"
    assert found["setup", "phase-2"]["status"] == "warn"
    assert found["branches", "phase-2/infra"]["detail"] == "missing: phase-2-integration"


def test_missing_repository_fails_naming_it(
    set_up: Path, isolated_git: Path, agents_on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout = set_up / FRONTEND
    moved = checkout.with_name("frontend-moved-away")
    checkout.rename(moved)
    try:
        code, payload = doctor(set_up, capsys)
    finally:
        moved.rename(checkout)
    assert code == 3
    repo = checks(payload)["repository", f"{PHASE1}/frontend"]
    assert repo["status"] == "fail"
    assert f"{FRONTEND} does not exist" in repo["detail"]
    assert "phase-1.yaml:" in repo["detail"], "names the manifest line of the repository"
    assert checks(payload)["manifest", PHASE1]["status"] == "fail", "validation sees it too"
    assert checks(payload)["setup", PHASE1]["status"] == "skip"
    assert any(p["severity"] == "error" and "frontend" in p["message"] for p in payload["problems"])
    # Afterwards all is well again (the directory is back).
    assert doctor(set_up, capsys)[0] == 0


def test_broken_origin_fails(set_up: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = set_up / BACKEND
    url = git_in(repo, "remote", "get-url", "origin")
    git_in(repo, "remote", "set-url", "origin", str(set_up.parent / "no-such-origin.git"))
    try:
        code, payload = doctor(set_up, capsys)
    finally:
        git_in(repo, "remote", "set-url", "origin", url)
    assert code == 3
    origin = checks(payload)["origin", f"{PHASE1}/backend"]
    assert origin["status"] == "fail" and "no-such-origin.git does not exist" in origin["detail"]


def test_worktree_problems_warn(
    set_up: Path, isolated_git: Path, agents_on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coditect_cli.services.setup import HOOKS_DIR, worktree_git_dir

    infra = stream_worktree(set_up, "infra", "infra")
    docs = stream_worktree(set_up, "docs", "backend")
    deploy = stream_worktree(set_up, "deploy", "backend")
    infra_git, docs_git = worktree_git_dir(infra), worktree_git_dir(docs)
    assert infra_git is not None and docs_git is not None
    hook = infra_git / HOOKS_DIR / "reference-transaction"
    hook_text = hook.read_text(encoding="utf-8")
    merge_head = docs_git / "MERGE_HEAD"
    branch = git_in(deploy, "symbolic-ref", "--short", "HEAD")
    hook.unlink()
    merge_head.write_text(git_in(docs, "rev-parse", "HEAD") + "\n", encoding="utf-8")
    git_in(deploy, "switch", "--quiet", "--detach")
    try:
        code, payload = doctor(set_up, capsys)
    finally:
        hook.write_text(hook_text, encoding="utf-8")
        hook.chmod(0o755)
        merge_head.unlink()
        git_in(deploy, "switch", "--quiet", branch)
    assert code == 0, "worktree problems are warnings"
    found = checks(payload)
    assert found["worktree", f"{PHASE1}/infra/infra"]["detail"].endswith(
        "the ownership guard is incomplete (reference-transaction missing)"
    )
    assert found["worktree", f"{PHASE1}/docs/backend"]["detail"].startswith("a merge is in progress")
    assert found["worktree", f"{PHASE1}/deploy/backend"]["detail"] == f"on a detached HEAD, not {branch}"
    assert found["setup", PHASE1]["status"] == "warn"  # setup would reinstall the guard, switch the worktree
    assert doctor(set_up, capsys)[0] == 0


def test_stale_and_held_locks_are_reported_with_their_holder(
    set_up: Path, isolated_git: Path, agents_on_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coditect_cli.state.lock import holder_path, phase_lock

    common = set_up / ".git"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = holder_path(common, PHASE1)
    record.write_text(
        json.dumps(
            {
                "phase": PHASE1,
                "pid": dead.pid,
                "command": "coditect checkpoint 2",
                "host": socket.gethostname(),
                "started": "2026-12-03T10:00:00Z",
            }
        ),
        encoding="utf-8",
    )
    try:
        code, payload = doctor(set_up, capsys)
    finally:
        record.unlink()
    assert code == 0
    lock = checks(payload)["lock", PHASE1]
    assert lock["status"] == "warn"
    assert "stale lock" in lock["detail"] and "`coditect checkpoint 2`" in lock["detail"]
    assert f"pid {dead.pid}" in lock["detail"]

    # Held by a live command (this process): a subprocess doctor sees the flock and the record.
    with phase_lock(common, PHASE1, "coditect streams setup"):
        code, out, _ = run_cli(["--root", str(set_up), "doctor", "--json"])
    lock = checks(json.loads(out))["lock", PHASE1]
    assert code == 0
    assert lock["status"] == "warn"
    assert lock["detail"].startswith(f"locked by `coditect streams setup` (pid {os.getpid()}")
    assert checks(doctor(set_up, capsys)[1])["lock", PHASE1]["status"] == "ok"


def test_store_written_by_a_newer_coditect_fails(
    set_up: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from coditect_cli.state.store import MIGRATIONS

    db = set_up / ".git" / "coditect" / "state.db"

    def set_version(version: int) -> None:
        conn = sqlite3.connect(db)
        conn.execute(f"PRAGMA user_version = {version}")
        conn.close()

    set_version(len(MIGRATIONS) + 1)
    try:
        code, payload = doctor(set_up, capsys)
    finally:
        set_version(len(MIGRATIONS))
    assert code == 3
    store = only(payload, "store")
    assert store["status"] == "fail" and "a newer coditect wrote it" in store["detail"]


def test_missing_agent_program_warns(
    set_up: Path,
    isolated_git: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A PATH of git and tmux only (claude may be installed beside them, in /usr/bin).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("git", "tmux"):
        found = shutil.which(program)
        assert found is not None
        (bin_dir / program).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    assert shutil.which("claude") is None
    code, payload = doctor(set_up, capsys)
    assert code == 0
    agents = checks(payload)["agents", PHASE1]
    assert agents["status"] == "warn"
    assert agents["detail"].startswith(
        "not on PATH: `claude` (streams infra, backend, frontend, deploy, docs)"
    )
    assert "--agent TEMPLATE" in agents["hint"]


# ----------------------------------------------------------------------------------------------- forge and token


def test_token_source_is_reported_never_its_value(set_up: Path, isolated_git: Path) -> None:
    repo = set_up / BACKEND
    url = git_in(repo, "remote", "get-url", "origin")
    git_in(repo, "remote", "set-url", "origin", "https://github.com/acme/coditect-cloud-backend.git")
    env = {"GH_TOKEN": SECRET, "GITHUB_TOKEN": "", "COLUMNS": "250"}
    try:
        json_run = run_cli(["doctor", "--json"], cwd=set_up, env=env)
        text_run = run_cli(["doctor", "--verbose"], cwd=set_up, env=env)
        without = run_cli(["doctor", "--json"], cwd=set_up, env={"GH_TOKEN": "", "GITHUB_TOKEN": ""})
    finally:
        git_in(repo, "remote", "set-url", "origin", url)
    for run in (json_run, text_run):
        assert SECRET not in run.output
        assert SECRET[4:12] not in run.output, "no part of the token either"
    found = checks(json.loads(json_run.stdout))
    assert found["github-token", "github.com"]["detail"] == "token found in GH_TOKEN (value not shown)"
    forge = found["forge", PHASE1]
    assert forge["status"] == "ok"
    assert "GitHub https://api.github.com (token from GH_TOKEN) for backend" in forge["detail"]
    assert "local forge (origin is not on GitHub) for root, infra, frontend" in forge["detail"]
    assert "token found in GH_TOKEN" in text_run.stdout

    forge = checks(json.loads(without.stdout))["forge", PHASE1]
    assert forge["status"] == "warn", "auto falls back to the local forge for a GitHub origin"
    assert "no token found for github.com" in forge["detail"]


def test_github_branch_rules_are_reported_and_a_disallowed_strategy_warns(
    set_up: Path, isolated_git: Path
) -> None:
    repo = set_up / BACKEND
    url = git_in(repo, "remote", "get-url", "origin")
    manifest = set_up / "workstreams" / "phase-1.yaml"
    text = manifest.read_text(encoding="utf-8")
    with FakeGitHub() as fake:
        fake.add_repo("acme/backend", branches={PHASE1_INTEGRATION: "1" * 40, "develop": "2" * 40})
        fake.protect("acme/backend", PHASE1_INTEGRATION, checks=("ci/build",), approvals=1, code_owners=True)
        fake.add_rule("acme/backend", "develop", "pull_request", allowed_merge_methods=["merge"])
        fake.add_rule("acme/backend", "develop", "merge_queue", merge_method="MERGE")
        git_in(repo, "remote", "set-url", "origin", f"{fake.root_url}/acme/backend.git")
        manifest.write_text(text.replace("forge: auto", f"forge: auto\nforge_url: {fake.base_url}", 1))
        try:
            run = run_cli(
                ["doctor", PHASE1, "--json"], cwd=set_up, env={"GH_TOKEN": fake.token, "GITHUB_TOKEN": ""}
            )
        finally:
            git_in(repo, "remote", "set-url", "origin", url)
            manifest.write_text(text, encoding="utf-8")
        reads = fake.count("GET")
    assert fake.token not in run.output
    found = checks(json.loads(run.stdout))
    integration = found["github-rules", f"backend {PHASE1_INTEGRATION}"]
    assert integration["status"] == "ok", integration
    assert "required checks: ci/build; 1 approving review(s) incl. code owners" in integration["detail"]
    develop = found["github-rules", "backend develop"]
    assert develop["status"] == "warn", develop
    assert "merge strategy 'squash' is not allowed on develop" in develop["detail"]
    assert "merge queue" in develop["detail"] and "merge methods: merge" in develop["detail"]
    assert reads == 5  # settings once per repository run, protection and rulesets per branch
    assert [k for k in found if k[0] == "github-rules"] == [
        ("github-rules", f"backend {PHASE1_INTEGRATION}"),
        ("github-rules", "backend develop"),
    ]


def test_forge_github_without_a_github_origin_fails(
    set_up: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = set_up / "workstreams" / "phase-1.yaml"
    original = target.read_text(encoding="utf-8")
    target.write_text(replace_once(original, "forge: auto", "forge: github"), encoding="utf-8")
    try:
        code, payload = doctor(set_up, capsys)
    finally:
        target.write_text(original, encoding="utf-8")
    assert code == 3
    forge = checks(payload)["forge", PHASE1]
    assert forge["status"] == "fail" and "is not a GitHub repository URL" in forge["detail"]


# ----------------------------------------------------------------------------------------------- outside a project


def test_outside_a_project_checks_the_machine_only(tmp_path: Path, isolated_git: Path) -> None:
    code, out, err = run_cli(["doctor", "--json"], cwd=tmp_path)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["data"]["project"] is None and payload["data"]["phases"] == []
    project = checks(payload)["project", "."]
    assert project["status"] == "skip" and "project checks skipped" in project["detail"]
    assert {c["check"] for c in payload["data"]["checks"]} == {
        "python",
        "git",
        "tmux",
        "github-token",
        "project",
    }

    code, out, _ = run_cli(["doctor", "phase-1", "--json"], cwd=tmp_path)
    assert code == 3, "asked about a phase outside a project: a failure, not a pass"
    project = checks(json.loads(out))["project", "."]
    assert project["status"] == "fail" and "phase phase-1 cannot be checked" in project["detail"]
    code, out, _ = run_cli(["doctor", "phase-1"], cwd=tmp_path)
    assert code == 3 and out.rstrip().endswith("1 failure(s)")


def test_a_git_repository_without_manifests(tmp_path: Path, isolated_git: Path) -> None:
    git_in(tmp_path, "init", "--quiet")
    code, out, _ = run_cli(["doctor", "--json"], cwd=tmp_path)
    assert code == 0
    found = checks(json.loads(out))
    assert found["project", "."]["detail"].endswith("(no workstreams/ folder yet)")
    assert found["manifest", "workstreams/"]["status"] == "warn"
    assert "coditect init PHASE" in found["manifest", "workstreams/"]["hint"]


@pytest.mark.parametrize(
    ("version", "status", "code"),
    [("2.30.1", "fail", 3), ("2.38.1", "warn", 0), ("2.45.0", "ok", 0)],
    ids=["too-old", "no-stdin", "new"],
)
def test_git_version(version: str, status: str, code: int, tmp_path: Path, isolated_git: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text(f"#!/bin/sh\necho 'git version {version}'\n", encoding="utf-8")
    (fake / "git").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    done = run_cli(["doctor", "--json"], cwd=work, env=env)
    assert done.code == code, done.output
    git = checks(json.loads(done.stdout))["git", "git"]
    assert git["status"] == status
    assert f"git {version}" in git["detail"]
    if status == "fail":
        assert "needs git 2.38" in git["detail"]


def test_without_tmux_launch_is_a_warning(tmp_path: Path, isolated_git: Path) -> None:
    only_git = tmp_path / "bin"
    only_git.mkdir()
    (only_git / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    done = run_cli(["doctor", "--json"], cwd=tmp_path, env={"PATH": str(only_git)})
    assert done.code == 0, done.output
    found = checks(json.loads(done.stdout))
    assert found["git", "git"]["status"] == "ok"
    tmux = found["tmux", "tmux"]
    assert tmux["status"] == "warn" and "`streams launch` cannot open panes" in tmux["detail"]


_IMPORTS = textwrap.dedent("""\
    import json, sys
    from coditect_cli.cli.app import main
    try:
        main(["--root", sys.argv[1], "doctor", "--json"])
    except SystemExit as exc:
        code = exc.code
    print(json.dumps({"code": code, "loaded": [m for m in ("anthropic", "github") if m in sys.modules]}))
    """)


def test_doctor_does_not_import_heavy_clients(set_up: Path, isolated_git: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS, str(set_up)], capture_output=True, text=True, check=False
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == [], "doctor must not import PyGithub or the Anthropic SDK"
