"""The ``coditect`` application: global options, command registration, and the one error handler."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from coditect_cli import __version__
from coditect_cli.cli import codeowners_cmd, conflicts_cmd, demo, manifest_cmds, streams_cmd
from coditect_cli.cli.context import AppContext
from coditect_cli.errors import CoditectError, ExitCode

app = typer.Typer(
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
    ctx.obj = AppContext(json=as_json, verbose=verbose, root=root)
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(message)s", stream=sys.stderr)
        logging.getLogger("coditect").setLevel(logging.DEBUG)


manifest_cmds.register(app)
streams_cmd.register(app)
codeowners_cmd.register(app)
conflicts_cmd.register(app)
demo.register(app)


def _command_name(args: list[str]) -> str:
    words = [a for a in args if not a.startswith("-")]
    return " ".join(words[:2]) if words else "coditect"


def _report(err: CoditectError, args: list[str]) -> int:
    if "--json" in args:
        from coditect_cli.render.envelope import dumps, envelope

        payload = envelope(_command_name(args), problems=err.problems, exit_code=err.exit_code, error=err)
        sys.stdout.write(dumps(payload) + "\n")
    else:
        from coditect_cli.render.console import make_console, print_problems

        console = make_console(stderr=True)
        console.print(f"[bold red]error:[/] {err.message}", markup=True, highlight=False)
        print_problems(console, err.problems)
        if err.hint:
            console.print(f"hint: {err.hint}", style="dim")
    return int(err.exit_code)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and map every outcome to a documented exit code."""
    import click

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = typer.main.get_command(app).main(args=args, prog_name="coditect", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except CoditectError as err:
        code = _report(err, args)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.stderr.write("interrupted\n")
        code = 130
    except click.ClickException as exc:
        exc.show()
        code = int(ExitCode.USAGE) if isinstance(exc, click.UsageError) else exc.exit_code
    except Exception as exc:  # the last line of defence: never a traceback for users
        if "--verbose" in args or "-v" in args:
            import traceback

            traceback.print_exc()
        from coditect_cli.adapters.proc import redact

        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {redact(str(exc))}\n(run with --verbose for the traceback; "
            "please report it)\n"
        )
        code = int(ExitCode.ERROR)
    sys.exit(code)
