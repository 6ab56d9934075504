"""Terminal output: one rich Console per run, problems rendered with their file:line."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from coditect_cli.errors import Problem

if TYPE_CHECKING:
    from rich.console import Console


def make_console(*, stderr: bool = False) -> Console:
    """A Console that honours NO_COLOR and does not wrap output meant for pipes."""
    from rich.console import Console

    no_color = "NO_COLOR" in os.environ and os.environ["NO_COLOR"] != ""
    stream = sys.stderr if stderr else sys.stdout
    # NO_COLOR (no-color.org): no colour and, to be safe for logs and screen readers, no styling at all.
    return Console(
        file=stream,
        no_color=no_color,
        color_system=None if no_color else "auto",
        highlight=False,
        soft_wrap=not stream.isatty(),
    )


_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def print_problems(console: Console, problems: Iterable[Problem]) -> None:
    """One line per problem: ``file:line: severity: message [code]``."""
    from rich.text import Text

    for p in problems:
        line = Text()
        if p.location is not None:
            line.append(f"{p.location}: ", style="bold")
        line.append(f"{p.severity}: ", style=_STYLE.get(p.severity, ""))
        line.append(p.message)
        line.append(f" [{p.code}]", style="dim")
        console.print(line)
