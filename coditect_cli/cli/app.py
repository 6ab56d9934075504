"""The ``coditect`` application: global options, command registration, and the one error handler."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from coditect_cli import __version__
from coditect_cli.cli import (
    agent_cmd,
    autopilot_cmd,
    codeowners_cmd,
    conflicts_cmd,
    day_cmd,
    demo,
    doctor_cmd,
    export_cmd,
    gating_cmd,
    manifest_cmds,
    pr_cmd,
    streams_cmd,
)
from coditect_cli.cli.coercion import cheap_coercion
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
agent_cmd.register(app)
autopilot_cmd.register(app)
export_cmd.register(app)


def _report(err: CoditectError, args: list[str], app_ctx: AppContext) -> int:
    if _wants_json(args, app_ctx):
        if not app_ctx.emitted:
            from coditect_cli.render.envelope import envelope, write_envelope

            write_envelope(
                envelope(
                    _command_name(args, app_ctx), problems=err.problems, exit_code=err.exit_code, error=err
                )
            )
    else:
        from coditect_cli.render.console import make_console, print_problems

        console = make_console(stderr=True)
        console.print(f"[bold red]error:[/] {err.message}", markup=True, highlight=False)
        print_problems(console, err.problems)
        if err.hint:
            console.print(f"hint: {err.hint}", style="dim")
    return int(err.exit_code)


def _wants_json(args: list[str], app_ctx: AppContext) -> bool:
    if app_ctx.json:
        return True
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options


def _click_command(args: list[str]) -> Any:
    """The click command that runs ``args``, with only the top-level command or group they name in it.

    typer builds a click command by resolving every parameter of every command it holds; building some 80
    commands to run one costs more than the rest of a short command's start-up. Arguments that name no
    command (``--help``, ``--version``, a typo that wants suggestions) get the whole tree.
    """
    import copy

    words = [a for a in _positionals(args) if not a.startswith("-")][:1]
    name = words[0] if words else None
    commands = [
        c
        for c in app.registered_commands
        if (c.name or typer.main.get_command_name(getattr(c.callback, "__name__", ""))) == name
    ]
    groups = [g for g in app.registered_groups if g.name == name]
    key = name if commands or groups else None
    built = _BUILT.get(key)
    if built is None:
        if key is None:
            built = typer.main.get_command(app)
        else:
            one = copy.copy(app)
            one.registered_commands = commands
            one.registered_groups = groups
            built = typer.main.get_command(one)
        _BUILT[key] = built
    return built


_BUILT: dict[str | None, Any] = {}
"""The click commands built so far, by top-level word (None: the whole tree). A built command keeps no state
of a run, so a process running several (a test, the warm server's workers, which inherit the server's) builds
each once."""


def prebuild(words: list[str]) -> None:
    """Build the click commands of ``words`` now (the warm server, before its workers fork)."""
    for word in words:
        _click_command([word])


def _positionals(args: list[str]) -> list[str]:
    """``args`` without the global ``--root PATH`` (whose value looks like a command word)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--root":
            skip = True
        else:
            out.append(arg)
    return out


def _command_name(args: list[str], app_ctx: AppContext) -> str:
    """The command the arguments name (``sync morning``), also when parsing them failed."""
    if app_ctx.command != "coditect":
        return app_ctx.command
    group: object = typer.main.get_command(app)
    words: list[str] = []
    for arg in _positionals(args):
        if arg.startswith("-"):
            continue
        commands = getattr(group, "commands", None)  # a click Group (typer may vendor click)
        if not isinstance(commands, dict) or arg not in commands:
            break
        words.append(arg)
        group = commands[arg]
    return " ".join(words) or "coditect"


def _fail(
    args: list[str], app_ctx: AppContext, code: str, message: str, exit_code: int, hint: str | None
) -> int:
    """Report a failure that is no CoditectError: one envelope under --json, else a line on stderr."""
    if _wants_json(args, app_ctx):
        if not app_ctx.emitted:
            from coditect_cli.render.envelope import error_envelope, write_envelope

            write_envelope(error_envelope(_command_name(args, app_ctx), code, message, exit_code, hint))
    else:
        sys.stderr.write(f"{message}\n" + (f"({hint})\n" if hint else ""))
    return exit_code


def _framework_exit(exc: BaseException, args: list[str], app_ctx: AppContext) -> int | None:
    """The exit code for click's (or typer's vendored click's) own exceptions; None for anything else.

    typer >= 0.29 vendors click with its own exception classes, older typer uses click's: match by name.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "Exit" in names:
        return int(getattr(exc, "exit_code", 0) or 0)
    if "Abort" in names:
        return _fail(args, app_ctx, "interrupted", "interrupted", 130, None)
    if "ClickException" in names:
        usage = "UsageError" in names
        exit_code = int(ExitCode.USAGE) if usage else int(getattr(exc, "exit_code", 1))
        if _wants_json(args, app_ctx):
            message = str(getattr(exc, "format_message", lambda: str(exc))())
            name = _command_name(args, app_ctx)
            hint = f"see `coditect {name} --help`" if name != "coditect" else "see `coditect --help`"
            return _fail(args, app_ctx, "usage" if usage else "error", message, exit_code, hint)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        return exit_code
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


def _tolerant_output() -> None:
    """Write characters the terminal's encoding lacks (``PYTHONIOENCODING=ascii``, ``LANG=C``) as
    replacements instead of crashing on them."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):
            # A closed or detached stream: there is nothing to print on anyway.
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="replace")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and map every outcome to a documented exit code."""
    _tolerant_output()
    cheap_coercion()
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    app_ctx = AppContext(json=_wants_json(args, AppContext()))
    try:
        result = _click_command(args).main(
            args=args, prog_name="coditect", standalone_mode=False, obj=app_ctx
        )
        code = result if isinstance(result, int) else 0
    except CoditectError as err:
        code = _report(err, args, app_ctx)
    except KeyboardInterrupt:
        code = _fail(args, app_ctx, "interrupted", "interrupted", 130, None)
    except Exception as exc:  # the last line of defence: never a traceback for users
        framework = _framework_exit(exc, args, app_ctx)
        if framework is not None:
            code = framework
        else:
            if app_ctx.verbose:
                import traceback

                traceback.print_exc()
            from coditect_cli.adapters.proc import redact
            from coditect_cli.domain.text import neutralise

            code = _fail(
                args,
                app_ctx,
                "internal",
                f"internal error: {type(exc).__name__}: {neutralise(redact(str(exc)))}",
                int(ExitCode.ERROR),
                "run with --verbose for the traceback; please report it",
            )
    sys.exit(code)
