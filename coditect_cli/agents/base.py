"""The one small Protocol every agent kind implements, and what it is given to start a stream's agent.

A profile is pure: it turns a stream's options and context into a command line, the files that must exist
before the command starts (Claude Code's settings with coditect's hooks) and the names of the environment
variables it needs from the launching shell. :mod:`coditect_cli.services.launch` writes the files, passes
the variables (through a 0600 file, never a command line) and starts the command in the pane.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from coditect_cli.domain.launch import AgentCommand, StreamWorktree

Signals = Literal["hooks", "notify", "screen", "shell"]
"""Where an agent's state comes from: Claude Code hooks, Codex notify, the screen alone, or a shell's
foreground process."""


@dataclass(frozen=True)
class AgentContext:
    """Everything a profile needs to start one stream's agent."""

    stream: str
    prompt_file: Path
    worktrees: tuple[StreamWorktree, ...]
    gates: tuple[str, ...]  # the stream's gate commands (allowed without asking)
    login_shell: str
    hook: tuple[str, ...]  # argv recording one event into the stream's events file (see agents/events.py)
    settings_file: Path  # where a per-pane settings file may go
    resume: bool = False  # continue the agent's last session instead of starting with the prompt
    phase: str = ""
    root: Path | None = None  # the project root

    @property
    def cwd(self) -> Path:
        """The pane's directory: the stream's first worktree."""
        return self.worktrees[0].path

    @property
    def hook_line(self) -> str:
        """The hook argv as one shell command line."""
        return shlex.join(self.hook)


class AgentProfile(Protocol):
    """One agent kind (``claude``, ``codex``, ``aider``, ``shell``, a template)."""

    @property
    def kind(self) -> str:
        """The kind's name."""
        ...

    @property
    def signals(self) -> Signals:
        """Where its state comes from."""
        ...

    @property
    def can_resume(self) -> bool:
        """Whether a restart continues its last session."""
        ...

    @property
    def env_names(self) -> tuple[str, ...]:
        """Variables the agent needs from the launching environment (passed when set there)."""
        ...

    def command(self, ctx: AgentContext) -> AgentCommand:
        """The pane's command (with the prompt, or resuming when ``ctx.resume`` and supported)."""
        ...

    def files(self, ctx: AgentContext) -> dict[Path, str]:
        """Files to write before the command starts (path -> text)."""
        ...


def prompt_argument(prompt_file: Path) -> str:
    """A shell word that expands to the prompt file's text (the prompt never sits in the command line)."""
    return f'"$(cat {shlex.quote(str(prompt_file))})"'


def sh_command(kind: str, program: str, argv: list[str], tail: str = "") -> AgentCommand:
    """``exec argv... tail`` run by ``/bin/sh -c`` (``tail``: already-quoted shell words, e.g. the prompt)."""
    line = " ".join(["exec", shlex.join(argv), tail]).strip()
    return AgentCommand(kind, ("/bin/sh", "-c", line), program, line.removeprefix("exec "))  # type: ignore[arg-type]
