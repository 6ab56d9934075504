"""Human output of ``doctor``: one table (machine, project, then each phase), the findings, a verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coditect_cli.render.console import print_problems

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from coditect_cli.services.doctor import Check, DoctorReport

# A word as well as a colour, so the status survives NO_COLOR, a pipe and a screen reader.
_STATUS = {
    "ok": ("✓ ok", "green"),
    "warn": ("! warn", "yellow"),
    "fail": ("✗ fail", "bold red"),
    "skip": ("- skip", "dim"),
}


def doctor_data(report: DoctorReport) -> dict[str, Any]:
    """The ``data`` of doctor's JSON envelope."""
    return report.to_json()


def _detail(check: Check) -> Any:
    from rich.text import Text

    text = Text(check.detail)
    if check.hint and check.status != "ok":
        text.append("\n→ " + check.hint, style="dim")
    return text


def checks_table(report: DoctorReport) -> Table:
    """One row per check, a section per group (the machine, the project, each phase)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="coditect doctor", title_justify="left", show_lines=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", style="bold", no_wrap=True)
    table.add_column("subject", overflow="fold")
    table.add_column("detail", overflow="fold")
    group: str | None = None
    for check in report.checks:
        if group is not None and check.group != group:
            table.add_section()
        group = check.group
        word, style = _STATUS[check.status]
        table.add_row(Text(word, style=style), check.check, Text(check.subject), _detail(check))
    return table


def print_doctor(console: Console, report: DoctorReport) -> None:
    """The table, then every finding with its file:line, then the verdict."""
    console.print(checks_table(report))
    located = [p for c in report.checks if c.status in ("warn", "fail") for p in c.problems]
    if located:
        console.print()
        print_problems(console, located)
    counts = report.counts()
    summary = f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failure(s)" + (
        f", {counts['skip']} skipped" if counts["skip"] else ""
    )
    console.print()
    if report.failed:
        console.print(f"[bold red]✗[/] doctor: {summary}")
    else:
        console.print(f"[green]✓[/] doctor: {summary}")
