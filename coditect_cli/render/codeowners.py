"""Human output of ``codeowners check``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from coditect_cli.domain.manifest import Manifest
    from coditect_cli.domain.ownership_check import OwnershipReport


def print_ownership(console: Console, report: OwnershipReport, manifest: Manifest) -> None:
    """One line per feature branch; each violating file with its owners."""
    for b in report.branches:
        label = f"[bold]{b.stream}[/] in [cyan]{b.repo}[/] ({b.branch})"
        if b.missing:
            console.print(f"[yellow]?[/] {label}: branch does not exist (run `coditect streams setup`)")
        elif not b.violations:
            extra = f", {len(b.shared)} shared" if b.shared else ""
            console.print(f"[green]✓[/] {label}: {b.changed} changed file(s), all owned{extra}")
        else:
            console.print(f"[red]✗[/] {label}: {len(b.violations)} file(s) outside the stream's ownership")
            for v in b.violations:
                owners = ", ".join(f"{s} ({manifest.stream(s).code_owner})" for s in v.owners) or "no stream"
                console.print(f"    {v.path}  [dim]owned by[/] {owners}")
    verdict = "no violations" if not report.violations else f"{report.violations} violation(s)"
    console.print(f"codeowners check {report.phase}: {verdict} against {report.integration}")
