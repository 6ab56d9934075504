"""Human output of ``conflicts``: one matrix per repository, then the conflicting pairs and their paths.

Linear in what it shows: a cell is a dictionary look-up, and a repository with more than
:data:`MATRIX_MAX` streams gets a one-line summary instead of its matrix (the conflicting pairs follow, as
for every repository); ``--all`` prints every matrix whatever its size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coditect_cli.domain.conflicts import INTEGRATION

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from coditect_cli.domain.conflicts import ConflictReport, PairOutcome, RepoReport

_REMOTE = "refs/remotes/"
MATRIX_MAX = 12  # streams in a repository above which its matrix is summarised unless --all


def conflicts_data(report: ConflictReport) -> dict[str, Any]:
    """The ``data`` of conflicts' JSON envelope."""
    return report.to_json()


def cell(a: str, b: str, outcomes: dict[frozenset[str], PairOutcome], unknown: set[str]) -> str:
    """The matrix cell between lanes ``a`` and ``b``: ✓ clean, ✗ N conflicting paths, ? unknown branch,
    ! git could not merge them, — the diagonal. ``outcomes`` and ``unknown`` come from :func:`_index`, so a
    cell is a look-up, not a scan of the repository's pairs."""
    if a == b:
        return "[dim]—[/]"
    outcome = outcomes.get(frozenset((a, b)))
    if outcome is None:
        return "[yellow]?[/]" if a in unknown or b in unknown else "[dim]·[/]"
    if outcome.error is not None:
        return "[magenta]![/]"
    if outcome.conflict:
        return f"[bold red]✗ {len(outcome.paths)}[/]"
    return "[green]✓[/]"


def _index(repo: RepoReport) -> tuple[dict[frozenset[str], PairOutcome], set[str]]:
    """The repository's outcomes by unordered pair of labels, and the labels of its unknown branches."""
    outcomes = {frozenset((o.a.label, o.b.label)): o for o in repo.outcomes}
    return outcomes, {u.lane.label for u in repo.unknown}


def matrix(repo: RepoReport) -> Table:
    """Streams on both axes plus an integration column."""
    from rich.table import Table

    outcomes, unknown = _index(repo)

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
        cells = [cell(row.label, col.label, outcomes, unknown) for col in repo.all_lanes]
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


def summary(repo: RepoReport) -> str:
    """One line in place of a repository's matrix: its streams, pairs, conflicts, failures, missing branches."""
    parts = [f"{len(repo.lanes)} streams", f"{len(repo.outcomes)} pair(s) checked"]
    conflicts = len(repo.conflicts)
    parts.append(f"[bold red]{conflicts} conflicting[/]" if conflicts else "[green]none conflicting[/]")
    if repo.errors:
        parts.append(f"[magenta]{len(repo.errors)} not mergeable by git[/]")
    if repo.unknown:
        parts.append(f"[yellow]{len(repo.unknown)} branch(es) missing[/]")
    return (
        f"{repo.repo} [dim]({repo.path})[/]: "
        + ", ".join(parts)
        + f" [dim](matrix hidden above {MATRIX_MAX} streams; --all shows it)[/]"
    )


def print_conflicts(console: Console, report: ConflictReport, show_all: bool = False) -> None:
    """Matrices (a summary line for a repository above :data:`MATRIX_MAX` streams unless ``show_all``),
    then the conflicting pairs, then unknown branches and failed merges, then a verdict."""
    from rich.markup import escape

    if not report.repositories:
        console.print(f"{report.phase}: no feature branches to compare.")
        return
    for repo in report.repositories:
        if show_all or len(repo.lanes) <= MATRIX_MAX:
            console.print(matrix(repo))
        else:
            console.print(summary(repo))
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
