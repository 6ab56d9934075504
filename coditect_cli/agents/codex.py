"""OpenAI Codex CLI (``codex``, npm ``@openai/codex``).

Started with the prompt as its first message, ``--sandbox`` (default ``workspace-write``: writes inside the
worktree), ``--ask-for-approval`` (default ``on-request``), one ``--add-dir`` per other worktree, and
coditect's event recorder as its ``notify`` program (``-c notify=[...]``, a turn-complete event). Resume:
``codex resume --last``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from coditect_cli.agents.base import AgentContext, Signals, prompt_argument, sh_command
from coditect_cli.domain.launch import AgentCommand
from coditect_cli.domain.manifest import CodexAgent

ENV_NAMES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "CODEX_HOME", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY")


@dataclass(frozen=True)
class CodexProfile:
    """The ``codex`` kind."""

    options: CodexAgent
    kind: str = "codex"
    signals: Signals = "notify"
    env_names: tuple[str, ...] = ENV_NAMES

    @property
    def can_resume(self) -> bool:
        """``codex resume --last`` continues the last session (unless disabled)."""
        return self.options.resume

    def argv(self, ctx: AgentContext) -> list[str]:
        """The options shared by a start and a resume."""
        o = self.options
        argv = ["--sandbox", o.sandbox, "--ask-for-approval", o.approval]
        argv += ["-c", "notify=" + json.dumps(list(ctx.hook))]  # a JSON array is a TOML array
        if o.add_dirs:
            for w in ctx.worktrees[1:]:
                argv += ["--add-dir", str(w.path)]
        if o.model:
            argv += ["--model", o.model]
        return argv + list(o.args)

    def command(self, ctx: AgentContext) -> AgentCommand:
        """``codex OPTIONS "<prompt>"``, or ``codex resume --last OPTIONS`` when resuming."""
        if ctx.resume and self.can_resume:
            return sh_command(self.kind, "codex", ["codex", "resume", "--last", *self.argv(ctx)])
        return sh_command(self.kind, "codex", ["codex", *self.argv(ctx)], prompt_argument(ctx.prompt_file))

    def files(self, ctx: AgentContext) -> dict[Path, str]:
        """Nothing: codex takes everything on its command line."""
        return {}
