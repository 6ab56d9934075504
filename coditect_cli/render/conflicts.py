"""Human output of ``conflicts``: one matrix per repository, then the conflicting pairs and their paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coditect_cli.domain.conflicts import INTEGRATION

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from coditect_cli.domain.conflicts import ConflictReport, PairOutcome, RepoReport

_REMOTE = "refs/remotes/"


def conflicts_data(report: ConflictReport) -> dict[str, Any]:
    """The ``data`` of conflicts' JSON envelope."""
    return report.to_json()


def cell(repo: RepoReport, a: str, b: str) -> str:
    """The matrix cell between lanes ``a`` and ``b``: ✓ clean, ✗ N conflicting paths, ? unknown branch,
    ! git could not merge them, — the diagonal."""
    if a == b:
        return "[dim]—[/]"
    outcome = repo.outcome(a, b)
    if outcome is None:
        return "[yellow]?[/]" if repo.is_unknown(a) or repo.is_unknown(b) else "[dim]·[/]"
    if outcome.error is not None:
        return "[magenta]![/]"
    if outcome.conflict:
        return f"[bold red]✗ {len(outcome.paths)}[/]"
    return "[green]✓[/]"


def matrix(repo: RepoReport) -> Table:
    """Streams on both axes plus an integration column."""
    from rich.table import Table

    title = f"{repo.repo} [dim]({repo.path})[/]"
    table = Table(title=title, title_justify="left")
    table.add_column("stream", style="bold", no_wrap=True)
    table.add_column("branch", style="dim", overflow="fold")
    for lane in repo.lanes:
        table.add_column(lane.label, justify="center")
    table.add_column(INTEGRATION, justify="center")
    for row in repo.lanes:
        branch = row.branch
        ref = repo.refs.get(branch)
        if ref is None:
            branch += " [yellow](missing)[/]"
        elif ref.startswith(_REMOTE):
            branch += " (origin)"
        cells = [cell(repo, row.label, col.label) for col in repo.all_lanes]
        table.add_row(row.label, branch, *cells)
    return table


def _pair_lines(repo: RepoReport, outcome: PairOutcome) -> list[str]:
    from rich.markup import escape

    head = (
        f"[bold red]✗[/] {repo.repo}: [bold]{outcome.a.label}[/] × [bold]{outcome.b.label}[/] "
        f"[dim]({outcome.a.branch} × {outcome.b.branch})[/] — {len(outcome.paths)} path(s)"
    )
    lines = [head]
    for path in outcome.paths:
        kinds = outcome.kinds.get(path, ())
        lines.append(f"    {escape(path)}" + (f" [dim]({', '.join(kinds)})[/]" if kinds else ""))
    return lines


def print_conflicts(console: Console, report: ConflictReport) -> None:
    """Matrices, then the conflicting pairs, then unknown branches and failed merges, then a verdict."""
    from rich.markup import escape

    if not report.repositories:
        console.print(f"{report.phase}: no feature branches to compare.")
        return
    for repo in report.repositories:
        console.print(matrix(repo))
    conflicting = [(r, o) for r in report.repositories for o in r.conflicts]
    if conflicting:
        console.print()
        console.print("[bold]Conflicting pairs[/]")
        for repo, outcome in conflicting:
            for line in _pair_lines(repo, outcome):
                console.print(line)
    if report.unknown_refs:
        console.print()
        for _repo, unknown in report.unknown_refs:
            console.print(f"[yellow]?[/] {escape(unknown.message)}")
    for repo_id, outcome in report.errors:
        console.print(
            f"[magenta]![/] {repo_id}: cannot merge {escape(outcome.a.branch)} and "
            f"{escape(outcome.b.branch)}: {escape(outcome.error or '')}"
        )
    console.print()
    checked = report.pairs
    if report.any_conflict:
        console.print(
            f"[red]✗[/] {report.phase}: {report.conflicts} of {checked} pair(s) would conflict "
            f"in {sum(1 for r in report.repositories if r.conflicts)} repository(ies)"
        )
    else:
        console.print(f"[green]✓[/] {report.phase}: {checked} pair(s) merge cleanly")
    if report.unknown_refs:
        console.print(
            f"[yellow]{len(report.unknown_refs)} branch(es) missing[/]; their pairs were not checked "
            "(run `coditect streams setup`)"
        )
