"""``coditect streams ...``: set up and run the workstreams of a phase."""

from __future__ import annotations

from typing import Annotated

import typer

from coditect_cli.cli.context import DryRunOpt, JsonOpt, PhaseArg, use

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


def register(app: typer.Typer) -> None:
    """Add the ``streams`` group to ``app``."""
    app.add_typer(streams, name="streams")
