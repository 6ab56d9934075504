"""Human output of ``validate`` and ``plan``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coditect_cli.render.console import print_problems

if TYPE_CHECKING:
    from rich.console import Console

    from coditect_cli.domain.plan import Plan
    from coditect_cli.domain.validate import ValidationReport


def validation_data(report: ValidationReport) -> dict[str, Any]:
    """The ``data`` of validate's JSON envelope."""
    return {
        "phase": report.phase,
        "manifest": report.manifest,
        "valid": report.ok,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "streams": report.streams,
        "pairs": report.pairs,
        "tasks": report.tasks,
        "repositories": [
            {
                "id": r.id,
                "path": r.path,
                "tracked": r.tracked,
                "unowned": r.unowned,
                "streams": list(r.streams),
            }
            for r in report.repositories
        ],
    }


def print_validation(console: Console, report: ValidationReport) -> None:
    """Problems first, then a one-line verdict."""
    print_problems(console, report.problems)
    if report.ok:
        console.print(
            f"[green]✓[/] {report.manifest}: phase {report.phase} is valid — {report.streams} streams, "
            f"{report.pairs} stream/repository pairs, {report.tasks} tasks, "
            f"{len(report.repositories)} repositories checked"
            + (f", {len(report.warnings)} warning(s)" if report.warnings else "")
        )
    else:
        console.print(
            f"[red]✗[/] {report.manifest}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)"
        )


def plan_data(plan: Plan) -> dict[str, Any]:
    """The ``data`` of plan's JSON envelope."""
    return {
        "phase": plan.phase,
        "steps": [s.to_json() for s in plan.steps],
        "present": list(plan.present),
        "changes": len(plan.steps),
    }


def print_plan(console: Console, plan: Plan, *, title: str = "Plan") -> None:
    """The steps grouped by repository, numbered in execution order."""
    from rich.table import Table

    if plan.empty:
        console.print(f"{title} for {plan.phase}: nothing to do — everything is already set up.")
        return
    console.print(f"[bold]{title} for {plan.phase}: {len(plan.steps)} step(s)[/]")
    number = 0
    for repo, steps in plan.by_repo().items():
        console.print(f"[bold cyan]{repo}[/]")
        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", style="dim")
        grid.add_column(style="magenta", no_wrap=True)
        grid.add_column()
        for step in steps:
            number += 1
            grid.add_row(f"{number}", step.kind, step.describe())
        console.print(grid)
    if plan.present:
        console.print(f"[dim]{len(plan.present)} item(s) already in place.[/]")
