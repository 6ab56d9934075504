"""``coditect streams setup`` end to end: exit codes and messages on real repositories.

First and second run, refusals (exit 4) on a path in the way and on a dirty worktree, origins missing or
unreachable (exit 5), ``--no-push``, a phase lock held by another process (exit 5), and a run killed with
SIGKILL half-way then resumed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import (
    PHASE1_INTEGRATION,
    PHASE1_PAIRS,
    PHASE1_REPOS,
    CliResult,
    assert_streams_set_up,
    build_phase1_sandbox,
    call_main,
    git_in,
    git_ok,
    refs_snapshot,
    replace_once,
    repo_dir,
    run_cli,
    setup_with_cwd,
    stream_worktree,
)

from coditect_cli.state.lock import holder_path

STEPS = 4 + 4 + 1 + 3 * len(PHASE1_PAIRS) + 4  # branches, CODEOWNERS, exclude, 3 per pair, pushes


def cli(
    root: Path, args: list[str], capsys: pytest.CaptureFixture[str], cwd: Path | None = None
) -> CliResult:
    """``coditect ARGS`` in this process, from ``cwd`` (default: the project root)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd or root)
        return call_main(args, capsys)


def done_kinds(stdout: str) -> list[str]:
    return [step["kind"] for step in json.loads(stdout)["data"]["done"]]


def origins_snapshot(root: Path) -> dict[str, str]:
    return {k: v for k, v in refs_snapshot(root).items() if k.startswith("origin:")}


def branches_of(rid: str) -> list[str]:
    return [PHASE1_INTEGRATION, *(b for _s, r, b in PHASE1_PAIRS if r == rid)]


# ----------------------------------------------------------------------------------------- first, second run


def test_first_run_sets_everything_up_and_a_second_run_has_nothing_to_do(
    isolated_git: Path, tmp_path: Path
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    before = refs_snapshot(root)
    first = run_cli(["streams", "setup"], cwd=root)
    assert first.code == 0, first.output
    assert f"streams setup phase-1: {STEPS} step(s) done." in first.stdout
    assert_streams_set_up(root, pushed=True)
    after = refs_snapshot(root)
    assert after != before

    second = run_cli(["streams", "setup"], cwd=root)
    assert second.code == 0, second.output
    assert "streams setup phase-1: nothing to do" in second.stdout
    assert refs_snapshot(root) == after


def test_dry_run_lists_the_plan_and_changes_nothing(
    isolated_git: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    before = refs_snapshot(root)
    code, out, err = cli(root, ["--json", "streams", "setup", "--dry-run"], capsys)
    assert code == 0, err
    data = json.loads(out)["data"]
    assert data["dry_run"] is True and data["done"] == [] and data["changes"] == STEPS
    assert refs_snapshot(root) == before
    assert not (root / ".coditect").exists()
    assert not (root / ".git" / "coditect" / "state.db").exists()


# ----------------------------------------------------------------------------------------------- refusals


def test_a_directory_in_the_way_of_a_worktree_is_refused_then_setup_resumes(
    isolated_git: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    blocked = stream_worktree(root, "frontend", "frontend")
    blocked.mkdir(parents=True)
    (blocked / "draft.tsx").write_text("export {}\n", encoding="utf-8")

    code, _out, err = cli(root, ["streams", "setup"], capsys)
    assert code == 4, err
    assert f"{blocked} exists and is not the worktree of feature/phase-1/frontend/auth-ui" in err
    assert "setup will not overwrite it" in err
    assert "setup stopped at: add worktree .coditect/worktrees/phase-1/frontend/frontend" in err
    assert "hint: move it away" in err
    assert (blocked / "draft.tsx").read_text(encoding="utf-8") == "export {}\n"
    # The steps before it were done: the other repositories are complete.
    assert git_in(stream_worktree(root, "deploy", "backend"), "symbolic-ref", "--short", "HEAD") == (
        "feature/phase-1/deploy/kubernetes-manifests"
    )

    shutil.rmtree(blocked)
    code, out, err = cli(root, ["--json", "streams", "setup"], capsys)
    assert code == 0, err
    done = json.loads(out)["data"]["done"]
    assert [(s["repo"], s["kind"]) for s in done[:2]] == [
        ("frontend", "AddWorktree"),
        ("frontend", "InstallGuard"),
    ]
    assert done[0]["path"] == str(blocked)
    assert {s["repo"] for s in done if s["kind"] != "Push"} == {"frontend"}  # only what was left
    assert_streams_set_up(root, pushed=True)


def test_a_worktree_on_a_detached_commit_of_its_own_is_not_switched_away_from_it(
    isolated_git: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Switching would leave the commit reachable from the reflog only: refused (exit 4), the commit named."""
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    worktree = stream_worktree(root, "backend", "backend")
    branch = git_in(worktree, "symbolic-ref", "--short", "HEAD")
    git_in(worktree, "switch", "-q", "--detach")
    (worktree / "src" / "api" / "v1" / "auth.py").write_text("# made on a detached HEAD\n", encoding="utf-8")
    git_in(worktree, "commit", "-q", "-am", "auth work on a detached HEAD")
    lost = git_in(worktree, "log", "-1", "--format=%h %s")
    detached = git_in(worktree, "rev-parse", "HEAD")

    code, out, err = cli(root, ["--json", "streams", "setup"], capsys)
    assert code == 4, err
    payload = json.loads(out)
    assert payload["ok"] is False
    message = payload["error"]["message"]
    assert (
        f"worktree {worktree} is on a detached HEAD with 1 commit(s) on no branch and no remote; "
        f"setup will not switch it to {branch}:\n  {lost}" in message
    )
    assert [(p["code"], p["message"]) for p in payload["problems"]] == [
        ("unreachable", f"on no branch: {lost}")
    ]
    assert git_in(worktree, "rev-parse", "HEAD") == detached
    assert git_in(worktree, "symbolic-ref", "-q", "HEAD", check=False) == ""

    # Kept on a branch, the commit is safe: setup switches the worktree back to the stream's branch.
    git_in(worktree, "branch", "keep/detached-work")
    code, out, err = cli(root, ["--json", "streams", "setup"], capsys)
    assert code == 0, err
    assert done_kinds(out) == ["SwitchWorktree", "InstallGuard"]
    assert git_in(worktree, "symbolic-ref", "--short", "HEAD") == branch
    assert git_in(worktree, "rev-parse", "keep/detached-work") == detached


def test_a_deleted_worktree_on_a_detached_commit_of_its_own_is_not_pruned(
    isolated_git: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Re-adding a worktree deleted by hand prunes its registration, which would forget its detached HEAD."""
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    backend = repo_dir(root, "backend")
    worktree = stream_worktree(root, "backend", "backend")
    git_in(worktree, "switch", "-q", "--detach")
    (worktree / "src" / "api" / "v1" / "auth.py").write_text("# made on a detached HEAD\n", encoding="utf-8")
    git_in(worktree, "commit", "-q", "-am", "auth work on a detached HEAD")
    lost = git_in(worktree, "log", "-1", "--format=%h %s")
    detached = git_in(worktree, "rev-parse", "HEAD")
    shutil.rmtree(worktree)

    code, _out, err = cli(root, ["streams", "setup"], capsys)
    assert code == 4, err
    assert f"worktree(s) {worktree} were deleted but stay registered" in err
    assert f"  {lost}" in err
    assert "prunable" in git_in(backend, "worktree", "list", "--porcelain")  # not pruned

    git_in(backend, "branch", "keep/detached-work", detached)
    code, _out, err = cli(root, ["streams", "setup"], capsys)
    assert code == 0, err
    assert_streams_set_up(root, pushed=True)
    assert git_in(backend, "rev-parse", "keep/detached-work") == detached


def test_a_dirty_worktree_is_not_switched_to_its_streams_new_branch(
    isolated_git: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    backend = repo_dir(root, "backend")
    worktree = stream_worktree(root, "backend", "backend")
    old, new = "feature/phase-1/backend/auth-service", "feature/phase-1/backend/auth-api"
    (worktree / "src" / "api" / "v1" / "auth.py").write_text("# work in progress\n", encoding="utf-8")
    (worktree / "notes.txt").write_text("todo\n", encoding="utf-8")
    manifest = root / "workstreams" / "phase-1.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(replace_once(text, "topic: auth-service", "topic: auth-api"), encoding="utf-8")

    code, _out, err = cli(root, ["streams", "setup"], capsys)
    assert code == 4, err
    assert (
        f"worktree {worktree} is on {old} with uncommitted changes; setup will not switch it to {new}" in err
    )
    assert " M src/api/v1/auth.py" in err and "?? notes.txt" in err
    assert git_in(worktree, "symbolic-ref", "--short", "HEAD") == old
    assert (worktree / "src" / "api" / "v1" / "auth.py").read_text(encoding="utf-8") == "# work in progress\n"
    assert (worktree / "notes.txt").is_file()
    # Creating the new branch (the step before) is harmless and was done.
    assert git_in(backend, "rev-parse", new) == git_in(backend, "rev-parse", PHASE1_INTEGRATION)

    (worktree / "notes.txt").unlink()
    git_in(worktree, "commit", "-q", "-am", "wip on the old topic")
    kept = git_in(backend, "rev-parse", old)
    code, out, err = cli(root, ["--json", "streams", "setup"], capsys)
    assert code == 0, err
    assert done_kinds(out) == ["SwitchWorktree", "InstallGuard", "Push"]
    assert git_in(worktree, "symbolic-ref", "--short", "HEAD") == new
    assert git_in(worktree, "status", "--porcelain") == ""
    assert git_in(backend, "rev-parse", old) == kept  # the old branch keeps its work
    assert git_in(backend, "rev-parse", "--abbrev-ref", f"{new}@{{upstream}}") == f"origin/{new}"
    code, out, err = cli(root, ["streams", "setup"], capsys)
    assert code == 0 and "nothing to do" in out, err


# ----------------------------------------------------------------------------------------------- origins


def test_without_an_origin_setup_does_everything_but_push(
    isolated_git: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    for rid in PHASE1_REPOS:
        git_in(repo_dir(root, rid), "remote", "remove", "origin")
    code, out, err = cli(root, ["--json", "streams", "setup"], capsys)
    assert code == 0, err
    kinds = done_kinds(out)
    assert "Push" not in kinds and len(kinds) == STEPS - 4
    assert_streams_set_up(root, pushed=False)
    for rid in PHASE1_REPOS:
        for branch in branches_of(rid):
            assert not git_ok(repo_dir(root, rid), "rev-parse", "--abbrev-ref", f"{branch}@{{upstream}}")
    code, out, err = cli(root, ["streams", "setup"], capsys)
    assert code == 0 and "nothing to do" in out, err


def test_no_push_leaves_origins_alone_and_a_later_run_only_pushes(
    isolated_git: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    origins = origins_snapshot(root)
    code, out, err = cli(root, ["--json", "streams", "setup", "--no-push"], capsys)
    assert code == 0, err
    assert "Push" not in done_kinds(out)
    assert_streams_set_up(root, pushed=False)
    assert origins_snapshot(root) == origins
    assert not git_ok(
        repo_dir(root, "backend"), "rev-parse", "--abbrev-ref", f"{PHASE1_INTEGRATION}@{{upstream}}"
    )

    code, out, err = cli(root, ["--json", "streams", "setup"], capsys)
    assert code == 0, err
    assert done_kinds(out) == ["Push"] * 4
    assert_streams_set_up(root, pushed=True)


def _unreachable_origins(root: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Point every origin at a path that does not exist; return it and the original URLs."""
    gone = tmp_path / "gone"
    urls = {}
    for rid in PHASE1_REPOS:
        urls[rid] = git_in(repo_dir(root, rid), "config", "--get", "remote.origin.url")
        git_in(repo_dir(root, rid), "remote", "set-url", "origin", str(gone / f"{rid}.git"))
    return gone, urls


def test_an_unreachable_origin_fails_with_exit_5_after_all_the_local_work(
    isolated_git: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    gone, urls = _unreachable_origins(root, tmp_path)
    code, _out, err = cli(root, ["streams", "setup"], capsys)
    assert code == 5, err
    for rid in PHASE1_REPOS:
        pushed = ", ".join(branches_of(rid))
        assert f"could not push {pushed} of repository '{rid}' to origin ({gone / f'{rid}.git'})" in err
    assert "does not appear to be a git repository" in err  # git's reason, not its last line
    assert f"all {STEPS - 4} local step(s) were done; only the push(es) above are missing" in err
    assert "fix the origin (or use --no-push)" in err
    # The local work of every repository is done, whatever its origin.
    assert_streams_set_up(root, pushed=False)
    assert not gone.exists()

    code, out, err = cli(root, ["streams", "setup", "--no-push"], capsys)
    assert code == 0 and "nothing to do" in out, err

    for rid, url in urls.items():
        git_in(repo_dir(root, rid), "remote", "set-url", "origin", url)
    code, out, err = cli(root, ["--json", "streams", "setup"], capsys)
    assert code == 0, err
    assert done_kinds(out) == ["Push"] * 4
    assert_streams_set_up(root, pushed=True)


# ------------------------------------------------------------------------------------------------ the lock

HOLDER = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from coditect_cli.state.lock import phase_lock
    common, release = Path(sys.argv[1]), Path(sys.argv[2])
    with phase_lock(common, "phase-1", "test holder"):
        print("held", flush=True)
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    """)


def test_a_phase_locked_by_another_process_fails_with_exit_5_naming_the_holder(
    isolated_git: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    release = tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root / ".git"), str(release)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = refs_snapshot(root)
        started = time.monotonic()
        code, _out, err = cli(root, ["streams", "setup"], capsys)
        elapsed = time.monotonic() - started
        assert code == 5, err
        assert f"phase 'phase-1' is locked by `test holder` (pid {holder.pid} on" in err
        assert 4.5 <= elapsed < 8.5, f"gave up after {elapsed:.1f}s (expected the 5 s lock timeout)"
        assert refs_snapshot(root) == before
    finally:
        release.touch()
        holder.wait(timeout=20)
    assert holder.returncode == 0
    code, _out, err = cli(root, ["streams", "setup"], capsys)
    assert code == 0, err
    assert not holder_path(root / ".git", "phase-1").exists()


# ------------------------------------------------------------------------------------------- killed midway


def _wait_for_process_group(pgid: int, timeout: float = 30) -> None:
    """Wait until no live process is left in ``pgid`` (the killed command's orphaned git children)."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():  # no procfs: give orphans a moment
        time.sleep(2)
        return
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for stat in proc_dir.glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(stat.parent.name)
        if not alive:
            return
        assert time.monotonic() < deadline, f"processes {alive} of the killed setup are still running"
        time.sleep(0.02)


def test_setup_killed_with_sigkill_midway_then_rerun_completes(isolated_git: Path, tmp_path: Path) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    delay = round(random.uniform(0.0, 0.8), 3)
    first_branch = root / ".git" / "refs" / "heads" / PHASE1_INTEGRATION
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    victim = subprocess.Popen(
        [sys.executable, "-m", "coditect_cli", "streams", "setup"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not first_branch.exists() and victim.poll() is None:
        assert time.monotonic() < deadline, "setup created no branch within 60 s"
        time.sleep(0.005)
    time.sleep(delay)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    _wait_for_process_group(victim.pid)
    where = f"(killed {delay}s after the first branch appeared; exit status {victim.returncode})"

    again = run_cli(["streams", "setup"], cwd=root)
    assert again.code == 0, f"{where}\n{again.output}"
    assert_streams_set_up(root, pushed=True)
    third = run_cli(["streams", "setup"], cwd=root)
    assert third.code == 0 and "nothing to do" in third.stdout, f"{where}\n{third.output}"
    with sqlite3.connect(root / ".git" / "coditect" / "state.db") as conn:
        statuses = [row[0] for row in conn.execute("SELECT status FROM runs ORDER BY id")]
    # The killed run may have left its journal entry 'running' (or none, or 'ok' if it was killed late); the
    # rerun journals an 'ok' run unless the killed one had already done every step.
    assert statuses.count("running") <= 1 and set(statuses) <= {"running", "ok"}, f"{where}: {statuses}"
    if "nothing to do" not in again.stdout:
        assert statuses[-1] == "ok", f"{where}: {statuses}"


# ----------------------------------------------------------------------------------------------- from elsewhere


def test_setup_from_any_directory_commits_the_same_codeowners_and_is_idempotent(
    isolated_git: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: the CODEOWNERS header names the manifest relative to the project root, not the cwd.

    It named it relative to the current directory, so from anywhere but the root setup planned to rewrite
    every CODEOWNERS (and committed a header like ``../workstreams/phase-1.yaml``).
    """
    root = build_phase1_sandbox(tmp_path / "sandbox")
    code, _out, err = cli(root, ["streams", "setup"], capsys, cwd=root / "submodules" / "cloud")
    assert code == 0, err
    assert_streams_set_up(root, pushed=True)  # the committed CODEOWNERS are the golden ones
    for cwd in (root / "submodules", stream_worktree(root, "deploy", "backend") / "kubernetes", root):
        code, out, err = cli(root, ["--json", "streams", "setup", "--dry-run"], capsys, cwd=cwd)
        assert code == 0, err
        assert json.loads(out)["data"]["steps"] == [], cwd


def test_a_worktree_deleted_by_hand_is_recreated(
    isolated_git: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    shutil.rmtree(stream_worktree(root, "docs", "infra"))
    code, _out, err = cli(root, ["streams", "setup"], capsys)
    assert code == 0, err
    assert_streams_set_up(root, pushed=True)
