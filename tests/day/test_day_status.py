"""``coditect status``: the dashboard's numbers (tasks, PRs, branches, conflicts, agents, checkpoints) on a
sandbox where work was planted, and ``--watch`` in a pseudo-terminal stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from daykit import (
    PHASE1,
    PHASE1_INTEGRATION,
    build,
    cli,
    cli_json,
    commit,
    plant_on_integration,
    show,
)
from helpers import git_in

from coditect_cli.project import Project
from coditect_cli.services import prs, reviews, tasks


@pytest.fixture(scope="module")
def root(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """infra: 1 commit, PR approved (ready), 1 task done; backend: PR with changes requested, 1 task done;
    docs: one commit on root and one behind (conflicting with it); checkpoint 1 tagged in the superproject
    (and a tag of another phase that must not count)."""
    root = build(tmp_path_factory.mktemp("status"))
    project = Project(root)
    commit(root, "infra", "infra", "opentofu/modules/networking/main.tf", "\n# cache\n", "feat(infra): cache")
    commit(root, "backend", "backend", "src/api/v1/orgs.py", "\n# orgs\n", "feat(backend): orgs")
    rest = show(root, "root", PHASE1_INTEGRATION, "README.md").split("\n", 1)[1]
    commit(root, "docs", "root", "README.md", f"# Rollout (docs)\n{rest}", "docs: retitle", replace=True)
    plant_on_integration(root, "root", "README.md", f"# Rollout (integration)\n{rest}", "chore: retitle")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        tasks.set_task(project, PHASE1, "infra", "infra-network", "done")
        tasks.set_task(project, PHASE1, "backend", "backend-auth", "done")
        tasks.set_task(project, PHASE1, "backend", "backend-orgs", "in-progress")
        prs.open_prs(project, PHASE1, "infra")
        prs.open_prs(project, PHASE1, "backend")
        reviews.review(project, PHASE1, "infra", owner="@cloud-architect", state="approved")
        reviews.review(project, PHASE1, "backend", owner="@codi-code-architect", state="changes_requested")
    git_in(root, "tag", "checkpoint/phase-1/1", PHASE1_INTEGRATION)
    git_in(root, "tag", "checkpoint/phase-10/2", PHASE1_INTEGRATION)  # another phase's checkpoint
    return root


def rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["stream"]: r for r in data["streams"]}


def test_status_json_progress_per_stream_and_phase(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = cli_json(root, ["status", "--day", "7"], capsys)
    assert (data["phase"], data["day"], data["days"]) == (PHASE1, 7, 10)
    assert (data["done"], data["total"], data["percent"]) == (2, 23, 9)
    r = rows(data)
    assert [s for s in r] == ["infra", "backend", "frontend", "deploy", "docs"]
    assert (r["infra"]["done"], r["infra"]["total"], r["infra"]["percent"]) == (1, 3, 33)
    assert (r["backend"]["done"], r["backend"]["total"], r["backend"]["percent"]) == (1, 5, 20)
    assert r["infra"]["blocked_tasks"] == ["infra-secrets"]
    # backend-orgs is started but waits for infra-runtime; the rest wait for it in turn
    assert r["backend"]["blocked_tasks"] == [
        "backend-orgs",
        "backend-users",
        "backend-licenses",
        "backend-projects",
    ]


def test_status_json_prs_branches_conflicts_and_agents(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = rows(cli_json(root, ["status", "--day", "7"], capsys))
    assert (r["infra"]["pr_state"], r["infra"]["prs"]) == ("ready", ["infra#1"])
    assert (r["backend"]["pr_state"], r["backend"]["prs"]) == ("changes-requested", ["backend#1"])
    assert (r["frontend"]["pr_state"], r["frontend"]["prs"]) == ("none", [])
    assert {s: (x["ahead"], x["behind"], x["conflicts"]) for s, x in r.items()} == {
        "infra": (1, 0, 0),
        "backend": (1, 0, 0),
        "frontend": (0, 0, 0),
        "deploy": (0, 0, 0),
        "docs": (1, 1, 1),
    }
    assert {x["agent"] for x in r.values()} == {"not launched"}


@pytest.mark.parametrize(
    ("day", "states"),
    [
        (2, ["passed", "upcoming", "upcoming", "upcoming"]),
        (6, ["passed", "due", "upcoming", "upcoming"]),
        (7, ["passed", "overdue", "upcoming", "upcoming"]),
        (12, ["passed", "overdue", "overdue", "due"]),
    ],
)
def test_checkpoint_timeline(
    root: Path, capsys: pytest.CaptureFixture[str], day: int, states: list[str]
) -> None:
    data = cli_json(root, ["status", "--day", str(day)], capsys)
    assert [(c["id"], c["day"]) for c in data["checkpoints"]] == [(1, 3), (2, 6), (3, 9), (4, 12)]
    assert [c["state"] for c in data["checkpoints"]] == states


def test_checkpoint_due_until_its_tag_exists(
    tmp_path: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = build(tmp_path, setup=False)
    before = cli_json(fresh, ["status", "--day", "3"], capsys)
    assert before["checkpoints"][0]["state"] == "due"
    git_in(fresh, "tag", "-a", "-m", "checkpoint 1", "checkpoint/phase-1/1")
    after = cli_json(fresh, ["status", "--day", "3"], capsys)
    assert after["checkpoints"][0]["state"] == "passed"


def test_status_human_dashboard(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    result = cli(root, ["status", "--day", "7"], capsys)
    assert result.code == 0, result.output
    out = result.stdout
    assert "Phase 1: Authentication and Core Services — day 7 of 10" in out
    assert "Terminal 1 (Infrastructure): [███░░░░░░░] 33% complete (1/3 tasks, 1 blocked)" in out
    assert "PR ready (infra#1) · +1/-0 vs integration · no conflicts · agent not launched" in out
    assert "+1/-1 vs integration · 1 conflict(s)" in out
    assert "Overall: [█░░░░░░░░░] 9% complete (2/23 tasks) · days elapsed 7/10" in out
    assert "✅ Day 3 - Checkpoint 1: Infrastructure → Backend integration (passed)" in out
    assert "Day 6 - Checkpoint 2: Frontend → Backend integration (mock → real) (overdue)" in out


def test_status_progress_follows_task_done(
    tmp_path: Path, isolated_git: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = build(tmp_path, setup=False)
    for stream, task in [("docs", "docs-api"), ("docs", "docs-architecture"), ("docs", "docs-release")]:
        assert cli(fresh, ["task", "done", stream, task], capsys).code == 0
    data = cli_json(fresh, ["status", "--day", "1"], capsys)
    docs = rows(data)["docs"]
    assert (docs["done"], docs["total"], docs["percent"]) == (3, 5, 60)
    assert (data["done"], data["percent"]) == (3, 13)


def test_status_watch_json_prints_once(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = cli_json(root, ["status", "--watch", "--day", "7"], capsys)
    assert data["day"] == 7


def _read_until(fd: int, needle: bytes, count: int, timeout: float) -> bytes:
    """Read the pty until ``needle`` was seen ``count`` times (or the time is up)."""
    out = b""
    deadline = time.monotonic() + timeout
    while out.count(needle) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_status_watch_refreshes_until_ctrl_c(root: Path) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    child = subprocess.Popen(
        [sys.executable, "-m", "coditect_cli", "status", "--watch", "--interval", "0.2", "--day", "7"],
        cwd=root,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    os.close(slave)
    try:
        shown = _read_until(master, b"Checkpoint timeline", 1, timeout=30)
        assert b"Checkpoint timeline" in shown, shown.decode(errors="replace")
        shown += _read_until(master, b"Terminal 1", 1, timeout=10)  # wait for a refresh to be drawn
        os.killpg(child.pid, signal.SIGINT)  # Ctrl-C: the whole foreground process group
        code = child.wait(timeout=20)
        shown += _read_until(master, b"\0", 1, timeout=1)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)
    text = shown.decode(errors="replace")
    assert code == 0, text
    assert "Terminal 1 (Infrastructure)" in text and "33% complete" in text
    assert "Traceback" not in text and "Aborted" not in text


def test_status_day_defaults_to_the_schedule(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt

    from coditect_cli.domain.loader import load_manifest
    from coditect_cli.domain.schedule import phase_day

    manifest = load_manifest(root / "workstreams" / "phase-1.yaml").manifest
    data = cli_json(root, ["status"], capsys)
    assert data["day"] == phase_day(manifest.schedule, dt.date.today())
    assert json.dumps(data)


def test_facts_read_again_in_one_process_see_what_moved(
    isolated_git: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The autopilot reads the phase pass after pass in one process, keeping merges and histories by commit
    ids: each read sees the commits made since, the paths they change and the conflicts they bring."""
    from coditect_cli.services.facts import gather

    root = build(tmp_path)
    monkeypatch.chdir(root)
    project = Project(root)
    key = "frontend@frontend"

    def facts() -> tuple[int, int, tuple[str, ...], list[tuple[str, tuple[str, ...]]]]:
        b = gather(project, PHASE1).branches[key]
        return b.ahead, b.behind, b.changed, b.conflicts

    assert facts() == (0, 0, (), [])
    commit(root, "frontend", "frontend", "src/pages/Login.tsx", "\nexport const a = 1;\n", "feat(ui): a")
    assert facts() == (1, 0, ("src/pages/Login.tsx",), [])
    plant_on_integration(root, "frontend", "src/pages/Login.tsx", "export const b = 2;\n", "chore: login b")
    assert facts() == (1, 1, ("src/pages/Login.tsx",), [("integration", ("src/pages/Login.tsx",))])
