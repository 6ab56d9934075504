"""``shell`` (a login shell for a person) and command templates (``run: "my-agent {prompt_file}"``)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from coditect_cli.agents.base import AgentContext, Signals
from coditect_cli.domain.launch import AgentCommand, program_of, simple_command, substitute
from coditect_cli.domain.manifest import TemplateAgent


@dataclass(frozen=True)
class ShellProfile:
    """The ``shell`` kind: ``$SHELL -l`` as the pane's command; busy while a command runs in it."""

    kind: str = "shell"
    signals: Signals = "shell"
    can_resume: bool = False
    env_names: tuple[str, ...] = ()

    def command(self, ctx: AgentContext) -> AgentCommand:
        """The login shell."""
        shell = ctx.login_shell
        return AgentCommand("shell", (shell, "-l"), shell, f"{shell} -l")

    def files(self, ctx: AgentContext) -> dict[Path, str]:
        """Nothing."""
        return {}


@dataclass(frozen=True)
class TemplateProfile:
    """A command template: placeholders replaced by shell-quoted values, run by ``/bin/sh -c``."""

    options: TemplateAgent
    kind: str = "template"
    signals: Signals = "screen"
    can_resume: bool = False
    env_names: tuple[str, ...] = ()

    def command(self, ctx: AgentContext) -> AgentCommand:
        """The template with ``{prompt_file}``, ``{stream}``, ``{worktree}`` substituted."""
        values = {"prompt_file": str(ctx.prompt_file), "stream": ctx.stream, "worktree": str(ctx.cwd)}
        line = substitute(self.options.command, values).strip()
        shown = line
        if simple_command(line):
            line = f"exec {line}"
        args = shlex.join(self.options.args)
        if args:
            line, shown = f"{line} {args}", f"{shown} {args}"
        return AgentCommand("template", ("/bin/sh", "-c", line), program_of(line), shown)

    def files(self, ctx: AgentContext) -> dict[Path, str]:
        """Nothing."""
        return {}
