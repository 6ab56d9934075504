"""``doctor``: check the machine and the project (manifests, repositories, worktrees, store, forge, agents)."""

from __future__ import annotations

from typing import Annotated

import typer

from coditect_cli.cli.context import JsonOpt, use
from coditect_cli.errors import ExitCode

DoctorPhaseArg = Annotated[
    str | None,
    typer.Argument(help="Phase to check (workstreams/<PHASE>.yaml); default: every manifest there."),
]


def doctor(ctx: typer.Context, phase: DoctorPhaseArg = None, as_json: JsonOpt = False) -> None:
    """Health check of this machine and this project: ok, warn or fail per check, and what to do.

    Read-only and offline: nothing is changed, fetched or written. Outside a project only the machine is
    checked. Exit 3 when any check fails; 0 otherwise (warnings included).
    """
    from coditect_cli.render.doctor import doctor_data, print_doctor
    from coditect_cli.services import doctor as svc

    app = use(ctx, as_json)
    report = svc.diagnose(app.project(), phase)
    app.emit(
        "doctor",
        doctor_data(report),
        lambda c: print_doctor(c, report),
        problems=report.problems(),
        exit_code=ExitCode.CHECK_FAILED if report.failed else ExitCode.OK,
    )


def register(app: typer.Typer) -> None:
    """Add the ``doctor`` command to ``app``."""
    app.command()(doctor)
