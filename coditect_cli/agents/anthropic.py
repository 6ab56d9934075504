"""The built-in agent kind (``run: anthropic``): how a pane starts it.

The pane runs ``coditect agent run STREAM`` with this Python interpreter (the launcher's coditect), so the
same loop runs in a pane and headless (:func:`coditect_cli.services.agent.run_task`). The API key reaches it
through the pane's environment, never its command line.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


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
