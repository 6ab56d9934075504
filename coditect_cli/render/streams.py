"""Human output of ``streams launch|status|send|stop``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape

if TYPE_CHECKING:
    from rich.console import Console

    from coditect_cli.services.agents import Delivery
    from coditect_cli.services.launch import LaunchResult
    from coditect_cli.services.streams import SendResult, StatusResult, StopResult

_AGENT_STYLE = {
    "working": "green",
    "idle": "cyan",
    "starting": "dim",
    "waiting for approval": "bold yellow",
    "blocked on dialog": "bold red",
    "exited": "yellow",
    "missing": "red",
}
_STATE_STYLE = {
    "started": "green",
    "running": "green",
    "dead": "yellow",
    "missing": "red",
    "unavailable": "yellow",
    "unreachable": "red",
    "planned": "cyan",
}


def print_launch(console: Console, result: LaunchResult) -> None:
    """One line per pane, then how to attach."""
    if result.setup is not None and not result.dry_run:
        from coditect_cli.render.setup import print_setup

        print_setup(console, result.setup)
    if result.dry_run:
        if result.setup is not None:
            from coditect_cli.render.manifest import print_plan

            print_plan(console, result.setup.plan, title="Dry run: setup would take these steps first")
        console.print(f"Dry run: tmux session {result.session} ({result.layout}), day {result.day}")
        for line in result.commands:
            console.print(f"  tmux {line}", highlight=False, markup=False)
        if not result.commands:
            console.print("  nothing to create: every stream has its pane")
        return
    verb = "created" if result.created else "completed" if result.added else "already running"
    where = f" on socket {result.socket}" if result.socket else ""
    day = f"day {result.day}" if result.day >= 1 else "before day 1"
    console.print(
        f"streams launch {result.phase}: session [bold]{result.session}[/]{where} {verb} ({result.layout}, {day})"
    )
    for pane in result.panes:
        style = _STATE_STYLE.get(pane.state, "")
        state = (
            f"exit {pane.exit_status}"
            if pane.state == "dead" and pane.exit_status is not None
            else pane.state
        )
        console.print(
            f"  [{style}]{state:<8}[/] [bold]{pane.stream:<12}[/] {pane.cwd}  [dim]{pane.command}[/]",
            highlight=False,
        )
    dead = [p.stream for p in result.panes if p.state == "dead"]
    if dead:
        console.print(
            f"[dim]kept {len(dead)} pane(s) whose agent exited ({', '.join(dead)}); kill a pane and launch "
            "again to restart its agent[/]"
        )
    for host in result.hosts:
        if host.error:
            console.print(f"[red]host {host.host}: {host.error}[/]", highlight=False)
        else:
            started = ", ".join(host.started) or "nothing new"
            console.print(f"  host {host.host}: started {started}; running {len(host.running)}")
    if result.attach_note:
        console.print(f"[yellow]{result.attach_note}[/]")
    elif not result.attached:
        console.print(f"attach with: {result.attach_command}", highlight=False, markup=False)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def print_status(console: Console, result: StatusResult) -> None:
    """A table: one row per stream and worktree."""
    from rich.table import Table

    if result.panes_unavailable:
        console.print(f"[yellow]panes unavailable: {result.panes_unavailable}[/]; worktrees below")
    elif not result.exists:
        console.print(
            f"no tmux session {result.session}" + (f" on socket {result.socket}" if result.socket else "")
        )
    table = Table(title=f"streams {result.phase} — {result.session}", show_lines=False)
    for column in ("stream", "agent", "command", "idle", "repo", "branch", "changes", "unpushed"):
        table.add_column(column, justify="right" if column in {"idle", "changes", "unpushed"} else "left")
    for s in result.streams:
        if s.agent is not None:
            label = s.agent.label + (f" (+{s.agent.held} held)" if s.agent.held else "")
            pane = f"[{_AGENT_STYLE.get(s.agent.state, '')}]{escape(label)}[/]"
        elif s.state == "dead":
            how = f"exit {s.exit_status}" if s.exit_status is not None else f"signal {s.exit_signal}"
            pane = f"[yellow]{how}[/]"
        else:
            pane = f"[{_STATE_STYLE.get(s.state, '')}]{s.state}[/]"
        for i, w in enumerate(s.worktrees or [None]):
            first = i == 0
            table.add_row(
                (f"{s.stream} @{s.host}" if s.host else s.stream) if first else "",
                pane if first else "",
                (s.command or "-") if first else "",
                _age(s.idle_seconds) if first else "",
                w.repo if w else "-",
                (w.branch or "detached")
                if w and w.exists
                else f"on {s.host}"
                if s.host
                else "[red]no worktree[/]",
                str(len(w.changes)) if w and w.exists else "-",
                str(w.unpushed) if w and w.exists else "-",
            )
    console.print(table)
    for s in result.streams:
        if s.host_error:
            console.print(f"[red]{s.stream}: {escape(s.host_error)}[/]", highlight=False)
        if (
            s.agent is not None
            and s.agent.detail
            and s.agent.state in {"waiting for approval", "blocked on dialog"}
        ):
            console.print(f"[yellow]{s.stream}: {escape(s.agent.detail)}[/]", highlight=False)
        elif s.last_line:
            console.print(f"[dim]{s.stream}: {escape(s.last_line)}[/]", highlight=False)


def print_send(console: Console, result: SendResult) -> None:
    """What happened in each stream: delivered, queued, held (and why), skipped."""
    print_deliveries(console, result.deliveries)


def print_deliveries(console: Console, deliveries: list[Delivery]) -> None:
    """One line per stream's message."""
    if not deliveries:
        console.print("nothing to deliver")
    for d in deliveries:
        colour = {"delivered": "green", "queued": "cyan", "held": "yellow"}.get(d.status, "red")
        detail = f": {d.detail}" if d.detail else ""
        console.print(
            f"[{colour}]{d.status}[/] {d.stream} ({escape(d.state)}){escape(detail)}", highlight=False
        )


def print_stop(console: Console, result: StopResult) -> None:
    """What was ended and removed."""
    prefix = "Dry run: would end" if result.dry_run else "ended"
    if result.panes_unavailable:
        console.print(f"[yellow]session not checked: {result.panes_unavailable}[/]")
    elif result.killed:
        console.print(f"{prefix} session {result.session} ({result.panes} pane(s))")
    else:
        console.print(f"no session {result.session} was running")
    for host, outcome in result.hosts.items():
        console.print(f"host {host}: {outcome}", highlight=False)
    for host, paths in result.remote_removed.items():
        for remote_path in paths:
            verb = "would remove" if result.dry_run else "removed"
            console.print(f"{verb} worktree {remote_path} on host {host}", highlight=False)
    for path in result.removed:
        console.print(f"{'would remove' if result.dry_run else 'removed'} worktree {path}")
        ignored = result.ignored.get(path, ())
        if ignored:
            shown = ", ".join(ignored[:10]) + (f" and {len(ignored) - 10} more" if len(ignored) > 10 else "")
            verb = "would delete" if result.dry_run else "deleted"
            console.print(f"  {verb} with it {len(ignored)} git-ignored file(s)/folder(s): {shown}")
    if not result.removed:
        unsaved = [w for w in result.kept if w.exists and not w.clean]
        kept = sum(1 for w in result.kept if w.exists)
        if kept:
            console.print(
                f"kept {kept} worktree(s)" + (f"; {len(unsaved)} with unsaved work" if unsaved else "")
            )
