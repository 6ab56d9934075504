"""The context object every command receives: output mode, verbosity, where the project is."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from coditect_cli.errors import ExitCode, Problem
from coditect_cli.project import Project, find_project

if TYPE_CHECKING:
    from rich.console import Console

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON envelope on stdout.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the plan and change nothing.")]
PhaseArg = Annotated[
    str | None,
    typer.Argument(help="Phase name (workstreams/<PHASE>.yaml); defaults to the only manifest there."),
]


@dataclass
class AppContext:
    """Per-invocation settings, passed explicitly instead of kept in globals."""

    json: bool = False
    verbose: bool = False
    root: Path | None = None
    command: str = "coditect"
    emitted: bool = False  # the JSON envelope was printed: nothing else may be, even on a later error
    _console: Console | None = field(default=None, repr=False)

    @property
    def console(self) -> Console:
        if self._console is None:
            from coditect_cli.render.console import make_console

            self._console = make_console()
        return self._console

    def project(self) -> Project:
        """The project: ``--root`` when given, else found from the current directory."""
        return Project(self.root.resolve()) if self.root is not None else find_project()

    def emit(
        self,
        command: str,
        data: Any,
        human: Callable[[Console], None],
        *,
        problems: Iterable[Problem] = (),
        exit_code: ExitCode = ExitCode.OK,
    ) -> None:
        """Print a command's result (JSON envelope or human form) and end with ``exit_code``."""
        problems = tuple(problems)
        if self.json:
            from coditect_cli.render.envelope import envelope, write_envelope

            write_envelope(envelope(command, data=data, problems=problems, exit_code=exit_code))
            self.emitted = True
        else:
            human(self.console)
        if exit_code != ExitCode.OK:
            raise typer.Exit(int(exit_code))


def use(ctx: typer.Context, as_json: bool = False) -> AppContext:
    """The AppContext of this invocation, with a command-level ``--json`` folded in."""
    app_ctx = ctx.find_object(AppContext)
    if app_ctx is None:
        app_ctx = AppContext()
        ctx.obj = app_ctx
    if as_json:
        app_ctx.json = True
    app_ctx.command = (
        ctx.command_path.removeprefix(ctx.find_root().info_name or "coditect").strip() or "coditect"
    )
    return app_ctx
