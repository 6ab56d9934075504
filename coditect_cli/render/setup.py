"""Human output of ``streams setup``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coditect_cli.render.manifest import plan_data, print_plan

if TYPE_CHECKING:
    from rich.console import Console

    from coditect_cli.domain.plan import Step
    from coditect_cli.services.setup import SetupResult


def setup_data(result: SetupResult) -> dict[str, Any]:
    """The ``data`` of setup's JSON envelope."""
    data = plan_data(result.plan)
    data["dry_run"] = result.dry_run
    data["done"] = [s.to_json() for s in result.done]
    data["changed"] = bool(result.done)
    data["hosts"] = [h.to_json() for h in result.hosts]
    return data


def _summary(steps: list[Step]) -> str:
    from coditect_cli.domain.plan import (
        AddWorktree,
        CreateBranch,
        ExcludePath,
        InstallGuard,
        Push,
        SwitchWorktree,
        WriteCodeowners,
    )

    parts: list[str] = []
    branches = [s.branch for s in steps if isinstance(s, CreateBranch)]
    if branches:
        parts.append(f"{len(branches)} branch(es) created")
    parts += [
        s.describe().split(" and ")[0].replace("write", "wrote").replace("update", "updated")
        for s in steps
        if isinstance(s, WriteCodeowners)
    ]
    worktrees = sum(isinstance(s, AddWorktree | SwitchWorktree) for s in steps)
    if worktrees:
        parts.append(f"{worktrees} worktree(s)")
    guards = sum(isinstance(s, InstallGuard) for s in steps)
    if guards:
        parts.append(f"{guards} guard(s) installed")
    if any(isinstance(s, ExcludePath) for s in steps):
        parts.append("worktrees excluded from git status")
    pushed = sum(len(s.branches) for s in steps if isinstance(s, Push))
    if pushed:
        parts.append(f"{pushed} branch(es) pushed")
    return ", ".join(parts)


def print_setup(console: Console, result: SetupResult, *, detailed: bool = False) -> None:
    """What was done (or, with --dry-run, what would be): one line per repository, or every step."""
    if result.dry_run:
        print_plan(console, result.plan, title="Dry run: setup would take these steps")
        return
    for host in result.hosts:
        done = f"{len(host.done)} clone(s)/worktree(s) created" if host.done else "already set up"
        console.print(f"[green]✓[/] [bold]host {host.host}[/] {', '.join(host.streams)}: {done}")
    if not result.done:
        console.print(f"streams setup {result.plan.phase}: nothing to do — everything is already set up.")
        return
    if detailed:
        for i, step in enumerate(result.done, 1):
            console.print(f"[green]✓[/] [dim]{i:>2}[/] [bold]{step.repo}[/] {step.describe()}")
    else:
        from coditect_cli.domain.plan import steps_by_repo

        for repo, steps in steps_by_repo(result.done).items():
            console.print(f"[green]✓[/] [bold]{repo:<9}[/] {_summary(steps)}")
    console.print(f"streams setup {result.plan.phase}: {len(result.done)} step(s) done.")
