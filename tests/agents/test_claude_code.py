"""The real Claude Code (npm ``@anthropic-ai/claude-code``, installed by .ci/run) started by coditect in a
private tmux server, on the sandbox, against a fake Anthropic Messages API on 127.0.0.1, with an isolated
HOME whose ``~/.claude.json`` says only that the user went through Claude Code's first run.

One scripted model plays a whole session: it writes in the stream's own directory and commits, tries a
commit outside it (the guard refuses, and the model sees the refusal), asks to run a command that needs
approval; coditect holds a message sent meanwhile and delivers it after the approval; a 300-character
message arrives whole and is answered; ``/exit`` ends the agent. ``streams status`` follows it all.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakeanthropic.conversation import Script, responder, tool_results, user_texts
from fakeanthropic.server import FakeAnthropic, Turn
from helpers import (
    EXAMPLE_TEXT,
    coditect,
    git_in,
    kill_tmux_server,
    retry_until,
    stream_worktree,
)

from coditect_cli.project import Project
from coditect_cli.services.agents import agent_states

STREAM = "backend"
LONG = ("LONG-300 " + "the quick brown fox jumps over the lazy dog; " * 8)[:300]


def _manifest() -> str:
    """The example manifest with Claude Code in the backend stream only (the others: shells). Its pane has
    Claude Code's auto-updater and other network traffic off: the test talks to the fake API only, and must
    not replace the pinned global install (.ci/run) with the latest release while it runs."""
    text = EXAMPLE_TEXT.replace("run: claude", "run: shell")
    return text.replace(
        "agent: codi-code-architect\n    run: shell",
        "agent: codi-code-architect\n    run: claude\n"
        '    env: {DISABLE_AUTOUPDATER: "1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1"}',
        1,
    )


def _scripts(worktree: Path) -> list[Script]:
    notes = worktree / "src" / "agent-notes.md"
    readme = worktree / "README.md"
    return [
        Script(
            "## Your task",
            (
                Turn.tool("Write", file_path=str(notes), content="# backend notes\n"),
                Turn.tool(
                    "Bash",
                    command="git add src/agent-notes.md && git commit -m 'backend: notes'",
                    description="c",
                ),
                # Claude Code writes an existing file only after reading it ("File has not been read yet").
                Turn.tool("Read", file_path=str(readme)),
                Turn.tool("Write", file_path=str(readme), content="outside my area\n"),
                Turn.tool(
                    "Bash", command="git add README.md && git commit -m 'backend: readme'", description="c"
                ),
            ),
            "Committed my notes; the guard refused README.md, which I do not own.",
        ),
        Script(
            "APPROVAL-STEP",
            # Outside the worktree, not git: Claude Code asks (acceptEdits allows file commands inside it).
            (Turn.tool("Bash", command="ls /proc/self/..", description="look around"),),
            "Looked.",
        ),
        Script("HELD-MESSAGE", (), "Got the held message."),
        Script("LONG-300", (), "Answered the long message."),
    ]


@pytest.fixture
def claude_home(isolated_git: Path) -> Path:
    """HOME of a user who went through Claude Code's first run and nothing else."""
    (isolated_git / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True, "theme": "dark"}))
    return isolated_git


@pytest.fixture
def socket() -> Iterator[str]:
    name = f"coditect-cc-{uuid.uuid4().hex[:8]}"
    yield name
    kill_tmux_server(name)


class StateLog:
    """Every distinct state the backend agent went through, read in the background."""

    def __init__(self, project: Project, socket: str) -> None:
        self.project, self.socket = project, socket
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            state = agent_states(self.project, None, socket=self.socket)[STREAM].label
            if not self.seen or self.seen[-1] != state:
                self.seen.append(state)
            self._stop.wait(0.1)

    def __enter__(self) -> StateLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _in_order(seen: list[str], wanted: list[str]) -> bool:
    it = iter(seen)
    return all(any(s == w for s in it) for w in wanted)


def _status(root: Path, socket: str, env: dict[str, str]) -> dict[str, Any]:
    done = coditect(root, "streams", "status", "--json", "--socket", socket, env=env)
    assert done.code == 0, done.output
    rows: dict[str, Any] = {s["stream"]: s for s in done.json()["data"]["streams"]}
    return rows[STREAM]


def test_claude_code_runs_a_stream_end_to_end(tmp_path: Path, claude_home: Path, socket: str) -> None:
    assert shutil.which("claude"), "Claude Code is installed by .ci/run (npm @anthropic-ai/claude-code)"
    from coditect_cli.sandbox import build_sandbox

    source = tmp_path / "phase-1.yaml"
    source.write_text(_manifest())
    root = build_sandbox(tmp_path / "sandbox", source).root
    worktree = stream_worktree(root, STREAM, "backend")
    config = claude_home / ".claude.json"
    before = config.read_text()

    with FakeAnthropic(respond=responder(_scripts(worktree))) as api:
        env = api.env()
        # Without consent: refused, nothing launched, Claude Code's configuration untouched.
        refused = coditect(root, "streams", "launch", "--no-attach", "--socket", socket, env=env)
        assert refused.code == 4, refused.output
        assert "--trust" in refused.output and str(config) in refused.output
        assert config.read_text() == before

        launched = coditect(
            root, "streams", "launch", "--no-attach", "--trust", "--json", "--socket", socket, env=env
        )
        assert launched.code == 0, launched.output
        trust = launched.json()["data"]["trust"]
        assert trust["consent"] == "--trust" and trust["changed"]
        data = json.loads(config.read_text())
        # Other keys are kept (the trust edit's own tests check every key; here Claude Code, already started
        # in the panes, may have rewritten its file, so only the key it keeps itself is looked at).
        assert data["hasCompletedOnboarding"] is True
        assert data["projects"][str(root)]["hasTrustDialogAccepted"] is True
        assert data["projects"][str(worktree)]["hasTrustDialogAccepted"] is True
        assert env["ANTHROPIC_API_KEY"][-20:] in data["customApiKeyResponses"]["approved"]
        assert json.loads((claude_home / ".claude.json.coditect-backup").read_text()) == json.loads(before)
        # The key reached the pane through a 0600 file, never a command line.
        panes = subprocess.run(
            ["tmux", "-L", socket, "list-panes", "-a", "-F", "#{pane_start_command}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert env["ANTHROPIC_API_KEY"] not in panes and ".env" in panes
        env_file = root / ".git" / "coditect" / "agents" / "phase-1" / f"{STREAM}.env"
        assert env_file.stat().st_mode & 0o777 == 0o600

        project = Project(root)
        with StateLog(project, socket) as log:
            # The first turn: notes written and committed in the owned directory; README.md refused.
            retry_until(
                lambda: git_in(worktree, "log", "--format=%s", "-3"), lambda t: "backend: notes" in t, 120
            )
            retry_until(lambda: log.seen[-1:], lambda s: s == ["idle"], 60)
            assert "backend: readme" not in git_in(worktree, "log", "--format=%s")
            refusals = [r for r in tool_results(api.message_requests()) if "may not commit these files" in r]
            assert refusals and "README.md" in refusals[0]  # the agent saw the guard's refusal

            # A message that makes the agent ask for approval; one sent meanwhile is held, not typed.
            asked = coditect(
                root, "streams", "send", STREAM, "APPROVAL-STEP please", "--json", "--socket", socket, env=env
            )
            assert asked.code == 0 and asked.json()["data"]["deliveries"][0]["status"] == "delivered", (
                asked.output
            )
            waiting = retry_until(
                lambda: _status(root, socket, env),
                lambda s: s["agent"]["state"] == "waiting for approval",
                60,
            )
            assert "ls /proc/self/.." in (waiting["agent"]["detail"] or "")
            held = coditect(
                root, "streams", "send", STREAM, "HELD-MESSAGE for you", "--json", "--socket", socket, env=env
            )
            assert held.code == 0, held.output
            assert held.json()["data"]["deliveries"][0]["status"] == "held"
            assert _status(root, socket, env)["agent"]["held"] == 1
            assert "HELD-MESSAGE for you" not in user_texts(api.message_requests())
            # The user approves (Enter on "1. Yes"); the agent's Stop hook delivers the held message.
            subprocess.run(["tmux", "-L", socket, "send-keys", "-t", waiting["pane_id"], "Enter"], check=True)
            retry_until(
                lambda: tool_results(api.message_requests()), lambda r: any("sys" in x.split() for x in r), 60
            )
            retry_until(lambda: user_texts(api.message_requests()), lambda t: "HELD-MESSAGE for you" in t, 60)
            retry_until(
                lambda: _status(root, socket, env)["agent"],
                lambda a: a["held"] == 0 and a["state"] == "idle",
                60,
            )

            # 300 characters arrive as one message, exactly, and are answered.
            sent = coditect(root, "streams", "send", STREAM, LONG, "--json", "--socket", socket, env=env)
            assert sent.code == 0, sent.output
            assert sent.json()["data"]["deliveries"][0]["status"] == "delivered", sent.output
            # Claude Code reports the prompt (UserPromptSubmit) before it sends it to the API.
            retry_until(lambda: user_texts(api.message_requests()), lambda t: LONG in t, 60)
            # Its answer ends the turn (the Stop after this prompt, not an older one: it was submitted).
            retry_until(lambda: _status(root, socket, env)["agent"]["state"], lambda s: s == "idle", 60)

            # /exit ends Claude Code; the pane stays with its exit status.
            bye = coditect(root, "streams", "send", STREAM, "/exit", "--socket", socket, env=env)
            assert bye.code == 0, bye.output
            retry_until(lambda: log.seen[-1:], lambda s: s == ["exited 0"], 60)

        assert "blocked on dialog" not in log.seen, log.seen
        # The turn that asks for approval is working only while the model's answer arrives (a fraction of a
        # second with the fake API): a poll every 0.1 s may well miss it, so it is not required here.
        assert _in_order(log.seen, ["working", "idle", "waiting for approval", "idle", "exited 0"]), log.seen
        final = _status(root, socket, env)
        assert final["agent"]["state"] == "exited 0" and final["last_line"]

        # Restarted, Claude Code continues the conversation it had (and waits for the next message).
        again = coditect(root, "streams", "restart", STREAM, "--json", "--socket", socket, env=env)
        assert again.code == 0, again.output
        restarted = again.json()["data"]
        assert restarted["resumed"] is True and "--continue" in restarted["command"]
        retry_until(lambda: _status(root, socket, env)["agent"]["state"], lambda s: s == "idle", 60)
