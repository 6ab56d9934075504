"""Human output of ``streams setup``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coditect_cli.render.manifest import plan_data, print_plan

if TYPE_CHECKING:
    from rich.console import Console

    from coditect_cli.services.setup import SetupResult


def setup_data(result: SetupResult) -> dict[str, Any]:
    """The ``data`` of setup's JSON envelope."""
    data = plan_data(result.plan)
    data["dry_run"] = result.dry_run
    data["done"] = [s.to_json() for s in result.done]
    data["changed"] = bool(result.done)
    return data


def print_setup(console: Console, result: SetupResult) -> None:
    """What was done (or, with --dry-run, what would be)."""
    if result.dry_run:
        print_plan(console, result.plan, title="Dry run: setup would take these steps")
        return
    if not result.done:
        console.print(f"streams setup {result.plan.phase}: nothing to do — everything is already set up.")
        return
    for i, step in enumerate(result.done, 1):
        console.print(f"[green]✓[/] [dim]{i:>2}[/] [bold]{step.repo}[/] {step.describe()}")
    console.print(f"streams setup {result.plan.phase}: {len(result.done)} step(s) done.")
