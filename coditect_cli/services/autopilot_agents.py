"""The autopilot's view of the agents in the panes (:class:`~coditect_cli.services.autopilot.AgentPort`),
on top of :mod:`coditect_cli.services.agents`: their states from their own signals and screens, messages
delivered (or held while an agent waits for approval), and evidence that a message arrived."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from coditect_cli.domain.autopilot import AgentView
from coditect_cli.errors import CoditectError
from coditect_cli.project import Project

if TYPE_CHECKING:
    from coditect_cli.domain.manifest import Manifest

_MARK = re.compile(r"\[coditect autopilot #\d+\]")
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*(?:\x07|\x1b\\)")
LOG_TAIL = 256 * 1024


class TmuxAgents:
    """Agents in the phase's tmux panes."""

    def __init__(self, project: Project, socket: str | None) -> None:
        self.project = project
        self.socket = socket

    def states(self, manifest: Manifest) -> dict[str, AgentView]:
        """Every stream's agent; none when no session runs (nothing is dispatched then)."""
        from coditect_cli.services.agents import agent_states

        try:
            states = agent_states(self.project, manifest.phase, socket=self.socket)
        except CoditectError:
            return {}
        return {
            stream: AgentView(
                stream,
                st.state,
                st.kind not in {"shell", "unknown"},
                st.exit_status,
                st.detail or st.last_line or "",
            )
            for stream, st in states.items()
        }

    def deliver(self, manifest: Manifest, stream: str, text: str) -> str:
        """Deliver through the agents' delivery (held while the agent waits for approval)."""
        from coditect_cli.services.agents import deliver

        try:
            _s, done = deliver(self.project, manifest.phase, {stream: text}, socket=self.socket)
        except CoditectError as exc:
            return f"not sent: {exc.message}"
        if not done:
            return "not sent: no pane"
        d = done[-1]
        if d.status == "skipped":
            return f"not sent: {d.detail}"
        return d.status + (f" ({d.detail})" if d.detail and d.status != "delivered" else "")

    def arrived(self, manifest: Manifest, stream: str, text: str) -> bool:
        """The agent reported the text (its prompt digest), is holding it for later, or its pane shows the
        text's autopilot mark."""
        from coditect_cli.agents.events import read_events, text_sha
        from coditect_cli.services.session import agent_file, log_path
        from coditect_cli.services.setup import project_common_dir
        from coditect_cli.state.messages import waiting
        from coditect_cli.state.store import Store

        common = project_common_dir(self.project)
        sha = text_sha(text)
        if any(e.prompt_sha == sha for e in read_events(agent_file(common, manifest.phase, stream))):
            return True
        with Store.open(common) as store:
            if any(m.text == text for m in waiting(store, manifest.phase, stream)):
                return True
        mark = _MARK.search(text)
        if mark is None:
            return False
        try:
            with log_path(common, manifest.phase, stream).open("rb") as fh:
                size = fh.seek(0, 2)
                fh.seek(max(0, size - LOG_TAIL))
                tail = fh.read().decode("utf-8", "replace")
        except OSError:
            return False
        return mark.group(0) in _ANSI.sub("", tail)
