"""The built-in agent kind (``run: anthropic``): how a pane starts it.

The pane runs ``coditect agent run STREAM`` with this Python interpreter (the launcher's coditect), so the
same loop runs in a pane and headless (:func:`coditect_cli.services.agent.run_task`). The API key reaches it
through the pane's environment, never its command line.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from coditect_cli.agents.base import AgentContext, Signals
from coditect_cli.domain.launch import AgentCommand


def interpreter() -> str:
    """The program a pane running the built-in agent starts: this Python interpreter."""
    return sys.executable


def pane_command(stream: str, phase: str, root: Path | None) -> str:
    """The shell line a pane runs for ``run: anthropic``."""
    words = [interpreter(), "-m", "coditect_cli"]
    if root is not None:
        words += ["--root", str(root)]
    words += ["agent", "run", stream]
    if phase:
        words += ["--phase", phase]
    return shlex.join(words)


@dataclass(frozen=True)
class BuiltinProfile:
    """The ``anthropic`` kind: coditect's own agent (``coditect agent run STREAM``) in the pane. It reads the
    stream's ``anthropic:`` options and the API key itself; its state comes from the screen."""

    kind: str = "anthropic"
    signals: Signals = "screen"
    can_resume: bool = False
    env_names: tuple[str, ...] = (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "NO_PROXY",
    )

    def command(self, ctx: AgentContext) -> AgentCommand:
        """``python -m coditect_cli --root ROOT agent run STREAM --phase PHASE``."""
        line = pane_command(ctx.stream, ctx.phase, ctx.root)
        return AgentCommand("anthropic", ("/bin/sh", "-c", f"exec {line}"), interpreter(), line)

    def files(self, ctx: AgentContext) -> dict[Path, str]:
        """Nothing."""
        return {}
