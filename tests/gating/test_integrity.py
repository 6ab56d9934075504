"""What a checkpoint (or merge-phase) never leaves behind, even when killed: a gate process, an abort that
cannot be resumed, a crash because the reports directory cannot be written, a journal that says nothing about
how the last run ended."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from gating_helpers import MakeTiny, Snapshot, Tiny, git
from helpers import coditect, retry_until

from coditect_cli.state.store import Store

INTEGRATION = "phase-1-integration"


@pytest.fixture
def tiny(make_tiny: MakeTiny) -> tuple[Tiny, Snapshot]:
    return make_tiny(2)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_killed_checkpoint_leaves_no_gate_process(
    tiny: tuple[Tiny, Snapshot], socket_name: str, tmp_path: Path
) -> None:
    made, _snapshot = tiny
    pidfile = tmp_path / "gate.pid"
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN")}
    env["GATE_HANG"] = str(pidfile)
    run = subprocess.Popen(
        [sys.executable, "-m", "coditect_cli", "checkpoint", "1", "--socket", socket_name],
        cwd=made.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        text = retry_until(lambda: pidfile.read_text() if pidfile.exists() else "", bool, timeout=60)
        gate = int(text)
        assert _alive(gate)
    finally:
        run.kill()  # SIGKILL: no handler of coditect's runs
        run.wait()
    try:
        retry_until(lambda: _alive(gate), lambda alive: not alive, timeout=15)
    finally:
        if _alive(gate):  # the test failed: leave nothing running
            os.kill(gate, signal.SIGKILL)
    # The run is resumable as usual, and finishes.
    done = coditect(made.root, "checkpoint", "--continue", "--socket", socket_name)
    assert done.code == 0, done.output
    assert "coditect-gate" not in git(made.root, "worktree", "list")


@pytest.mark.parametrize("broken", ["dangling-symlink", "a-file"])
def test_an_unwritable_reports_directory_never_fails_a_run(
    tiny: tuple[Tiny, Snapshot], socket_name: str, tmp_path: Path, broken: str
) -> None:
    made, _snapshot = tiny
    reports = made.root / "workstreams" / "reports"
    if broken == "dangling-symlink":
        reports.symlink_to(tmp_path / "nowhere")
    else:
        reports.write_text("not a directory\n")
    # Killed just before its report step, then continued: the report cannot be written; the run finishes.
    killed = coditect(
        made.root, "checkpoint", "1", "--socket", socket_name, env={"CODITECT_TEST_KILL_AT": "5"}
    )
    assert killed.code == -signal.SIGKILL, killed.output
    done = coditect(made.root, "checkpoint", "--continue", "--json", "--socket", socket_name)
    assert done.code == 0, done.output
    data = done.json()["data"]
    assert data["status"] == "passed" and data["report"] is None
    assert any("could not write the report" in note for note in data["notes"])
    assert git(made.origin, "rev-parse", f"{INTEGRATION}^{{tree}}") == git(
        made.origin, "rev-parse", "checkpoint/phase-1/1^{tree}"
    )
    with Store.open(made.root / ".git") as store:
        assert store.query("SELECT status, report FROM gating_results") == [("passed", None)]
        assert store.query("SELECT state FROM journals") == [("done",)]
    # A second checkpoint, uninterrupted, passes the same way.
    second = coditect(made.root, "checkpoint", "2", "--json", "--socket", socket_name)
    assert second.code == 0, second.output
    assert second.json()["data"]["report"] is None


def test_nothing_to_continue_says_how_the_last_run_ended(
    tiny: tuple[Tiny, Snapshot], socket_name: str
) -> None:
    made, _snapshot = tiny
    never = coditect(made.root, "checkpoint", "--continue", "--socket", socket_name)
    assert never.code == 2
    assert "nothing to continue or abort (`coditect checkpoint` never ran in this phase)" in never.stderr
    assert coditect(made.root, "checkpoint", "1", "--socket", socket_name).code == 0
    passed = coditect(made.root, "checkpoint", "--abort", "--socket", socket_name)
    assert passed.code == 2
    assert "the last one (checkpoint 1, journal 1) passed on " in passed.stderr
    killed = coditect(
        made.root, "checkpoint", "2", "--socket", socket_name, env={"CODITECT_TEST_KILL_AT": "2"}
    )
    assert killed.code == -signal.SIGKILL
    assert coditect(made.root, "checkpoint", "--abort", "--socket", socket_name).code == 0
    aborted = coditect(made.root, "checkpoint", "--continue", "--socket", socket_name)
    assert "the last one (checkpoint 2, journal 2) was aborted on " in aborted.stderr
    merge = coditect(made.root, "merge-phase", "--continue", "--socket", socket_name)
    assert "(`coditect merge-phase` never ran in this phase)" in merge.stderr


def test_doctor_and_status_name_an_interrupted_run_and_its_resume_command(
    tiny: tuple[Tiny, Snapshot], socket_name: str
) -> None:
    made, _snapshot = tiny
    doctor = coditect(made.root, "doctor", "--json")
    (run,) = [c for c in doctor.json()["data"]["checks"] if c["check"] == "run"]
    assert run["status"] == "ok"
    killed = coditect(
        made.root, "checkpoint", "1", "--socket", socket_name, env={"CODITECT_TEST_KILL_AT": "3"}
    )
    assert killed.code == -signal.SIGKILL
    doctor = coditect(made.root, "doctor", "--json")
    (run,) = [c for c in doctor.json()["data"]["checks"] if c["check"] == "run"]
    assert run["status"] == "warn"
    assert run["detail"].startswith("`coditect checkpoint` (checkpoint 1, journal 1, started ")
    assert run["detail"].endswith("was interrupted")
    assert run["hint"].startswith("resume it with `coditect checkpoint --continue`")
    status = coditect(made.root, "status", "--json", "--socket", socket_name)
    assert status.code == 0, status.output
    (note,) = [n for n in status.json()["data"]["notes"] if "was interrupted" in n]
    assert "resume it with `coditect checkpoint --continue`" in note
    shown = coditect(made.root, "status", "--socket", socket_name)
    assert "coditect checkpoint --continue" in shown.stdout
    # Once an abort began, only --abort resumes it.
    stopped = coditect(
        made.root, "checkpoint", "--abort", "--socket", socket_name, env={"CODITECT_TEST_KILL_AT": "3:back1"}
    )
    assert stopped.code == -signal.SIGKILL
    doctor = coditect(made.root, "doctor", "--json")
    (run,) = [c for c in doctor.json()["data"]["checks"] if c["check"] == "run"]
    assert run["hint"] == "resume it with `coditect checkpoint --abort`"


def test_a_direct_push_to_the_integration_branch_is_refused_then_adopted(
    tiny: tuple[Tiny, Snapshot], socket_name: str
) -> None:
    from coditect_cli.adapters.git import commit_file

    made, _snapshot = tiny
    gated = git(made.origin, "rev-parse", INTEGRATION)
    # Someone pushes straight to origin's integration branch, around coditect.
    commit_file(made.root, INTEGRATION, "hotfix.txt", "hotfix\n", "fix: a hotfix pushed by hand")
    git(made.root, "push", "-q", "origin", INTEGRATION)
    pushed = git(made.origin, "rev-parse", INTEGRATION)
    before = made.refs()
    for command in (["checkpoint", "1"], ["merge-phase", "--land", "--force", "demo"]):
        refused = coditect(made.root, *command, "--json", "--socket", socket_name)
        assert refused.code == 4, refused.output
        error = refused.json()["error"]
        assert error["message"] == (
            "not building on an integration tip that was never gated:\n"
            f"  origin's {INTEGRATION} of 'app' is at {pushed[:12]}, a commit coditect did not gate (pushed or "
            f"moved outside coditect); not gated: {pushed[:7]} fix: a hotfix pushed by hand"
        )
        assert (
            "--adopt-tip" in error["hint"] and f"put the branch back ({gated[:12]} in app)" in error["hint"]
        )
    assert made.refs() == before and made.gate_runs() == []
    with Store.open(made.root / ".git") as store:
        assert store.query("SELECT count(*) FROM journals") == [(0,)]  # refused before anything began
    # Adopted: the tip is gated alone first, then the batch on it; the reason is in the store and report.
    done = coditect(
        made.root, "checkpoint", "1", "--adopt-tip", "release team hotfix", "--json", "--socket", socket_name
    )
    assert done.code == 0, done.output
    data = done.json()["data"]
    assert data["adopted"] == {
        "app": {
            "tip": pushed,
            "commits": [f"{pushed[:7]} fix: a hotfix pushed by hand"],
            "reason": "release team hotfix",
        }
    }
    assert made.gate_runs()[0].split()[0] == pushed
    assert git(made.origin, "merge-base", "--is-ancestor", pushed, INTEGRATION) == ""
    report = Path(data["report"]).read_text(encoding="utf-8")
    assert "## Adopted integration tips" in report and "release team hotfix" in report
    with Store.open(made.root / ".git") as store:
        (event,) = store.events(kind="adopt-tip")
        assert event.repo == "app" and event.detail is not None
        assert (event.detail["tip"], event.detail["reason"], event.detail["passed"]) == (
            pushed,
            "release team hotfix",
            True,
        )
    # What coditect landed is gated: the next checkpoint builds on it without asking.
    again = coditect(made.root, "checkpoint", "2", "--json", "--socket", socket_name)
    assert again.code == 0, again.output


def test_the_next_run_removes_what_killed_runs_left_in_temporary_directories(
    tiny: tuple[Tiny, Snapshot], socket_name: str
) -> None:
    import tempfile

    from coditect_cli.adapters.mergetree import _scratch_parent

    made, _snapshot = tiny
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = int(gone.stdout)  # a process that has exited
    tmp = Path(tempfile.gettempdir())
    leftovers = [
        Path(tempfile.mkdtemp(prefix=f"coditect-objects-{dead}-", dir=_scratch_parent())),
        Path(tempfile.mkdtemp(prefix=f"coditect-index-{dead}-")),
        Path(tempfile.mkdtemp(prefix="coditect-gate-phase-1-")),  # made, then killed before its worktree
    ]
    (leftovers[0] / "ab").mkdir()
    (leftovers[1] / "index").write_text("x")
    live = Path(tempfile.mkdtemp(prefix=f"coditect-objects-{os.getpid()}-", dir=tmp))  # in use: kept
    try:
        done = coditect(made.root, "checkpoint", "1", "--socket", socket_name)
        assert done.code == 0, done.output
        assert [p for p in leftovers if p.exists()] == []
        assert live.is_dir()
    finally:
        for path in [*leftovers, live]:
            if path.exists():
                shutil.rmtree(path)
