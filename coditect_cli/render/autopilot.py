"""Rendering of autopilot passes: the live dashboard and the one-pass summary."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from coditect_cli.services.autopilot import PassReport

_STATE_STYLE = {
    "working": "green",
    "starting": "green",
    "idle": "cyan",
    "waiting for approval": "yellow",
    "blocked on dialog": "red",
    "exited": "dim",
    "missing": "dim",
    "unknown": "dim",
}


def dashboard(report: PassReport) -> RenderableType:
    """One pass as a table of streams (agent, task, backoff) and the actions it took."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    working = sum(1 for a in report.agents.values() if a.state in {"working", "starting"})
    title = (
        f"coditect autopilot - {report.phase} - {time.strftime('%H:%M:%S', time.localtime(report.time))} - "
        f"{working}/{report.max_working} working" + (" - dry run" if report.dry_run else "")
    )
    table = Table(title=title, title_justify="left", expand=False)
    for col in ("stream", "agent", "task", "attempt", "note"):
        table.add_column(col)
    for stream, agent in report.agents.items():
        d = report.dispatches.get(stream)
        note = agent.detail[:60] if agent.detail else ""
        until = report.backoff.get(stream)
        if until:
            note = f"backing off {max(0, int(until - report.time))} s" + (f"; {note}" if note else "")
        table.add_row(
            stream,
            Text(agent.state, style=_STATE_STYLE.get(agent.state, "")),
            d.task if d else "",
            str(d.attempt) if d else "",
            note,
        )
    done = sum(1 for s in report.tasks.values() if s == "done")
    lines = [Text(f"tasks: {done}/{len(report.tasks) or 0} recorded done; blocked: {len(report.blocked)}")]
    for task, why in report.blocked.items():
        lines.append(Text(f"  blocked [{task}]: {why[:160]}", style="red"))
    for outcome in [*report.recovered, *report.outcomes]:
        a = outcome.action
        who = f"{a.stream}: " if a.stream else ""
        style = "" if outcome.ok else "red"
        lines.append(Text(f"  {a.kind:<11} {who}{outcome.outcome[:160]}", style=style))
    for note in report.notes:
        lines.append(Text(f"  note: {note}", style="dim"))
    return Group(table, *lines)


def print_pass(console: Console, report: PassReport) -> None:
    """Print one pass (``--once``, ``--dry-run``)."""
    console.print(dashboard(report))
