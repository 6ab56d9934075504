"""Human output of the ``pr`` commands: the PR table, a stream's status, what open/review/merge did."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from coditect_cli.domain.prs import (
        MergeReport,
        OpenOutcome,
        OpenReport,
        PrListing,
        PrView,
        ReviewReport,
        StatusReport,
    )

_STATE = {"open": "[green]open[/]", "merged": "[magenta]merged[/]", "closed": "[dim]closed[/]"}
_CHECKS = {
    "success": "[green]✓ passed[/]",
    "failure": "[bold red]✗ failed[/]",
    "pending": "[yellow]… pending[/]",
}
_NEED = {
    "approved": "[green]✓ approved[/]",
    "changes_requested": "[bold red]✗ changes requested[/]",
    "stale": "[bold yellow]⟳ stale[/]",
}


def print_notes(console: Console, notes: Iterable[str]) -> None:
    """One dim ``note:`` line per note (why a forge was chosen, what it could not do)."""
    from rich.markup import escape

    for note in notes:
        console.print(f"[dim]note: {escape(note)}[/]")


def approvals_cell(view: PrView) -> str:
    """``✓ 2/2``, ``1/2``, ``✗ 0/1`` (changes requested), or ``—`` without a PR."""
    if view.pr is None:
        return "[dim]—[/]"
    done, needed = view.approvals
    if view.blocked_by:
        return f"[bold red]✗ {done}/{needed}[/]"
    if view.approved:
        return f"[green]✓ {done}/{needed}[/]"
    return f"[yellow]{done}/{needed}[/]"


def checks_cell(view: PrView) -> str:
    """The checks' summary with counts, ``—`` when there are none."""
    if view.pr is None or not view.checks:
        return "[dim]—[/]"
    passed = sum(1 for c in view.checks if c.status == "success")
    return f"{_CHECKS.get(view.checks_state, view.checks_state)} {passed}/{len(view.checks)}"


def mergeable_cell(view: PrView) -> str:
    """``yes``, ``conflicts``, ``?`` (unknown), ``—`` when not open."""
    if view.pr is None or view.pr.state != "open":
        return "[dim]—[/]"
    if view.mergeable is None:
        return "[yellow]?[/]"
    return "[green]yes[/]" if view.mergeable else "[bold red]conflicts[/]"


def pr_table(rows: Sequence[PrView], title: str | None = None) -> Table:
    """One row per PR: stream, repo, number, state, approvals, checks, mergeable, title (without its
    ``[phase]`` prefix: the table's title names the integration branch)."""
    import re

    from rich import box
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    headers = ("stream", "repo", "#", "state", "approvals", "checks", "mergeable", "title")
    cells: list[list[str]] = []
    for view in rows:
        pr = view.pr
        cells.append(
            [
                view.stream or "[dim]?[/]",
                view.repo,
                f"#{pr.number}" if pr else "[dim]—[/]",
                _STATE.get(pr.state, pr.state) if pr else "[dim]not opened[/]",
                approvals_cell(view),
                checks_cell(view),
                mergeable_cell(view),
                escape(re.sub(r"^\[[^\]]*\]\s*", "", pr.title)) if pr else f"[dim]{escape(view.branch)}[/]",
            ]
        )
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for i, name in enumerate(headers):
        if name == "title":  # the one column that gives way (wraps) on a narrow terminal
            table.add_column(name)
            continue
        widest = max([len(name), *(Text.from_markup(row[i]).cell_len for row in cells)])
        table.add_column(name, justify="right" if name == "#" else "left", no_wrap=True, min_width=widest)
    for row in cells:
        table.add_row(*row)
    return table


def print_listing(console: Console, listing: PrListing) -> None:
    """``pr list``: the table, then the notes."""
    if not listing.rows:
        console.print(f"No pull requests into {listing.base} yet (open them with `coditect pr open STREAM`).")
    else:
        console.print(pr_table(listing.rows, f"Pull requests into {listing.base}"))
        ready = sum(1 for r in listing.rows if r.ready)
        console.print(f"{len(listing.rows)} pull request(s), {ready} ready to merge")
    print_notes(console, listing.notes)


def listing_data(listing: PrListing) -> dict[str, Any]:
    """The ``data`` of ``pr list``'s JSON envelope."""
    return listing.to_json()


def _print_view(console: Console, view: PrView) -> None:
    from rich.markup import escape

    pr = view.pr
    if pr is None:
        console.print(
            f"[bold]{view.repo}[/]: no pull request of {escape(view.branch)} yet "
            f"(`coditect pr open {view.stream} --repo {view.repo}`)"
        )
        return
    where = f" {pr.url}" if pr.url else ""
    console.print(
        f"[bold]{view.repo}[/] #{pr.number} {_STATE.get(pr.state, pr.state)} — {escape(pr.title)}{where}\n"
        f"  {escape(pr.head)} → {escape(pr.base)}  head {(pr.head_sha or '?')[:12]}  [dim]({view.forge} forge)[/]"
    )
    if view.needs:
        console.print("  approvals needed:")
        for need in view.needs:
            state = _NEED.get(need.state, "[yellow]… pending[/]")
            shown = [
                f"{p} (shared)"
                if p in need.shared_paths
                else (f"{p} (not the stream's)" if p in need.foreign_paths else p)
                for p in need.paths[:4]
            ]
            paths = ", ".join(shown) + (f" (+{len(need.paths) - 4})" if len(need.paths) > 4 else "")
            why = f" [dim]{escape(paths)}[/]" if paths else " [dim](the stream's own owner)[/]"
            console.print(f"    {state}  {escape(need.who)}{why}")
            if need.state == "stale":
                console.print(
                    f"      [yellow]{escape(need.stale_reason or 'stale')}: a new review is needed[/]"
                )
    if view.blocked_by:
        console.print(f"  [bold red]changes requested by {', '.join(view.blocked_by)}[/]")
    if view.unowned:
        console.print(
            f"  [dim]owned by no stream (a maintainer approves): {escape(', '.join(view.unowned))}[/]"
        )
    if view.checks:
        console.print("  checks:")
        for check in view.checks:
            log = f" [dim]{escape(check.log)}[/]" if check.log else ""
            console.print(f"    {_CHECKS.get(check.status, check.status)}  {escape(check.name)}{log}")
    else:
        console.print("  checks: [dim]none recorded[/]")
    console.print(f"  mergeable: {mergeable_cell(view)}")
    if pr.state == "open":
        from coditect_cli.domain.prs import not_ready_reason

        reason = not_ready_reason(view)
        if view.ready:
            console.print("  [green]ready to merge[/]")
        else:
            console.print(f"  [yellow]not ready[/]{': ' + escape(reason) if reason else ''}")


def print_status(console: Console, report: StatusReport) -> None:
    """``pr status STREAM``: each repository's PR with its owners, checks and mergeability."""
    console.print(f"Stream [bold]{report.stream}[/] ({report.phase})")
    for view in report.rows:
        _print_view(console, view)
    print_notes(console, report.notes)


def status_data(report: StatusReport) -> dict[str, Any]:
    """The ``data`` of ``pr status``'s JSON envelope."""
    return report.to_json()


def print_outcomes(console: Console, outcomes: Sequence[OpenOutcome], *, dry_run: bool = False) -> None:
    """What ``pr open`` (or the demo's ``open_all``) did per (stream, repository)."""
    from rich.markup import escape

    for o in outcomes:
        pushed = " [dim](pushed)[/]" if o.pushed and not dry_run else ""
        if o.skipped is not None:
            console.print(f"[dim]- {o.stream}@{o.repo}: skipped: {escape(o.skipped)}[/]")
        elif o.pr is None:
            push = " after pushing" if o.pushed else ""
            console.print(
                f"[cyan]would open[/] {o.stream}@{o.repo}: {escape(o.branch)} → {escape(o.base)}{push}"
            )
        elif o.created:
            console.print(f"[green]opened[/] {o.repo} #{o.pr.number}: {escape(o.pr.title)}{pushed}")
        else:
            console.print(
                f"[yellow]exists[/] {o.repo} #{o.pr.number}: {escape(o.pr.title)} ({o.pr.state}){pushed}"
            )


def print_opened(console: Console, report: OpenReport) -> None:
    """``pr open``."""
    print_outcomes(console, report.outcomes, dry_run=report.dry_run)
    if report.nothing:
        console.print(f"nothing to open for stream {report.stream}")
    print_notes(console, report.notes)


def opened_data(report: OpenReport) -> dict[str, Any]:
    """The ``data`` of ``pr open``'s JSON envelope."""
    return report.to_json()


def print_review(console: Console, report: ReviewReport) -> None:
    """``pr approve`` / ``pr request-changes``."""
    verb = "approved" if report.state == "approved" else "requested changes on"
    for o in report.outcomes:
        if o.pr is None:
            console.print(f"[dim]- {o.repo}: skipped: {o.skipped}[/]")
        elif o.review is None:
            console.print(
                f"[cyan]would[/] {verb.replace('approved', 'approve')} {o.repo} #{o.pr.number} as {report.owner}"
            )
        else:
            console.print(f"{report.owner} {verb} {o.repo} #{o.pr.number}")
    print_notes(console, report.notes)


def review_data(report: ReviewReport) -> dict[str, Any]:
    """The ``data`` of the review commands' JSON envelope."""
    return report.to_json()


def print_merge(console: Console, report: MergeReport) -> None:
    """``pr merge``."""
    for o in report.outcomes:
        pr = o.view.pr
        label = f"{o.view.repo} #{pr.number}" if pr else o.view.repo
        head = (pr.head_sha or "?")[:12] if pr else "?"
        if o.gates_run and not report.dry_run:
            console.print(f"ran gate(s) {', '.join(o.gates_run)} on {label}'s head {head}")
        if o.merged is not None:
            again = " (already merged)" if o.merged.already else ""
            console.print(f"[green]merged[/] {label} ({o.merged.strategy}) → {o.merged.commit[:12]}{again}")
        elif o.refused is not None:
            style = "yellow" if report.dry_run and o.refused is None else "red"
            console.print(f"[{style}]not merged[/] {label}: {o.refused}")
        else:
            first = (
                f" after its gate(s) {', '.join(o.gates_run)} pass on its head {head}" if o.gates_run else ""
            )
            console.print(f"[cyan]would merge[/] {label} ({report.strategy}){first}")
    print_notes(console, report.notes)


def merge_data(report: MergeReport) -> dict[str, Any]:
    """The ``data`` of ``pr merge``'s JSON envelope."""
    return report.to_json()
