"""``conflicts``: predicted textual conflicts between every pair of streams and each stream vs integration."""

from __future__ import annotations

from typing import Annotated

import typer

from coditect_cli.cli.context import JsonOpt, PhaseArg, use
from coditect_cli.errors import ExitCode

RemoteOpt = Annotated[
    bool,
    typer.Option(
        "--remote",
        help="Compare origin's branches (refs/remotes/origin) first; default: local branches, "
        "origin's only for a branch missing locally.",
    ),
]
AllOpt = Annotated[
    bool,
    typer.Option(
        "--all",
        help="Human output: print the full pair matrix of every repository; by default a repository with "
        "more than 12 streams gets a summary line and its conflicting pairs only.",
    ),
]


def conflicts(
    ctx: typer.Context,
    phase: PhaseArg = None,
    remote: RemoteOpt = False,
    show_all: AllOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Predict textual conflicts: every pair of stream branches, and each one vs the integration branch.

    Nothing is checked out or changed. Exit 3 when a conflict is predicted; 1 when a branch is missing
    (and nothing conflicts); 0 when every pair merges cleanly.
    """
    from coditect_cli.render.conflicts import conflicts_data, print_conflicts
    from coditect_cli.services import conflicts as svc

    app = use(ctx, as_json)
    report = svc.predict(app.project(), phase, refs="remote" if remote else "local")
    if report.any_conflict:
        code = ExitCode.CHECK_FAILED
    elif report.unknown_refs or report.errors:
        code = ExitCode.ERROR
    else:
        code = ExitCode.OK
    app.emit(
        "conflicts",
        conflicts_data(report),
        lambda c: print_conflicts(c, report, show_all),
        problems=report.problems(),
        exit_code=code,
    )


def register(app: typer.Typer) -> None:
    """Add the ``conflicts`` command to ``app``."""
    app.command()(conflicts)
