"""Terminal output: one rich Console per run, problems rendered with their file:line.

Every text the console renders goes through :func:`~coditect_cli.domain.text.neutralise`: a file name,
commit subject, PR title or blocker reason holding an escape sequence shows it as ``\x1b[...`` instead of
letting it act on the terminal. rich's own styling (control segments and styles) is untouched.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from coditect_cli.errors import Problem

if TYPE_CHECKING:
    from rich.console import Console


def make_console(*, stderr: bool = False) -> Console:
    """A Console that honours NO_COLOR, does not wrap output meant for pipes and neutralises control
    characters in everything it prints."""
    from rich.console import Console, ConsoleOptions, RenderableType
    from rich.segment import Segment
    from rich.text import Text

    from coditect_cli.domain.text import neutralise

    class SafeConsole(Console):
        # Strings are neutralised before rich lays them out (so tables measure what is shown); render()
        # catches the rest (Text objects built by the renderers).
        def render_str(self, text: str, **kwargs: Any) -> Text:
            return super().render_str(neutralise(text), **kwargs)

        def render(
            self, renderable: RenderableType, options: ConsoleOptions | None = None
        ) -> Iterable[Segment]:
            for segment in super().render(renderable, options):
                if segment.control is None:
                    text = neutralise(segment.text)
                    yield segment if text == segment.text else Segment(text, segment.style)
                else:
                    yield segment

    no_color = "NO_COLOR" in os.environ and os.environ["NO_COLOR"] != ""
    stream = sys.stderr if stderr else sys.stdout
    # NO_COLOR (no-color.org): no colour and, to be safe for logs and screen readers, no styling at all.
    return SafeConsole(
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
