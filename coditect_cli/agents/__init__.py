"""Agent kinds: how a stream's agent is started, watched and resumed.

One module per kind behind the :class:`~coditect_cli.agents.base.AgentProfile` Protocol:
:mod:`~coditect_cli.agents.claude` (Claude Code), :mod:`~coditect_cli.agents.codex` (OpenAI Codex CLI),
:mod:`~coditect_cli.agents.aider`, :mod:`~coditect_cli.agents.anthropic` (coditect's built-in agent),
:mod:`~coditect_cli.agents.shell` (a login shell, and command templates).
:mod:`~coditect_cli.agents.events` records what an agent reports about itself (hooks, notify);
:mod:`~coditect_cli.agents.screen` reads its rendered screen; :mod:`~coditect_cli.agents.scripted` is a
deterministic stand-in agent for the sandbox demo and the tests.
"""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coditect_cli.agents.base import AgentProfile
    from coditect_cli.domain.manifest import AgentOptions


def profile_for(options: AgentOptions) -> AgentProfile:
    """The profile of an agent kind with its manifest options."""
    from coditect_cli.agents.aider import AiderProfile
    from coditect_cli.agents.anthropic import BuiltinProfile
    from coditect_cli.agents.claude import ClaudeProfile
    from coditect_cli.agents.codex import CodexProfile
    from coditect_cli.agents.shell import ShellProfile, TemplateProfile
    from coditect_cli.domain.manifest import AiderAgent, BuiltinAgent, ClaudeAgent, CodexAgent, TemplateAgent

    if isinstance(options, ClaudeAgent):
        return ClaudeProfile(options)
    if isinstance(options, CodexAgent):
        return CodexProfile(options)
    if isinstance(options, AiderAgent):
        return AiderProfile(options)
    if isinstance(options, BuiltinAgent):
        return BuiltinProfile()
    if isinstance(options, TemplateAgent):
        return TemplateProfile(options)
    return ShellProfile()


def scripted_agent_template(*extra: str) -> str:
    """The ``run``/``--agent`` template starting the scripted agent with this Python interpreter.

    ``sys.executable`` rather than ``python3``: the pane must import the same coditect as the launcher.
    """
    words = [shlex.quote(sys.executable), "-m", "coditect_cli.agents.scripted", "{stream}", "{worktree}"]
    words += ["--prompt-file", "{prompt_file}", *(shlex.quote(e) for e in extra)]
    return " ".join(words)
