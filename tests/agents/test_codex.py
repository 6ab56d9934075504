"""The real Codex CLI (npm ``@openai/codex``) started by coditect: its command line, options and environment
as the running process has them, and coditect reporting the screen it stops at without a login (it never
presses anything there)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers import coditect, retry_until
from libtmux.server import Server

from coditect_cli.project import Project
from coditect_cli.services.agents import agent_states

KEY = "sk-proj-fakekey-0123456789abcdefghijklmnop"


def test_codex_runs_with_its_options_and_the_key_only_in_its_environment(
    isolated_git: Path, tmp_path: Path, server: Server
) -> None:
    assert shutil.which("codex"), "Codex is installed by .ci/run (npm @openai/codex)"
    from coditect_cli.sandbox import build_sandbox

    lines = [
        "version: 1",
        "phase: cx",
        "project: demo",
        "schedule: {start: 2026-12-01, days: 10}",
        "repositories:",
        "  - {id: root, path: .}",
        "streams:",
        "  - id: coder",
        "    terminal: 1",
        "    name: Coder",
        "    agent: {role: dev, kind: codex, sandbox: read-only, approval: never, model: o4-mini}",
        "    work: [{repo: root, topic: coder, owns: [src/]}]",
    ]
    source = tmp_path / "cx.yaml"
    source.write_text("\n".join(lines) + "\n")
    root = build_sandbox(tmp_path / "sandbox", source).root
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    done = coditect(root, "streams", "launch", "--no-attach", "--socket", server.socket_name, env=env)
    assert done.code == 0, done.output

    project = Project(root)
    state = retry_until(
        lambda: agent_states(project, None, socket=server.socket_name)["coder"],
        lambda s: s.state == "blocked on dialog",
        60,
    )
    assert state.kind == "codex" and state.detail and ("Codex" in state.detail or "ChatGPT" in state.detail)

    pid = int(server.cmd("display-message", "-p", "-t", state.pane_id or "", "#{pane_pid}").stdout[0])
    argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    words = [a.decode() for a in argv if a]
    assert "--sandbox" in words and words[words.index("--sandbox") + 1] == "read-only"
    assert words[words.index("--ask-for-approval") + 1] == "never"
    assert words[words.index("--model") + 1] == "o4-mini"
    notify = words[words.index("-c") + 1]
    assert json.loads(notify.removeprefix("notify="))[-1].endswith("/agents/cx/coder.events")
    assert KEY not in " ".join(words)
    environ = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    assert f"OPENAI_API_KEY={KEY}".encode() in environ
    assert b"OPENAI_BASE_URL=http://127.0.0.1:9/v1" in environ
