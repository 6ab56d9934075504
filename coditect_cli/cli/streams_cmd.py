"""``coditect streams ...``: set up and run the workstreams of a phase."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from coditect_cli.cli.context import DryRunOpt, JsonOpt, PhaseArg, use
from coditect_cli.domain.limits import MAX_DAY

if TYPE_CHECKING:
    from rich.console import Console

streams = typer.Typer(help="Set up and run the workstreams of a phase.", no_args_is_help=True)


@streams.command("setup")
def setup(
    ctx: typer.Context,
    phase: PhaseArg = None,
    no_push: Annotated[bool, typer.Option("--no-push", help="Do not push new branches to origin.")] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create branches, CODEOWNERS, worktrees and ownership guards in every repository; idempotent."""
    from coditect_cli.render.setup import print_setup, setup_data
    from coditect_cli.services.setup import setup as run_setup

    app = use(ctx, as_json)
    result = run_setup(app.project(), phase, push=not no_push, dry_run=dry_run)
    app.emit("streams setup", setup_data(result), lambda c: print_setup(c, result, detailed=app.verbose))


# ----------------------------------------------------------------------------------------------- tmux

SocketOpt = Annotated[
    str | None,
    typer.Option(
        "--socket",
        "-L",
        envvar="CODITECT_TMUX_SOCKET",
        help="tmux socket name (tmux -L); default: the one the phase was launched on, else the default server.",
        show_envvar=True,
    ),
]


@streams.command("launch")
def launch(
    ctx: typer.Context,
    phase: PhaseArg = None,
    attach: Annotated[
        bool | None,
        typer.Option(
            "--attach/--no-attach", help="Attach when done (default: only when stdout is a terminal)."
        ),
    ] = None,
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent",
            metavar="TEMPLATE",
            help="Run this in every pane instead of each stream's `run:` (shell, claude, or a command with "
            "{prompt_file} {stream} {worktree}).",
        ),
    ] = None,
    day: Annotated[
        int | None,
        typer.Option(
            "--day", min=1, max=MAX_DAY, help="Phase day for the prompts (default: from the schedule)."
        ),
    ] = None,
    socket: SocketOpt = None,
    no_push: Annotated[bool, typer.Option("--no-push", help="Set up without pushing to origin.")] = False,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust",
            help="Consent: add the project to Claude Code's trusted projects (and approve ANTHROPIC_API_KEY) "
            "so no dialog stops its panes.",
        ),
    ] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Set up if needed, then start (or complete) the tmux session: one pane per stream, each running its agent."""
    from coditect_cli.render.streams import print_launch
    from coditect_cli.services import launch as svc

    app = use(ctx, as_json)
    result = svc.launch(
        app.project(),
        phase,
        attach=False,
        agent=agent,
        socket=socket,
        day=day,
        push=not no_push,
        dry_run=dry_run,
        trust=trust,
    )
    want = not dry_run and (attach if attach is not None else (sys.stdout.isatty() and not app.json))
    inside = svc.inside_tmux()
    if want and inside:
        svc.attach_session(result.socket, result.session, result)  # switch-client, or a note why not
    elif want and not sys.stdin.isatty():
        result.attach_note = "not attaching: stdin is not a terminal"
    app.emit("streams launch", result.to_json(), lambda c: print_launch(c, result))
    if any(h.error for h in result.hosts):
        from coditect_cli.errors import ExitCode

        raise typer.Exit(ExitCode.UNAVAILABLE)
    if want and not inside and not result.attach_note and result.panes:
        svc.attach_session(result.socket, result.session, result)  # exec tmux attach: does not return


@streams.command("status")
def status(
    ctx: typer.Context, phase: PhaseArg = None, socket: SocketOpt = None, as_json: JsonOpt = False
) -> None:
    """Every stream's pane (alive, or dead with its exit status; command; cwd; idle time) and worktrees."""
    from coditect_cli.services import streams as svc

    app = use(ctx, as_json)
    result = svc.status(app.project(), phase, socket=socket)

    def human(console: Console) -> None:
        from coditect_cli.render.streams import print_status  # rich's markup: only for the human form

        print_status(console, result)

    app.emit("streams status", result.to_json(), human)


@streams.command("attach")
def attach(
    ctx: typer.Context, phase: PhaseArg = None, socket: SocketOpt = None, as_json: JsonOpt = False
) -> None:
    """Attach this terminal to the phase's session (inside tmux: switch to it). With --json: say how, only."""
    from coditect_cli.errors import UsageError
    from coditect_cli.services import launch as svc

    app = use(ctx, as_json)
    target = svc.attach_target(app.project(), phase, socket=socket)
    if app.json:
        app.emit("streams attach", target, lambda c: None)
        return
    if not svc.inside_tmux() and not sys.stdin.isatty():
        raise UsageError(
            "attach needs a terminal (stdin is not one)", hint=f"run: {target['attach_command']}"
        )
    svc.attach_session(target["socket"], target["session"])


@streams.command("send")
def send(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="STREAM|all", help="A stream id, or `all`.")],
    text: Annotated[str, typer.Argument(help="Typed literally into the pane, then Enter.")],
    phase: Annotated[str | None, typer.Option("--phase", "-p", help="Phase (default: the only one).")] = None,
    socket: SocketOpt = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Type it even into an agent waiting for approval or at a dialog (its Enter answers it).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Deliver TEXT to a stream's agent (or every agent): typed in, Enter apart, arrival confirmed.

    An agent waiting for approval or stopped at a dialog is never typed into: the message is held and
    delivered when the agent is idle (`--force` types it anyway).
    """
    from coditect_cli.render.streams import print_send
    from coditect_cli.services import streams as svc

    app = use(ctx, as_json)
    result = svc.send(app.project(), phase, target, text, socket=socket, force=force)
    app.emit("streams send", result.to_json(), lambda c: print_send(c, result))


@streams.command("restart")
def restart(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(metavar="STREAM", help="The stream whose agent to start again.")],
    phase: Annotated[str | None, typer.Option("--phase", "-p", help="Phase (default: the only one).")] = None,
    socket: SocketOpt = None,
    force: Annotated[bool, typer.Option("--force", help="End the agent first if it still runs.")] = False,
    trust: Annotated[
        bool, typer.Option("--trust", help="Consent to add the project to Claude Code's trusted projects.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Start a stream's agent again in its pane, continuing its last conversation where the agent can."""
    from coditect_cli.services import launch as svc

    app = use(ctx, as_json)
    result = svc.restart(app.project(), phase, stream, socket=socket, force=force, trust=trust)
    app.emit("streams restart", result.to_json(), lambda c: c.print(f"{result.stream}: {result.note}"))


@streams.command("flush")
def flush(
    ctx: typer.Context,
    stream: Annotated[str | None, typer.Argument(metavar="[STREAM]", help="Only this stream.")] = None,
    phase: Annotated[str | None, typer.Option("--phase", "-p", help="Phase (default: the only one).")] = None,
    socket: SocketOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deliver the messages held for agents that are idle now (an agent's Stop hook runs this by itself)."""
    from coditect_cli.render.streams import print_deliveries
    from coditect_cli.services.agents import deliver_held

    app = use(ctx, as_json)
    done = deliver_held(app.project(), phase, stream, socket=socket)
    app.emit(
        "streams flush", {"deliveries": [d.to_json() for d in done]}, lambda c: print_deliveries(c, done)
    )


@streams.command("stop")
def stop(
    ctx: typer.Context,
    phase: PhaseArg = None,
    remove_worktrees: Annotated[
        bool,
        typer.Option(
            "--remove-worktrees",
            help="Also remove the stream worktrees (refused, exit 4, while any has uncommitted or unpushed work).",
        ),
    ] = False,
    socket: SocketOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """End the phase's tmux session (every agent); worktrees are kept unless --remove-worktrees."""
    from coditect_cli.render.streams import print_stop
    from coditect_cli.services import streams as svc

    app = use(ctx, as_json)
    result = svc.stop(app.project(), phase, socket=socket, remove_worktrees=remove_worktrees, dry_run=dry_run)
    app.emit("streams stop", result.to_json(), lambda c: print_stop(c, result))


@streams.command("move")
def move(
    ctx: typer.Context,
    stream: Annotated[str, typer.Argument(help="The stream to move.")],
    to: Annotated[str, typer.Option("--to", metavar="HOST", help="A host of `hosts:`, or `local`.")],
    phase: Annotated[str | None, typer.Option("--phase", "-p", help="Phase (default: the only one).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Move STREAM to another host once its work is on origin (refused, exit 4, while it is not)."""
    from coditect_cli.services import hosts as svc

    app = use(ctx, as_json)
    result = svc.move(app.project(), phase, stream, to)
    app.emit(
        "streams move",
        result.to_json(),
        lambda c: c.print(
            f"moved {result.stream} from {result.source} to {result.target} ({result.manifest} updated"
            + ("; its pane there was ended" if result.stopped else "")
            + f"); start it with `coditect streams launch {result.phase}`",
            highlight=False,
        ),
    )


def register(app: typer.Typer) -> None:
    """Add the ``streams`` group to ``app``."""
    app.add_typer(streams, name="streams")
