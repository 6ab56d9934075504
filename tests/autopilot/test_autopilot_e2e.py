"""The autopilot end to end on a tiny project: scripted agents (``--serve``) in a private tmux server.

Tasks are dispatched in dependency order under the cap; an agent claiming done without pushing is told and
not marked done until it pushes; a planted gate failure is sent back with its log; a review asking for
changes and a failing gate recorded on a branch reach that stream's pane only; a killed autopilot, started
again, sends nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gating_helpers import build_tiny, git
from helpers import kill_tmux_server, retry_until, scripted_run

from coditect_cli.project import Project
from coditect_cli.services.autopilot import Autopilot, PassReport
from coditect_cli.services.autopilot_agents import TmuxAgents
from coditect_cli.services.setup import project_common_dir
from coditect_cli.state.store import Store

PHASE = "phase-1"


def scripted(*extra: str) -> str:
    return scripted_run(*extra)


def manifest(runs: dict[int, str], *, max_working: int = 2) -> str:
    tasks = {
        1: "[{id: t1, days: 1, title: First of s1}]",
        2: "[{id: t2, days: 1, title: After t1, depends_on: [t1]}]",
        3: "[{id: t3, days: 1, title: Alone}]",
    }
    streams = "".join(
        f"""
  - id: s{k}
    terminal: {k}
    name: Stream {k}
    agent: agent{k}
    run: {json.dumps(runs[k])}
    work: [{{repo: app, topic: t{k}, owns: [s{k}/]}}]
    gates: [{{name: gate, run: "python3 gate.py"}}]
    deliverables: {tasks[k]}
"""
        for k in (1, 2, 3)
    )
    return (
        "version: 1\nphase: phase-1\ntitle: Tiny\nforge: local\n"
        "schedule: {start: 2026-12-01, days: 10}\n"
        "repositories:\n  - {id: app, path: .}\n"
        f"autopilot: {{max_working: {max_working}, stagger: 0, retries: 2, backoff: 0, poll: 0.2}}\n"
        "reactions:\n  gate_failed: {interval: 0, retries: 1}\n"
        f"streams:{streams}"
    )


@pytest.fixture
def socket(tmp_path: Path) -> Iterator[str]:
    name = f"coditect-ap-{os.getpid()}-{abs(hash(str(tmp_path))) % 100000}"
    yield name
    kill_tmux_server(name)


def start(tmp_path: Path, socket: str, runs: dict[int, str], **kw: int):  # type: ignore[no-untyped-def]
    from coditect_cli.services.launch import launch

    tiny = build_tiny(tmp_path, 3, open_prs=False)
    (tiny.root / "workstreams" / "phase-1.yaml").write_text(manifest(runs, **kw), encoding="utf-8")
    project = Project(tiny.root)
    launch(project, PHASE, attach=False, socket=socket, agent=None, day=1)
    pilot = Autopilot(project, PHASE, TmuxAgents(project, socket), socket=socket)
    return tiny, project, pilot


def run_until(pilot: Autopilot, done: callable, timeout: float = 60) -> list[PassReport]:  # type: ignore[valid-type]
    reports: list[PassReport] = []

    def one() -> PassReport:
        report = pilot.run_pass()
        reports.append(report)
        return report

    retry_until(one, done, timeout=timeout)  # type: ignore[arg-type]
    return reports


def journal(project: Project) -> list[tuple[int, str, str, str, str]]:
    with Store.open(project_common_dir(project)) as store:
        return store.query("SELECT id, key, kind, state, outcome FROM autopilot_actions ORDER BY id")


def dispatch_rows(project: Project) -> list[tuple[str, str, int, str]]:
    with Store.open(project_common_dir(project)) as store:
        return store.query("SELECT stream, task, attempt, state FROM autopilot_dispatches ORDER BY id")


def all_done(report: PassReport) -> bool:
    return all(report.tasks.get(t) == "done" for t in ("t1", "t2", "t3"))


def test_tasks_go_out_in_dependency_order_under_the_cap_and_done_is_verified(
    tmp_path: Path, isolated_git: Path, socket: str
) -> None:
    tiny, project, pilot = start(
        tmp_path, socket, {1: scripted(), 2: scripted(), 3: scripted("--misbehave", "no-push")}
    )
    run_until(pilot, all_done)
    keys = [k for _, k, kind, _, _ in journal(project) if kind == "dispatch"]
    # t2 waits for t1; the cap is 2. (s1 and s3 in either order: whichever agent was up first.)
    assert sorted(keys[:2]) == ["dispatch:s1:t1", "dispatch:s3:t3"]
    assert keys[2] == "dispatch:s2:t2"
    rows = dispatch_rows(project)
    assert ("s3", "t3", 2, "done") in rows  # told once that it had not pushed, then verified
    told = [o for _, k, kind, _, o in journal(project) if kind == "verify" and k.startswith("verify:")]
    assert any("not on origin" in o or "no upstream" in o for o in told)
    for k in (1, 2, 3):  # every stream's task commit reached origin
        branch = f"feature/phase-1/s{k}/t{k}"
        assert (
            git(tiny.origin, "log", "--format=%s", branch)
            .splitlines()[0]
            .startswith(("feat(s", "fix(s", "chore(s"))
        )
    assert not any(kind == "dispatch" for _, k, kind, _, _ in journal(project) if k.endswith("#2"))


def test_a_planted_gate_failure_is_sent_back_with_its_log(
    tmp_path: Path, isolated_git: Path, socket: str
) -> None:
    tiny, project, pilot = start(
        tmp_path,
        socket,
        {1: scripted("--break-gate", "s1/broken.txt"), 2: scripted(), 3: scripted()},
        max_working=3,
    )
    run_until(pilot, lambda r: r.tasks.get("t1") == "done")
    outcomes = [o for _, k, kind, _, o in journal(project) if kind == "verify"]
    assert any("the gate `gate` fails" in o and "FAIL_GATE in" in o for o in outcomes)
    assert not (tiny.worktree(1) / "s1" / "broken.txt").exists()
    assert ("s1", "t1", 2, "done") in dispatch_rows(project)


def test_reviews_and_failing_gates_reach_the_right_pane(
    tmp_path: Path, isolated_git: Path, socket: str
) -> None:
    from coditect_cli.services import prs, reviews
    from coditect_cli.services.reviews import record_check
    from coditect_cli.services.session import agent_file, log_path

    tiny, project, pilot = start(
        tmp_path, socket, {1: scripted(), 2: scripted(), 3: scripted()}, max_working=3
    )
    run_until(pilot, all_done)
    prs.open_all(project, PHASE)
    reviews.review(
        project, PHASE, "s1", owner="@agent1", state="changes_requested", body="rename work.txt to notes.txt"
    )
    log = tmp_path / "gate.log"
    log.write_text("$ python3 gate.py\nFAIL_GATE in s2/work.txt\n# exit 1\n")
    head2 = git(tiny.worktree(2), "rev-parse", "HEAD")
    record_check(project, PHASE, "app", head2, "gate", "failure", str(log))
    before = {k: agent_file(project_common_dir(project), PHASE, f"s{k}").read_text() for k in (1, 2, 3)}
    reports = run_until(pilot, lambda r: any(o.action.kind == "react" for o in r.outcomes), timeout=30)
    reacted = {
        o.action.stream: o.action.text for r in reports for o in r.outcomes if o.action.kind == "react"
    }
    assert "rename work.txt to notes.txt" in reacted["s1"] and "@agent1" in reacted["s1"]
    assert "FAIL_GATE in s2/work.txt" in reacted["s2"]
    assert "s3" not in reacted
    after = {k: agent_file(project_common_dir(project), PHASE, f"s{k}").read_text() for k in (1, 2, 3)}
    common = project_common_dir(project)
    screens = {k: log_path(common, PHASE, f"s{k}") for k in (1, 2, 3)}
    retry_until(lambda: screens[1].read_text(errors="replace"), lambda t: "rename work.txt" in t)
    retry_until(lambda: screens[2].read_text(errors="replace"), lambda t: "FAIL_GATE in s2/work.txt" in t)
    assert after[3] == before[3]  # s3 heard nothing


def test_a_killed_autopilot_restarts_without_sending_anything_twice(
    tmp_path: Path, isolated_git: Path, socket: str
) -> None:
    tiny, project, pilot = start(
        tmp_path, socket, {1: scripted(), 2: scripted(), 3: scripted()}, max_working=3
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for point in ("1:planned", "1:acted", "2:acted"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "coditect_cli",
                "--root",
                str(tiny.root),
                "autopilot",
                "--once",
                "--json",
                "--socket",
                socket,
            ],
            env={**env, "CODITECT_TEST_AUTOPILOT_KILL": point},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == -9, done.stderr
    run_until(pilot, all_done)
    rows = journal(project)
    assert len({k for _, k, *_ in rows}) == len(rows)
    assert all(state == "done" for _, _, _, state, _ in rows)
    from coditect_cli.agents.events import read_events
    from coditect_cli.services.session import agent_file

    for k in (1, 2, 3):
        prompts = [
            e.prompt_sha
            for e in read_events(agent_file(project_common_dir(project), PHASE, f"s{k}"))
            if e.event == "UserPromptSubmit"
        ]
        assert len(prompts) == len(set(prompts)), f"s{k} received a message twice"
        assert prompts, f"s{k} received nothing"
