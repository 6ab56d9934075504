"""Claude Code (``claude``, npm ``@anthropic-ai/claude-code`` 2.1.x).

Started with the prompt as its first message (an argument read from the prompt file by the pane's shell),
``--settings`` pointing at a per-pane file holding coditect's hooks (nothing is written into the repository
or its ``.claude/``), ``--permission-mode`` (default ``acceptEdits``: edits inside its directories are
allowed), ``--allowedTools`` (default: git, the stream's gate commands, the read-only tools) and one
``--add-dir`` per other worktree of the stream. ``streams restart`` runs ``claude --continue``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from coditect_cli.agents.base import AgentContext, Signals, prompt_argument, sh_command
from coditect_cli.domain.launch import AgentCommand
from coditect_cli.domain.manifest import ClaudeAgent

HOOK_EVENTS = ("SessionStart", "UserPromptSubmit", "PostToolUse", "Notification", "Stop", "SessionEnd")
BASE_TOOLS = ("Read", "Glob", "Grep", "Edit", "Write", "Bash(git:*)")
ENV_NAMES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL",
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
)


def allowed_tools(options: ClaudeAgent, gates: tuple[str, ...]) -> tuple[str, ...]:
    """``--allowedTools``: the manifest's list, else git, the gate commands and the file tools."""
    if options.allowed_tools is not None:
        return options.allowed_tools
    return (*BASE_TOOLS, *(f"Bash({g})" for g in gates))


def settings(ctx: AgentContext) -> dict[str, object]:
    """The ``--settings`` file: one command hook per event, recording it for coditect."""
    hook = [{"hooks": [{"type": "command", "command": ctx.hook_line, "timeout": 10}]}]
    return {"hooks": {event: hook for event in HOOK_EVENTS}}


@dataclass(frozen=True)
class ClaudeProfile:
    """The ``claude`` kind."""

    options: ClaudeAgent = field(default_factory=ClaudeAgent)
    kind: str = "claude"
    signals: Signals = "hooks"
    env_names: tuple[str, ...] = ENV_NAMES

    @property
    def can_resume(self) -> bool:
        """``claude --continue`` picks the last conversation of the directory up (unless disabled)."""
        return self.options.resume

    def argv(self, ctx: AgentContext) -> list[str]:
        """The command's words before the prompt."""
        o = self.options
        argv = ["claude", "--settings", str(ctx.settings_file), "--permission-mode", o.permission_mode]
        # `=` keeps these variadic options from swallowing the next argument (the prompt).
        argv.append("--allowedTools=" + ",".join(allowed_tools(o, ctx.gates)))
        if o.add_dirs:
            argv += [f"--add-dir={w.path}" for w in ctx.worktrees[1:]]
        if o.model:
            argv += ["--model", o.model]
        argv += list(o.args)
        return argv

    def command(self, ctx: AgentContext) -> AgentCommand:
        """``claude OPTIONS "<prompt>"``, or ``claude OPTIONS --continue`` when resuming."""
        argv = self.argv(ctx)
        if ctx.resume and self.can_resume:
            return sh_command(self.kind, "claude", [*argv, "--continue"])
        return sh_command(self.kind, "claude", argv, prompt_argument(ctx.prompt_file))

    def files(self, ctx: AgentContext) -> dict[Path, str]:
        """The settings file with the hooks."""
        return {ctx.settings_file: json.dumps(settings(ctx), indent=2) + "\n"}
