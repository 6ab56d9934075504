"""The day's commands: ``sync morning|evening``, ``task``, ``block``/``unblock`` and the ``status`` dashboard."""

from __future__ import annotations

from typing import Annotated

import typer

from coditect_cli.cli.context import JsonOpt, PhaseArg, use
from coditect_cli.domain.limits import MAX_DAY
from coditect_cli.domain.text import neutralise

DayOpt = Annotated[
    int | None, typer.Option("--day", help=f"The phase day, 1 to {MAX_DAY} (default: from the schedule).")
]
SocketOpt = Annotated[
    str | None,
    typer.Option("--socket", "-L", help="tmux socket name (default: the one the phase was launched on)."),
]
PhaseOpt = Annotated[str | None, typer.Option("--phase", help="Phase name (default: the only manifest).")]

sync = typer.Typer(rich_markup_mode=None, help="The daily coordination syncs.", no_args_is_help=True)
task = typer.Typer(
    rich_markup_mode=None,
    help="Tasks (the manifest's deliverables) and their progress.",
    no_args_is_help=True,
)


@sync.command("morning")
def morning(
    ctx: typer.Context,
    phase: PhaseArg = None,
    day: DayOpt = None,
    send: Annotated[bool, typer.Option("--send", help="Deliver each stream's section to its pane.")] = False,
    socket: SocketOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Yesterday's commits, today's deliverables, blockers, checkpoints and coordination actions."""
    from coditect_cli.render.day import print_sync
    from coditect_cli.services.sync import morning as run

    app = use(ctx, as_json)
    result = run(app.project(), phase, day=day, socket=socket, send=send)
    app.emit("sync morning", result.to_json(), lambda c: print_sync(c, result))


@sync.command("evening")
def evening(
    ctx: typer.Context,
    phase: PhaseArg = None,
    day: DayOpt = None,
    run_gates: Annotated[
        bool, typer.Option("--run-gates", help="Run each stream's gates in its worktree.")
    ] = False,
    socket: SocketOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Commits today, tests changed, gates, tomorrow's deliverables, risks and orchestrator actions."""
    from coditect_cli.render.day import print_sync
    from coditect_cli.services.sync import evening as run

    app = use(ctx, as_json)
    result = run(app.project(), phase, day=day, socket=socket, run_gates=run_gates)
    app.emit("sync evening", result.to_json(), lambda c: print_sync(c, result))


@task.command("list")
def task_list(
    ctx: typer.Context,
    stream: Annotated[str | None, typer.Argument(help="Only this stream's tasks.")] = None,
    phase: PhaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every task with its state; a blocked task names what it waits for."""
    from coditect_cli.render.day import print_tasks
    from coditect_cli.services.tasks import list_tasks

    app = use(ctx, as_json)
    tasks = list_tasks(app.project(), phase, stream)
    app.emit("task list", tasks.to_json(), lambda c: print_tasks(c, tasks))


def _set(ctx: typer.Context, stream: str, task_id: str, state: str, phase: str | None, as_json: bool) -> None:
    from coditect_cli.services.tasks import set_task

    app = use(ctx, as_json)
    change = set_task(app.project(), phase, stream, task_id, state)

    def human(c: object) -> None:
        typer.echo(neutralise(f"{change.stream}/{change.task}: {change.before} → {change.after}"))
        for note in change.notes:
            typer.echo(neutralise(f"note: {note}"))

    app.emit(f"task {'start' if state == 'in-progress' else state}", change.to_json(), human)


@task.command("start")
def task_start(
    ctx: typer.Context,
    stream: str,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    phase: PhaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that STREAM started TASK."""
    _set(ctx, stream, task_id, "in-progress", phase, as_json)


@task.command("done")
def task_done(
    ctx: typer.Context,
    stream: str,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    phase: PhaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record that STREAM finished TASK."""
    _set(ctx, stream, task_id, "done", phase, as_json)


def block(
    ctx: typer.Context,
    stream: str,
    why: str,
    on: Annotated[str | None, typer.Option("--on", help="The stream that can unblock it.")] = None,
    phase: PhaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Declare STREAM blocked, and why (reported by the syncs until `unblock`)."""
    from coditect_cli.services.tasks import block as run

    app = use(ctx, as_json)
    data = run(app.project(), phase, stream, why, on)
    app.emit(
        "block",
        data,
        lambda c: typer.echo(
            neutralise(f"{stream} is blocked: {data['reason']}" + (f" (on {on})" if on else ""))
        ),
    )


def unblock(ctx: typer.Context, stream: str, phase: PhaseOpt = None, as_json: JsonOpt = False) -> None:
    """Resolve STREAM's declared blockers."""
    from coditect_cli.services.tasks import unblock as run

    app = use(ctx, as_json)
    data = run(app.project(), phase, stream)
    app.emit("unblock", data, lambda c: typer.echo(f"{stream}: {data['resolved']} blocker(s) resolved"))


def status(
    ctx: typer.Context,
    phase: PhaseArg = None,
    day: DayOpt = None,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh in place until Ctrl-C.")] = False,
    interval: Annotated[
        float,
        typer.Option("--interval", min=0.1, max=3600.0, help="Seconds between refreshes with --watch."),
    ] = 2.0,
    socket: SocketOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The progress dashboard: per stream progress, PRs, branches, conflicts, agents; the checkpoint timeline."""
    from coditect_cli.render.day import dashboard_renderable, print_dashboard
    from coditect_cli.services.dashboard import dashboard

    app = use(ctx, as_json)
    project = app.project()
    board = dashboard(project, phase, day=day, socket=socket)
    if watch and not app.json:
        import time

        from rich.live import Live

        try:
            with Live(dashboard_renderable(board), console=app.console, refresh_per_second=4) as live:
                while True:
                    time.sleep(max(interval, 0.2))
                    live.update(dashboard_renderable(dashboard(project, phase, day=day, socket=socket)))
        except KeyboardInterrupt:
            return
    app.emit("status", board.to_json(), lambda c: print_dashboard(c, board))


def register(app: typer.Typer) -> None:
    """Add the day's commands to ``app``."""
    app.add_typer(sync, name="sync")
    app.add_typer(task, name="task")
    app.command("block")(block)
    app.command("unblock")(unblock)
    app.command("status")(status)
