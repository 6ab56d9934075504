"""aider (``aider``, PyPI ``aider-chat``).

aider has no way to take a first message and stay interactive (``--message`` exits after it), so the prompt
file goes in as read-only context (``--read``) and the stream's other worktrees' files cannot be added (aider
works in one repository). It commits by itself unless ``auto_commits: false`` (the default here: the
ownership guard checks every commit, and coditect's prompt asks the agent to commit). No resume: a restart
starts a new chat (aider keeps its history file in the worktree). State comes from the screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from coditect_cli.agents.base import AgentContext, Signals, sh_command
from coditect_cli.domain.launch import AgentCommand
from coditect_cli.domain.manifest import AiderAgent

ENV_NAMES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_API_BASE",
    "AIDER_MODEL",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
)


@dataclass(frozen=True)
class AiderProfile:
    """The ``aider`` kind."""

    options: AiderAgent
    kind: str = "aider"
    signals: Signals = "screen"
    can_resume: bool = False
    env_names: tuple[str, ...] = ENV_NAMES

    def command(self, ctx: AgentContext) -> AgentCommand:
        """``aider --read PROMPT_FILE [--no-auto-commits] [--model M] ARGS``."""
        o = self.options
        argv = ["aider", "--read", str(ctx.prompt_file)]
        argv.append("--auto-commits" if o.auto_commits else "--no-auto-commits")
        if o.model:
            argv += ["--model", o.model]
        return sh_command(self.kind, "aider", argv + list(o.args))

    def files(self, ctx: AgentContext) -> dict[Path, str]:
        """Nothing."""
        return {}
