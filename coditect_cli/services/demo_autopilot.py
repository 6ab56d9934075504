"""``coditect demo --autopilot``: the sandbox's phase driven by the autopilot, unattended and offline.

The same sandbox as ``coditect demo``; the streams' panes run the scripted agent in its interactive mode
(``--serve``: it works from the messages typed into its pane and reports its turns like Claude Code's
hooks). The autopilot dispatches every task in dependency order, verifies each one, opens the PRs, runs the
checkpoints in order once their PRs are ready, and lands the phase (``merge-phase --land``). The demo plays
the reviewers: each pass, every code owner a PR still needs approves it.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.errors import ExitCode, UnavailableError
from coditect_cli.project import Project
from coditect_cli.services.demo import (
    PHASE,
    DemoResult,
    Stage,
    _stage_setup,
    _stage_status,
    _stage_validate,
    _stop_previous_session,
    demo_socket,
    example_manifest,
)

if TYPE_CHECKING:
    from rich.console import Console

    from coditect_cli.cli.context import AppContext
    from coditect_cli.services.autopilot import PassReport

LAST_DAY = 12  # every checkpoint of the example manifest is due
TIMEOUT = 600.0


@dataclass
class AutopilotDemoResult(DemoResult):
    """The demo's result, summarised from the autopilot's journal."""

    def summary(self) -> list[str]:
        by_key = {stage.key: stage.data for stage in self.stages}
        run = by_key.get("autopilot") or {}
        lines = [
            f"autopilot: {run.get('passes', 0)} passes in {run.get('seconds', 0)} s, "
            f"{len(run.get('dispatched', []))} tasks dispatched, {run.get('verified', 0)} verified done, "
            f"{run.get('sent_back', 0)} sent back as not done, {run.get('reactions', 0)} reaction(s)",
            f"tasks done: {run.get('tasks_done', 0)}/{run.get('tasks', 0)}; approvals given by the demo's reviewers: "
            f"{run.get('approvals', 0)}",
        ]
        lines += [f"checkpoint {c['checkpoint']}: {c['outcome']}" for c in run.get("checkpoints", [])]
        if run.get("merge_phase"):
            lines.append(f"merge-phase --land: {run['merge_phase']}")
        if run.get("unfinished"):
            lines.append(f"not finished: {run['unfinished']}")
        return lines


def _approve_all(project: Project) -> int:
    """Every code owner a PR still needs approves it (the reviewers' part, played by the demo)."""
    from coditect_cli.errors import CoditectError
    from coditect_cli.services import prs, reviews

    given = 0
    for view in prs.list_prs(project, PHASE).rows:
        if view.pr is None or view.pr.state != "open" or view.stream is None:
            continue
        for need in view.needs:
            if need.state == "approved":
                continue
            try:
                reviews.review(
                    project, PHASE, view.stream, owner=need.owner, state="approved", repo=view.repo
                )
                given += 1
            except CoditectError:
                continue
    return given


def _stage_autopilot(project: Project) -> Stage:
    from coditect_cli.agents import scripted_agent_template
    from coditect_cli.services.autopilot import Autopilot
    from coditect_cli.services.autopilot_agents import TmuxAgents
    from coditect_cli.services.launch import launch

    socket = demo_socket(project.root)
    launch(project, PHASE, attach=False, agent=scripted_agent_template("--serve"), socket=socket, day=1)
    pilot = Autopilot(project, PHASE, TmuxAgents(project, socket), socket=socket, land=True, day=LAST_DAY)
    started = time.monotonic()
    reports: list[PassReport] = []
    approvals = 0
    landed = False
    while time.monotonic() - started < TIMEOUT and not landed:
        report = pilot.run_pass()
        reports.append(report)
        landed = any(o.action.kind == "merge-phase" and o.ok for o in report.outcomes)
        approvals += _approve_all(project)
        if not report.outcomes:
            time.sleep(0.2)
    outcomes = [o for r in reports for o in (*r.recovered, *r.outcomes)]
    last = reports[-1]
    data: dict[str, Any] = {
        "passes": len(reports),
        "seconds": round(time.monotonic() - started, 1),
        "dispatched": [o.action.task for o in outcomes if o.action.kind == "dispatch"],
        "verified": sum(1 for o in outcomes if o.action.kind == "verify" and "verified done" in o.outcome),
        "sent_back": sum(1 for o in outcomes if o.action.kind == "verify" and "not done" in o.outcome),
        "reactions": sum(1 for o in outcomes if o.action.kind in {"react", "notify", "escalate"}),
        "checkpoints": [
            {"checkpoint": o.action.detail.get("checkpoint"), "outcome": o.outcome}
            for o in outcomes
            if o.action.kind == "checkpoint"
        ],
        "merge_phase": next((o.outcome for o in outcomes if o.action.kind == "merge-phase"), None),
        "tasks": len(last.tasks) if last.tasks else 0,
        "tasks_done": sum(1 for s in last.tasks.values() if s == "done"),
        "approvals": approvals,
        "socket": socket,
        "actions": [o.to_json() for o in outcomes],
        "unfinished": None if landed else f"the phase did not land within {TIMEOUT:g} s",
    }

    def show(console: Console) -> None:
        for o in outcomes:
            if o.action.kind in {"note"}:
                continue
            who = f"{o.action.stream}: " if o.action.stream else ""
            console.print(f"  {o.action.kind:<11} {who}{o.outcome[:150]}", markup=False, highlight=False)
        console.print(f"[dim]attach with: cd {project.root} && coditect streams attach --socket {socket}[/]")

    return Stage("autopilot", "coditect autopilot --land (scripted agents, the demo reviews)", data, show)


def run_autopilot_demo(directory: Path, app: AppContext) -> DemoResult:
    """Build (or rebuild) the sandbox in ``directory`` and let the autopilot run its phase."""
    from coditect_cli.sandbox import build_sandbox

    if shutil.which("tmux") is None:
        raise UnavailableError(
            "the autopilot demo needs tmux (its agents work in panes)",
            hint="install tmux, or run `coditect demo`",
        )
    _stop_previous_session(directory)
    sandbox = build_sandbox(directory, example_manifest())
    project = Project(sandbox.root)
    result = AutopilotDemoResult(sandbox)
    for stage in (_stage_validate, _stage_setup, _stage_autopilot, _stage_status(LAST_DAY)):
        result.stages.append(stage(project))
    run = result.stages[2].data
    if run.get("unfinished"):
        result.exit_code = ExitCode.ERROR
    return result
