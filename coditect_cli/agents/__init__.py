"""Agents that run in stream panes.

A stream's ``run:`` is ``shell``, ``claude`` or a command template (see
:mod:`coditect_cli.domain.launch`). This package holds the agents coditect ships itself: for now
:mod:`coditect_cli.agents.scripted`, a deterministic stand-in for an AI agent used by the sandbox demo and
the tests.
"""

from __future__ import annotations

import shlex
import sys


def scripted_agent_template(*extra: str) -> str:
    """The ``run``/``--agent`` template starting the scripted agent with this Python interpreter.

    ``sys.executable`` rather than ``python3``: the pane must import the same coditect as the launcher.
    """
    words = [shlex.quote(sys.executable), "-m", "coditect_cli.agents.scripted", "{stream}", "{worktree}"]
    words += ["--prompt-file", "{prompt_file}", *(shlex.quote(e) for e in extra)]
    return " ".join(words)
