"""The autopilot dispatches to the built-in agent (``run: anthropic``) like any other agent: headless, one
``coditect agent run --task`` process per task against a fake Messages API on 127.0.0.1; its commits are
pushed for it, the task is verified done (commits, clean, pushed, own paths, gates) and its PR opened."""

from __future__ import annotations

from pathlib import Path

import agentkit
import pytest
from fakeanthropic.server import FakeAnthropic, Turn
from helpers import retry_until

from coditect_cli.project import Project
from coditect_cli.services.autopilot import Autopilot
from coditect_cli.services.autopilot_agents import TmuxAgents
from coditect_cli.services.setup import project_common_dir, setup
from coditect_cli.state.store import Store


def test_a_task_of_the_built_in_agent_is_run_headless_pushed_and_verified(
    tmp_path: Path, isolated_git: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = agentkit.build(tmp_path)
    origin = tmp_path / "origin.git"
    agentkit.git(tmp_path, "init", "-q", "--bare", str(origin))
    agentkit.git(proj.root, "remote", "add", "origin", str(origin))
    agentkit.git(proj.root, "push", "-q", "origin", "main", "develop")
    project = Project(proj.root)
    setup(project, "phase-1")  # pushes the phase's branches now that there is an origin
    with FakeAnthropic() as fake:
        fake.push(
            Turn.tool("write_file", "Writing the module.", path="s1/hello.py", content="print('hello')\n"),
            Turn.tool("git_commit", message="feat(s1): hello module"),
            Turn.text("The hello module is written and committed."),
        )
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        socket = f"coditect-headless-{tmp_path.name}"  # no tmux server: the built-in agent needs none
        pilot = Autopilot(project, "phase-1", TmuxAgents(project, socket), socket=socket, day=1)
        reports = []
        retry_until(
            lambda: reports.append(pilot.run_pass()) or reports[-1],
            lambda r: r.tasks.get("T1") == "done",
            timeout=120,
        )
        outcomes = [(o.action.kind, o.outcome) for r in reports for o in r.outcomes]
        assert any(kind == "dispatch" and "started headless" in out for kind, out in outcomes), outcomes
        assert any(
            kind == "verify" and "verified done" in out and "opened app#1" in out for kind, out in outcomes
        )
        assert len(fake.message_requests()) == 3
    branch = "feature/phase-1/s1/t1"
    assert agentkit.git(origin, "log", "-1", "--format=%s", branch) == "feat(s1): hello module"
    with Store.open(project_common_dir(project)) as store:
        rows = store.query("SELECT stream, task, attempt, state FROM autopilot_dispatches")
    assert rows == [("s1", "T1", 1, "done")]
