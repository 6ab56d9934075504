"""The ``coditect`` application: global options, command registration, and the one error handler."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from coditect_cli import __version__
from coditect_cli.cli import (
    codeowners_cmd,
    conflicts_cmd,
    day_cmd,
    demo,
    doctor_cmd,
    gating_cmd,
    manifest_cmds,
    pr_cmd,
    streams_cmd,
)
from coditect_cli.cli.context import AppContext
from coditect_cli.errors import CoditectError, ExitCode

app = typer.Typer(
    rich_markup_mode=None,
    name="coditect",
    help="Run several AI coding agents (or people) in parallel on one codebase, safely.\n\n"
    "Exit codes: 0 ok, 1 error, 2 usage or manifest error, 3 check failed (conflicts, ownership, gates), "
    "4 refused to lose work, 5 external system unavailable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"coditect {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every git and tmux command.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON envelope output for every command.")] = False,
    root: Annotated[
        Path | None, typer.Option("--root", help="Project root (default: found from the current directory).")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    app_ctx = ctx.find_object(AppContext)
    if app_ctx is None:
        app_ctx = AppContext()
        ctx.obj = app_ctx
    app_ctx.json = app_ctx.json or as_json
    app_ctx.verbose = verbose
    app_ctx.root = root
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(message)s", stream=sys.stderr)
        logging.getLogger("coditect").setLevel(logging.DEBUG)


manifest_cmds.register(app)
streams_cmd.register(app)
codeowners_cmd.register(app)
conflicts_cmd.register(app)
pr_cmd.register(app)
day_cmd.register(app)
gating_cmd.register(app)
demo.register(app)
doctor_cmd.register(app)


def _report(err: CoditectError, args: list[str], app_ctx: AppContext) -> int:
    if app_ctx.json or "--json" in args:
        from coditect_cli.render.envelope import dumps, envelope

        payload = envelope(app_ctx.command, problems=err.problems, exit_code=err.exit_code, error=err)
        sys.stdout.write(dumps(payload) + "\n")
    else:
        from coditect_cli.render.console import make_console, print_problems

        console = make_console(stderr=True)
        console.print(f"[bold red]error:[/] {err.message}", markup=True, highlight=False)
        print_problems(console, err.problems)
        if err.hint:
            console.print(f"hint: {err.hint}", style="dim")
    return int(err.exit_code)


def _framework_exit(exc: BaseException) -> int | None:
    """The exit code for click's (or typer's vendored click's) own exceptions; None for anything else.

    typer >= 0.29 vendors click with its own exception classes, older typer uses click's: match by name.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "Exit" in names:
        return int(getattr(exc, "exit_code", 0) or 0)
    if "Abort" in names:
        sys.stderr.write("interrupted\n")
        return 130
    if "ClickException" in names:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        return int(ExitCode.USAGE) if "UsageError" in names else int(getattr(exc, "exit_code", 1))
    return None


def hoist_global_options(args: list[str]) -> list[str]:
    """Move ``--root PATH`` and ``--verbose`` written after the command to the front, where click wants them.

    Everything after a ``--`` separator is left alone (a literal argument that looks like an option).
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in ("--verbose", "-v") or arg.startswith("--root="):
            front.append(arg)
        elif arg == "--root" and i + 1 < len(args):
            front.extend(args[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and map every outcome to a documented exit code."""
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    app_ctx = AppContext(json="--json" in args)
    try:
        result = typer.main.get_command(app).main(
            args=args, prog_name="coditect", standalone_mode=False, obj=app_ctx
        )
        code = result if isinstance(result, int) else 0
    except CoditectError as err:
        code = _report(err, args, app_ctx)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        code = 130
    except Exception as exc:  # the last line of defence: never a traceback for users
        framework = _framework_exit(exc)
        if framework is not None:
            code = framework
        else:
            if app_ctx.verbose:
                import traceback

                traceback.print_exc()
            from coditect_cli.adapters.proc import redact

            sys.stderr.write(
                f"internal error: {type(exc).__name__}: {redact(str(exc))}\n"
                "(run with --verbose for the traceback; please report it)\n"
            )
            code = int(ExitCode.ERROR)
    sys.exit(code)
