"""``coditect codeowners generate|check``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from coditect_cli.cli.context import JsonOpt, PhaseArg, use
from coditect_cli.errors import ExitCode

codeowners = typer.Typer(
    rich_markup_mode=None,
    help="Generate CODEOWNERS per repository and check branches against ownership.",
    no_args_is_help=True,
)


@codeowners.command("generate")
def generate(
    ctx: typer.Context,
    phase: PhaseArg = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write DIR/<repo>/CODEOWNERS instead of .github/CODEOWNERS in place."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write .github/CODEOWNERS in each repository, patterns relative to that repository's root."""
    from coditect_cli.services.codeowners import write_files

    app = use(ctx, as_json)
    _, written = write_files(app.project(), phase, output)

    def human(c: object) -> None:
        for w in written:
            typer.echo(f"{'wrote    ' if w.changed else 'unchanged'} {w.path}  ({w.repo})")

    app.emit(
        "codeowners generate",
        {"files": [{"repo": w.repo, "path": w.path, "changed": w.changed} for w in written]},
        human,
    )


@codeowners.command("check")
def check(ctx: typer.Context, phase: PhaseArg = None, as_json: JsonOpt = False) -> None:
    """Files each feature branch changed since the integration branch outside its stream's ownership."""
    from coditect_cli.render.codeowners import print_ownership
    from coditect_cli.services.codeowners import check as run_check

    app = use(ctx, as_json)
    checked, report = run_check(app.project(), phase)
    manifest = checked.loaded.manifest
    app.emit(
        "codeowners check",
        report.to_json(manifest),
        lambda c: print_ownership(c, report, manifest),
        exit_code=ExitCode.CHECK_FAILED if report.violations else ExitCode.OK,
    )


def register(app: typer.Typer) -> None:
    """Add the ``codeowners`` group to ``app``."""
    app.add_typer(codeowners, name="codeowners")
