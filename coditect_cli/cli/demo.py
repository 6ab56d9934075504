"""``coditect demo``: build the local sandbox and run the flow in it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coditect_cli.cli.context import JsonOpt, use


def demo(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to build the sandbox (empty, or a previous sandbox).")
    ] = Path("coditect-demo"),
    autopilot: Annotated[
        bool,
        typer.Option("--autopilot", help="Let the autopilot drive the phase (scripted agents, needs tmux)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build the local sandbox (bare origins, a superproject with 3 submodules) and run the flow in it."""
    from coditect_cli.services import demo as svc

    app = use(ctx, as_json)
    if autopilot:
        from coditect_cli.services.demo_autopilot import run_autopilot_demo

        result = run_autopilot_demo(directory.resolve(), app)
    else:
        result = svc.run_demo(directory.resolve(), app)
    app.emit("demo", result.data(), result.print, exit_code=result.exit_code)


def register(app: typer.Typer) -> None:
    """Add the demo command to ``app``."""
    app.command()(demo)
