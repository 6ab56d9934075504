"""The autopilot's view of the agents in the panes (:class:`~coditect_cli.services.autopilot.AgentPort`),
on top of :mod:`coditect_cli.services.agents`: their states from their own signals and screens, messages
delivered (or held while an agent waits for approval), and evidence that a message arrived."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from coditect_cli.domain.autopilot import AgentView
from coditect_cli.errors import CoditectError
from coditect_cli.project import Project

HEADLESS_KINDS = frozenset({"anthropic"})
AGENT_KEYS = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN")
"""Agent kinds the autopilot runs without a pane: one process per task (``coditect agent run``)."""

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

    def headless(self, manifest: Manifest, stream: str) -> bool:
        """Whether ``stream``'s agent runs headless (the built-in agent): a process per task, no pane."""
        return manifest.stream(stream).agent_options.kind in HEADLESS_KINDS

    def states(self, manifest: Manifest) -> dict[str, AgentView]:
        """Every stream's agent: pane agents from their signals and screens (none when no session runs),
        headless ones from their task process."""
        from coditect_cli.services.agents import agent_states

        try:
            states = agent_states(self.project, manifest.phase, socket=self.socket)
        except CoditectError:
            states = {}
        out = {
            stream: AgentView(
                stream,
                st.state,
                st.kind not in {"shell", "unknown"},
                st.exit_status,
                st.detail or st.last_line or "",
            )
            for stream, st in states.items()
        }
        for stream in manifest.streams:
            if not self.headless(manifest, stream.id):
                continue
            running = self._running(manifest, stream.id)
            if running is not None:
                out[stream.id] = AgentView(stream.id, "working", True, None, f"running [{running}] headless")
            elif out.get(stream.id) is None or out[stream.id].state in {"missing", "exited", "unknown"}:
                out[stream.id] = AgentView(stream.id, "idle", True, None, "headless: ready for a task")
        return out

    def _record(self, manifest: Manifest, stream: str) -> Path:
        from coditect_cli.services.session import agent_file
        from coditect_cli.services.setup import project_common_dir

        return agent_file(project_common_dir(self.project), manifest.phase, stream, ".headless.json")

    def _running(self, manifest: Manifest, stream: str) -> str | None:
        """The task a live headless run of ``stream`` works on, if one runs."""
        try:
            data = json.loads(self._record(manifest, stream).read_text(encoding="utf-8"))
            pid, task = int(data["pid"]), str(data["task"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                alive = b"coditect_cli" in fh.read()
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                alive = alive and fh.read().rpartition(")")[2].split()[0] != "Z"
        except OSError:
            return None
        return task if alive else None

    def dispatch(self, manifest: Manifest, stream: str, task: str, text: str) -> str:
        """Give ``task`` to the stream's agent: typed into its pane, or a headless run started for it."""
        if not self.headless(manifest, stream):
            return self.deliver(manifest, stream, text)
        import subprocess
        import sys

        from coditect_cli.adapters.proc import child_env
        from coditect_cli.services.session import log_path
        from coditect_cli.services.setup import project_common_dir

        log = log_path(project_common_dir(self.project), manifest.phase, stream)
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "coditect_cli",
            "--root",
            str(self.project.root),
            "agent",
            "run",
            stream,
        ]
        argv += ["--phase", manifest.phase, "--task", task]
        with log.open("ab") as out:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # The built-in agent needs the API key: passed to this one process on purpose (its tools
                # run commands on the allow-listed environment again).
                env=child_env(pass_env=(*AGENT_KEYS, *manifest.pass_env, *manifest.stream(stream).pass_env)),
            )
        record = self._record(manifest, stream)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"pid": child.pid, "task": task}), encoding="utf-8")
        return f"started headless (pid {child.pid})"

    def deliver(self, manifest: Manifest, stream: str, text: str) -> str:
        """Deliver through the agents' delivery (held while the agent waits for approval)."""
        from coditect_cli.services.agents import deliver

        if self.headless(manifest, stream):
            return "noted: the built-in agent runs headless (no pane); it works from its task's prompt"

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
