"""``init``, ``validate``, ``plan`` and ``schema``: working with the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from coditect_cli.cli.context import JsonOpt, PhaseArg, use
from coditect_cli.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console


def init(
    ctx: typer.Context,
    phase: Annotated[str, typer.Argument(help="Name of the new phase.")] = "phase-1",
    as_json: JsonOpt = False,
) -> None:
    """Write a commented starter manifest workstreams/PHASE.yaml (never overwrites)."""
    from coditect_cli.services import manifest as svc

    app = use(ctx, as_json)
    project = app.project()
    path = svc.init(project, phase)
    schema = project.workstreams / "schema.json"
    if not schema.exists():
        schema.write_text(svc.schema_text(), encoding="utf-8")
    shown = project.display(path)
    app.emit(
        "init",
        {"phase": phase, "manifest": shown},
        lambda c: c.print(f"wrote {shown}; edit it, then run `coditect validate {phase}`"),
    )


def validate(ctx: typer.Context, phase: PhaseArg = None, as_json: JsonOpt = False) -> None:
    """Check the manifest: schema, references, branch names, ownership overlap, cycles, schedule."""
    from coditect_cli.render.manifest import print_validation, validation_data
    from coditect_cli.services import manifest as svc

    app = use(ctx, as_json)
    report = svc.check(app.project(), phase)
    app.emit(
        "validate",
        validation_data(report),
        lambda c: print_validation(c, report),
        problems=report.problems,
        exit_code=ExitCode.OK if report.ok else ExitCode.USAGE,
    )


def plan(
    ctx: typer.Context,
    phase: PhaseArg = None,
    no_push: Annotated[bool, typer.Option("--no-push", help="Plan without pushing to origin.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Print every step `streams setup` would take, changing nothing."""
    from coditect_cli.render.console import print_problems
    from coditect_cli.render.manifest import plan_data, print_plan
    from coditect_cli.services import manifest as svc

    app = use(ctx, as_json)
    checked, the_plan = svc.plan(app.project(), phase, push=not no_push)

    def human(c: Console) -> None:
        print_problems(c, checked.report.warnings)
        print_plan(c, the_plan)

    app.emit("plan", plan_data(the_plan), human, problems=checked.report.warnings)


def schema(
    ctx: typer.Context,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: workstreams/schema.json).")
    ] = None,
    stdout: Annotated[bool, typer.Option("--stdout", help="Print the schema instead of writing it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write the manifest's JSON Schema (workstreams/schema.json) for editors."""
    from coditect_cli.services import manifest as svc

    app = use(ctx, as_json)
    text = svc.schema_text()
    if stdout:
        typer.echo(text, nl=False)
        return
    project = app.project()
    target = output or project.workstreams / "schema.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    changed = not target.exists() or target.read_text(encoding="utf-8") != text
    if changed:
        target.write_text(text, encoding="utf-8")
    shown = project.display(target)
    app.emit(
        "schema",
        {"path": shown, "changed": changed},
        lambda c: c.print(f"{'wrote' if changed else 'unchanged:'} {shown}"),
    )


def register(app: typer.Typer) -> None:
    """Add these commands to ``app``."""
    app.command()(init)
    app.command()(validate)
    app.command()(plan)
    app.command()(schema)
