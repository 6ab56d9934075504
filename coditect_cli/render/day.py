"""Human output of ``sync``, ``task``, ``block`` and the ``status`` dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.text import Text

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from coditect_cli.services.dashboard import Dashboard
    from coditect_cli.services.sync import SyncResult
    from coditect_cli.services.tasks import TaskList

_CHECKPOINT_MARK = {"passed": "✅", "failed": "❌", "due": "🎯", "overdue": "⚠️ ", "upcoming": "·"}


def bar(done: int, total: int, width: int = 10) -> str:
    """``[████░░░░░░]`` like the guide's dashboard."""
    filled = round(width * done / total) if total else 0
    return "[" + "█" * filled + "░" * (width - filled) + "]"


def print_sync(console: Console, result: SyncResult) -> None:
    """One panel per stream, then the actions and checkpoints."""
    from rich.panel import Panel
    from rich.text import Text

    from coditect_cli.domain.sync import section_lines

    r = result.report
    kind = "Daily Sync" if r.kind == "morning" else "End of Day Review"
    console.rule(f"{kind} — day {r.day} of {r.days} ({r.date}) · {r.phase}")
    for s in r.streams:
        lines = section_lines(r, s)
        style = "red" if s.blockers else "green"
        console.print(
            Panel(
                Text("\n".join(lines[1:])),  # commit subjects and task titles are not rich markup
                title=Text(lines[0].removeprefix("## ")),
                title_align="left",
                border_style=style,
            ),
            soft_wrap=False,  # a non-terminal console soft-wraps: panels would crop their lines instead
        )
    title = "Coordination actions" if r.kind == "morning" else "Orchestrator actions"
    console.print(f"[bold]{title}[/]")
    for i, a in enumerate(r.actions, 1):
        console.print(f"  {i}. {a.text}", markup=False)
    if not r.actions:
        console.print("  none")
    cps = [("today", c) for c in r.checkpoints_today] + [("tomorrow", c) for c in r.checkpoints_tomorrow]
    for when, c in cps:
        console.print(
            f"[bold]Checkpoint {c.id}[/] {when} (day {c.day}): {escape(c.title)} — {', '.join(c.streams)}"
        )
    for note in result.notes:
        console.print(f"[dim]note: {note}[/]")
    if result.sent:
        console.print(f"sent each stream's section to its pane: {', '.join(result.sent)}")
    console.print(f"[dim]report: {result.shown_path}[/]")


def print_tasks(console: Console, tasks: TaskList) -> None:
    """Tasks with state; blocked ones name what they wait for."""
    from rich.table import Table

    table = Table(title=f"tasks of {tasks.phase}", title_justify="left")
    for col in ("stream", "task", "days", "state", "title"):
        table.add_column(col)
    for v in tasks.views:
        state = "blocked" if v.blocked else v.state
        style = {"done": "green", "in-progress": "cyan", "blocked": "red"}.get(state, "")
        waits = f" (waits for {', '.join(v.waiting_for)})" if v.blocked else ""
        table.add_row(
            v.stream,
            v.task.id,
            str(v.task.days),
            f"[{style}]{state}[/]{escape(waits)}" if style else state,
            Text(v.task.title),  # user text, not markup
        )
    console.print(table)
    done = sum(v.state == "done" for v in tasks.views)
    console.print(f"{done}/{len(tasks.views)} done")


def dashboard_renderable(d: Dashboard) -> RenderableType:
    """The dashboard as one rich renderable (printed once, or refreshed by --watch), like the guide's:
    ``Terminal 1 (Infra): [████████░░] 80% complete (Day 8/10)`` and a detail line per stream."""
    from rich.console import Group
    from rich.text import Text

    slack = f" (+{d.day - d.days} into the slack)" if d.day > d.days else ""
    head = Text(f"{d.title or d.phase} — day {d.day} of {d.days}{slack}", style="bold")  # Text: no markup
    lines: list[RenderableType] = [head]
    for r in d.rows:
        blocked = f", [red]{len(r.blocked_tasks)} blocked[/]" if r.blocked_tasks else ""
        lines.append(
            Text.from_markup(
                f"Terminal {r.terminal} ({escape(r.name)}): {bar(r.done, r.total)} {r.percent}% complete "
                f"({r.done}/{r.total} tasks{blocked})"
            )
        )
        pr = f"PR {r.pr_state} ({', '.join(r.prs)})" if r.prs else "no PR"
        conflicts = f"[red]{r.conflicts} conflict(s)[/]" if r.conflicts else "no conflicts"
        colour = {"running": "green", "not launched": "dim", "exited 0": "yellow"}.get(r.agent, "red")
        spent = f" [dim]· {r.tokens:,} tokens, ${r.cost_usd:.2f}[/]" if r.tokens else ""
        lines.append(
            Text.from_markup(
                f"    [dim]{escape(pr)} · +{r.ahead}/-{r.behind} vs integration ·[/] {conflicts} [dim]· agent[/] "
                f"[{colour}]{r.agent}[/]{spent}"
            )
        )
    overall = Text(
        f"Overall: {bar(d.done, d.total)} {d.percent}% complete ({d.done}/{d.total} tasks) · "
        f"days elapsed {min(d.day, d.days)}/{d.days}"
        + (f" · agents ${d.cost_usd:.2f}" if any(r.tokens for r in d.rows) else ""),
        style="bold",
    )
    timeline = Text("Checkpoint timeline\n", style="bold")
    for c in d.checkpoints:
        timeline.append(
            f"  {_CHECKPOINT_MARK[c.state]} Day {c.day} - Checkpoint {c.id}: {c.title} ({c.state})\n",
            style="red" if c.state in ("overdue", "failed") else "",
        )
    parts: list[RenderableType] = [*lines, overall, timeline]
    parts += [Text(f"note: {n}", style="dim") for n in d.notes]
    return Group(*parts)


def print_dashboard(console: Console, d: Dashboard) -> None:
    console.print(dashboard_renderable(d), soft_wrap=False)
