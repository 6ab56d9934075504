"""One state per stream's agent, from its own signals first and its rendered screen second (pure).

Inputs: the pane as tmux lists it, the agent's events since its pane started (Claude Code hooks, Codex
notify, coditect's own ``Delivered`` marks; see :mod:`coditect_cli.agents.events`) and the live screen
(``capture-pane -p``). The screen wins for what it shows right now — a dialog or an approval prompt — since
an answered prompt disappears from it; the events tell the rest.

States: ``starting``, ``working``, ``waiting for approval`` (with the question), ``blocked on dialog`` (with
the dialog's line), ``idle`` (turn finished, waiting for a prompt), ``exited`` (with the status), ``unknown``
and ``missing`` (no pane).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from coditect_cli.agents.events import LAUNCH, AgentEvent
from coditect_cli.agents.screen import last_line, read_screen
from coditect_cli.domain.launch import PaneState

StateName = Literal[
    "starting", "working", "waiting for approval", "blocked on dialog", "idle", "exited", "unknown", "missing"
]
DELIVERED = "Delivered"
"""The event coditect appends when it delivered a message (agents without a prompt-submitted signal)."""
_WORKING_EVENTS = frozenset({"UserPromptSubmit", "PostToolUse", DELIVERED})
_IDLE_EVENTS = frozenset({"Stop", "agent-turn-complete"})


@dataclass(frozen=True)
class AgentState:
    """The state of one stream's agent."""

    stream: str
    kind: str
    state: StateName
    detail: str | None = None  # the approval question, the dialog's line, or what a shell runs
    exit_status: int | None = None
    exit_signal: int | None = None
    source: str = "tmux"  # where the state came from: hooks, notify, screen, shell, tmux
    since: float | None = None  # time of the event the state comes from
    last_line: str | None = None
    pane_id: str | None = None
    session: str | None = None  # the agent's own session id (Claude Code, Codex), for resuming
    held: int = 0  # messages held for it

    @property
    def label(self) -> str:
        """The state as shown: ``exited 0``, ``exited on signal 9``, or the state's name."""
        if self.state == "exited":
            if self.exit_signal is not None:
                return f"exited on signal {self.exit_signal}"
            return f"exited {self.exit_status}" if self.exit_status is not None else "exited"
        return self.state

    @property
    def accepts_text(self) -> bool:
        """Whether text typed now reaches the agent's input (not a prompt or a dialog; a live pane)."""
        return self.state in {"starting", "working", "idle", "unknown"}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "stream": self.stream,
            "kind": self.kind,
            "state": self.label,
            "detail": self.detail,
            "exit_status": self.exit_status,
            "exit_signal": self.exit_signal,
            "source": self.source,
            "since": self.since,
            "last_line": self.last_line,
            "held": self.held,
        }


def decide_state(
    stream: str,
    kind: str,
    pane: PaneState | None,
    events: list[AgentEvent],
    screen: str | None,
    *,
    held: int = 0,
) -> AgentState:
    """The state of ``stream``'s agent of ``kind`` (``claude``, ``codex``, ``aider``, ``shell``, ``template``)."""
    if pane is None:
        return AgentState(stream, kind, "missing", held=held)
    base: dict[str, Any] = {"pane_id": pane.pane_id, "held": held}
    session = next((e.session for e in reversed(events) if e.session), None)
    base["session"] = session
    if pane.dead:
        return AgentState(
            stream,
            kind,
            "exited",
            exit_status=pane.dead_status,
            exit_signal=pane.dead_signal,
            last_line=last_line(screen) if screen else None,
            **base,
        )
    base["last_line"] = last_line(screen) if screen else None
    signal = read_screen(screen) if screen is not None else None
    if signal is not None and signal.kind == "dialog":
        return AgentState(stream, kind, "blocked on dialog", signal.text, source="screen", **base)
    if signal is not None and signal.kind == "approval":
        return AgentState(stream, kind, "waiting for approval", signal.text, source="screen", **base)
    if kind == "shell":
        shell = os.path.basename(pane.command or "")
        busy = shell and not shell.endswith("sh")
        return AgentState(
            stream, kind, "working" if busy else "idle", shell if busy else None, source="shell", **base
        )
    working_screen = signal is not None and signal.kind == "working"
    real = [e for e in events if e.event != LAUNCH]
    if not real:
        if kind in {"claude", "codex"}:
            state: StateName = "working" if working_screen else "starting"
            return AgentState(stream, kind, state, source="screen" if working_screen else "hooks", **base)
        return AgentState(stream, kind, "working" if working_screen else "unknown", source="screen", **base)
    last = real[-1]
    source = "notify" if kind == "codex" else "hooks" if kind == "claude" else "screen"
    base["since"] = last.t
    if last.event == "Notification" and last.type == "permission_prompt":
        if signal is None:
            return AgentState(
                stream, kind, "waiting for approval", last.message or None, source=source, **base
            )
        # The prompt left the screen: it was answered.
        return AgentState(stream, kind, "working" if working_screen else "idle", source="screen", **base)
    if last.event in _IDLE_EVENTS or (last.event == "Notification" and last.type == "idle_prompt"):
        return AgentState(stream, kind, "working" if working_screen else "idle", source=source, **base)
    if last.event in _WORKING_EVENTS:
        return AgentState(stream, kind, "working", source=source, **base)
    if last.event == "SessionStart":
        # A fresh start gets its prompt next; a resumed session waits for one.
        waiting: StateName = "starting" if last.type in {"", "startup"} else "idle"
        return AgentState(stream, kind, "working" if working_screen else waiting, source=source, **base)
    return AgentState(
        stream, kind, "working" if working_screen else "unknown", last.event, source=source, **base
    )
