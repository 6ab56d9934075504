"""An agent's state from its own events and its screen; the event recorder its hooks run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import retry_until

from coditect_cli.agents import events as events_module
from coditect_cli.agents.events import LAUNCH, AgentEvent, read_events, text_sha
from coditect_cli.agents.screen import last_line, read_screen
from coditect_cli.domain.agent_state import decide_state
from coditect_cli.domain.launch import PaneState

RECORDER = Path(events_module.__file__)

APPROVAL = """● Listing 1 directory… (ctrl+o to expand)
────────────────────────────────────────
 Bash command
 Tip: auto mode handles these prompts for you
 look around
╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌
 ls /proc/self/..
╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌
 Do you want to proceed?
 ❯ 1. Yes
   2. No
 Esc to cancel · Tab to amend
"""
TRUST = """ Accessing workspace:
 /tmp/p
 Quick safety check: Is this a project you created or one you trust? (Like your own code)
 ❯ 1. Yes, I trust this folder
   2. No, exit
"""
WORKING = "❯ do it\n✻ Pondering… (3s · esc to interrupt)\n"
IDLE = "● Done.\n────────\n❯ \n────────\n  ⏵⏵ accept edits on (shift+tab to cycle)\n"


def pane(*, dead: bool = False, status: int | None = None, command: str = "claude") -> PaneState:
    return PaneState("s", "@1", 0, "w", "%1", 10, dead, status, None, command, "/tmp", "", "api", "", "/sock")


def ev(name: str, t: float = 1.0, **kw: str) -> AgentEvent:
    return AgentEvent(t=t, event=name, **kw)


class Case(NamedTuple):
    test_id: str
    kind: str
    pane: PaneState | None
    events: list[AgentEvent]
    screen: str | None
    label: str
    detail: str | None = None


CASES = [
    Case("missing", "claude", None, [], None, "missing"),
    Case("exited", "claude", pane(dead=True, status=0), [ev("Stop")], "bye\n", "exited 0"),
    Case("dialog-first", "claude", pane(), [], TRUST, "blocked on dialog", "Quick safety check"),
    Case("starting", "claude", pane(), [ev(LAUNCH)], "", "starting"),
    Case("prompt-submitted", "claude", pane(), [ev("UserPromptSubmit")], WORKING, "working"),
    Case("tool-ran", "claude", pane(), [ev("UserPromptSubmit"), ev("PostToolUse")], "", "working"),
    Case(
        "approval",
        "claude",
        pane(),
        [ev("UserPromptSubmit"), ev("Notification", type="permission_prompt", message="needs you")],
        APPROVAL,
        "waiting for approval",
        "ls /proc/self/..",
    ),
    Case(
        "approval-answered",
        "claude",
        pane(),
        [ev("Notification", type="permission_prompt")],
        IDLE,
        "idle",
    ),
    Case("turn-done", "claude", pane(), [ev("UserPromptSubmit"), ev("Stop")], IDLE, "idle"),
    Case("resumed", "claude", pane(), [ev("SessionStart", type="resume")], IDLE, "idle"),
    Case("fresh-start", "claude", pane(), [ev("SessionStart", type="startup")], "", "starting"),
    Case("codex-turn", "codex", pane(command="codex"), [ev("agent-turn-complete")], "", "idle"),
    Case("codex-busy", "codex", pane(command="codex"), [], WORKING, "working"),
    Case("shell-idle", "shell", pane(command="bash"), [], "$ ", "idle"),
    Case("shell-busy", "shell", pane(command="vim"), [], "", "working", "vim"),
    Case("template", "template", pane(command="my-agent"), [], "thinking\n", "unknown"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.test_id for c in CASES])
def test_decide_state(case: Case) -> None:
    state = decide_state("api", case.kind, case.pane, case.events, case.screen)
    assert state.label == case.label
    if case.detail is not None:
        assert case.detail in (state.detail or "")
    assert state.accepts_text == (case.label in {"starting", "working", "idle", "unknown"})


def test_screen_reading() -> None:
    signal = read_screen(APPROVAL)
    assert signal.kind == "approval"
    assert signal.text == "Bash command · look around · ls /proc/self/..: Do you want to proceed?"
    assert read_screen(TRUST).kind == "dialog" and read_screen(WORKING).kind == "working"
    assert read_screen(IDLE).kind == "none"
    assert last_line(IDLE) == "⏵⏵ accept edits on (shift+tab to cycle)"
    assert last_line("failing\n\nPane is dead (status 7, Thu Dec 3 2026)\n") == "failing"


def record(path: Path, payload: object, *, argv: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the recorder as Claude Code (stdin) or Codex (an argument) would."""
    text = json.dumps(payload)
    extra = [text] if argv else []
    return subprocess.run(
        [sys.executable, "-I", "-S", str(RECORDER), str(path), *extra],
        input="" if argv else text,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_recorder_appends_compact_events_and_a_launch_resets_them(tmp_path: Path) -> None:
    events = tmp_path / "api.events"
    assert (
        record(
            events, {"hook_event_name": "UserPromptSubmit", "prompt": "hi there", "session_id": "S1"}
        ).returncode
        == 0
    )
    record(
        events, {"hook_event_name": "Notification", "notification_type": "permission_prompt", "message": "m"}
    )
    assert record(events, {"type": "agent-turn-complete", "thread-id": "T"}, argv=True).returncode == 0
    got = read_events(events)
    assert [e.event for e in got] == ["UserPromptSubmit", "Notification", "agent-turn-complete"]
    assert got[0].prompt_sha == text_sha("hi there") and got[0].session == "S1"
    assert "hi there" not in events.read_text()  # the prompt itself is never stored
    assert got[1].type == "permission_prompt" and got[2].session == "T"
    events_module.append(events, {"t": 9.0, "event": LAUNCH, "kind": "claude"})
    assert [(e.event, e.kind) for e in read_events(events)] == [(LAUNCH, "claude")]


def test_an_event_for_a_stream_that_is_gone_is_reported_not_raised(tmp_path: Path) -> None:
    done = record(tmp_path / "gone" / "api.events", {"hook_event_name": "Stop"})
    assert done.returncode == 1 and "no stream" in done.stderr and "Traceback" not in done.stderr
    bad = subprocess.run(
        [sys.executable, "-I", "-S", str(RECORDER), str(tmp_path / "x.events")],
        input="{not json",
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1 and "cannot record" in bad.stderr


def test_a_turn_end_starts_the_flush_when_messages_are_held(tmp_path: Path) -> None:
    events = tmp_path / "api.events"
    marker = tmp_path / "flushed"
    events.with_suffix(".flush").write_text(json.dumps(["/bin/sh", "-c", f"echo $0 > {marker}", "api"]))
    record(events, {"hook_event_name": "Stop"})
    assert not marker.exists()  # nothing held: nothing started
    events.with_suffix(".held").touch()
    record(events, {"hook_event_name": "Stop"})
    assert retry_until(lambda: marker.read_text() if marker.exists() else "", bool) == "api\n"
