"""Messages to agents: held while a pane shows an approval prompt, delivered after it; ``--force``; a dead
pane. A small shell "agent" plays the prompt: it asks, reads one answer, clears its screen, then records
every line it gets."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import coditect, retry_until
from libtmux.server import Server

from coditect_cli.errors import ExitCode
from coditect_cli.project import Project
from coditect_cli.services.agents import agent_states

ASKER = (
    'sh -c \'printf "Bash command: rm -rf build\\nDo you want to proceed?\\n"; read answer; '
    'printf "\\033[2J\\033[H"; echo answered $answer; exec cat > {worktree}/../got.txt\''
)


def _project(tmp: Path) -> Path:
    from coditect_cli.sandbox import build_sandbox

    lines = [
        "version: 1",
        "phase: talk",
        "project: demo",
        "schedule: {start: 2026-12-01, days: 10}",
        "repositories:",
        "  - {id: root, path: .}",
        "streams:",
        "  - {id: asker, terminal: 1, name: Asker, agent: dev, run: " + json.dumps(ASKER) + ",",
        "     work: [{repo: root, topic: asker, owns: [a/]}]}",
        "  - {id: quits, terminal: 2, name: Quits, agent: dev, run: 'sh -c \"exit 4\"',",
        "     work: [{repo: root, topic: quits, owns: [q/]}]}",
    ]
    source = tmp / "talk.yaml"
    source.write_text("\n".join(lines) + "\n")
    return build_sandbox(tmp / "sandbox", source).root


def test_a_message_for_an_agent_at_a_prompt_is_held_then_delivered(
    isolated_git: Path, tmp_path: Path, server: Server
) -> None:
    root = _project(tmp_path)
    sock = server.socket_name
    launched = coditect(root, "streams", "launch", "--no-attach", "--socket", sock)
    assert launched.code == 0, launched.output
    project = Project(root)
    asking = retry_until(
        lambda: agent_states(project, None, socket=sock)["asker"], lambda s: s.state == "waiting for approval"
    )
    assert asking.detail == "Bash command: rm -rf build: Do you want to proceed?"
    got = root / ".coditect" / "worktrees" / "talk" / "asker" / "got.txt"

    held = coditect(root, "streams", "send", "asker", "first message", "--json", "--socket", sock)
    assert held.code == 0, held.output
    assert held.json()["data"]["held"] == {"asker": held.json()["data"]["deliveries"][0]["detail"]}
    assert "Do you want to proceed?" in held.json()["data"]["deliveries"][0]["detail"]
    again = coditect(root, "streams", "send", "asker", "second message", "--socket", sock)
    assert again.code == 0 and "held asker" in again.stdout
    assert agent_states(project, None, socket=sock)["asker"].held == 2
    nothing = coditect(root, "streams", "flush", "--socket", sock, "--json")
    assert nothing.code == 0 and nothing.json()["data"]["deliveries"] == []  # still at the prompt

    # The person answers the prompt; the held messages then go in, in order, each on its own line.
    server.cmd("send-keys", "-t", asking.pane_id or "", "y", "Enter")
    retry_until(
        lambda: agent_states(project, None, socket=sock)["asker"].state, lambda s: s != "waiting for approval"
    )
    flushed = coditect(root, "streams", "flush", "asker", "--socket", sock, "--json")
    assert flushed.code == 0, flushed.output
    assert [d["status"] for d in flushed.json()["data"]["deliveries"]] == ["delivered", "delivered"]
    assert retry_until(lambda: got.read_text() if got.exists() else "", lambda t: t.count("\n") == 2) == (
        "first message\nsecond message\n"
    )
    assert agent_states(project, None, socket=sock)["asker"].held == 0

    # A dead pane: nothing to deliver to, exit 5 naming why.
    dead = coditect(root, "streams", "send", "quits", "hello", "--socket", sock)
    assert dead.code == ExitCode.UNAVAILABLE and "exited 4" in dead.output
    unknown = coditect(root, "streams", "flush", "nope", "--socket", sock)
    assert unknown.code == ExitCode.USAGE and "no stream 'nope'" in unknown.output


def test_force_types_into_a_prompt(isolated_git: Path, tmp_path: Path, server: Server) -> None:
    root = _project(tmp_path)
    sock = server.socket_name
    assert coditect(root, "streams", "launch", "--no-attach", "--socket", sock).code == 0
    project = Project(root)
    retry_until(
        lambda: agent_states(project, None, socket=sock)["asker"].state, lambda s: s == "waiting for approval"
    )
    forced = coditect(root, "streams", "send", "asker", "n", "--force", "--json", "--socket", sock)
    assert forced.code == 0 and forced.json()["data"]["deliveries"][0]["status"] == "delivered", forced.output
    # The Enter answered the prompt (what a message without --force must never do).
    retry_until(
        lambda: agent_states(project, None, socket=sock)["asker"].last_line, lambda line: line == "answered n"
    )


# An agent that reports each line it reads the way Claude Code's UserPromptSubmit hook does.
REPORTER = (
    "import hashlib, json, os, sys, time\n"
    "events, out = os.environ['CODITECT_EVENTS_FILE'], sys.argv[1]\n"
    "for line in sys.stdin:\n"
    "    text = line.rstrip('\\n')\n"
    "    open(out, 'a').write(text + '\\n')\n"
    "    sha = hashlib.sha256(text.strip().encode()).hexdigest()[:16]\n"
    "    event = {'t': time.time(), 'event': 'UserPromptSubmit', 'prompt_sha': sha}\n"
    "    open(events, 'a').write(json.dumps(event) + '\\n')\n"
)


def test_a_busy_hook_agent_gets_one_message_per_turn_never_two_glued(
    isolated_git: Path, tmp_path: Path, server: Server
) -> None:
    import sys
    import time

    from coditect_cli.agents.events import LAUNCH, append
    from coditect_cli.sandbox import build_sandbox
    from coditect_cli.services.session import agent_file
    from coditect_cli.services.setup import project_common_dir

    script = tmp_path / "reporter.py"
    script.write_text(REPORTER)
    got = tmp_path / "got.txt"
    run = json.dumps(f"{sys.executable} {script} {got}")
    source = tmp_path / "talk.yaml"
    source.write_text(
        "version: 1\nphase: talk\nproject: demo\nschedule: {start: 2026-12-01, days: 10}\n"
        "repositories:\n  - {id: root, path: .}\nstreams:\n"
        f"  - {{id: busy, terminal: 1, name: Busy, agent: dev, run: {run}, work: [{{repo: root, topic: b, owns: [b/]}}]}}\n"
    )
    root = build_sandbox(tmp_path / "sandbox", source).root
    sock = server.socket_name
    assert coditect(root, "streams", "launch", "--no-attach", "--socket", sock).code == 0
    project = Project(root)
    events = agent_file(project_common_dir(project), "talk", "busy")
    # The pane reports as a hook agent (as a Claude Code pane does) that is in the middle of a turn.
    append(events, {"t": time.time(), "event": LAUNCH, "kind": "claude"})
    append(events, {"t": time.time(), "event": "UserPromptSubmit"})
    assert agent_states(project, None, socket=sock)["busy"].state == "working"

    for text in ("first message", "second message"):
        sent = coditect(root, "streams", "send", "busy", text, "--json", "--socket", sock)
        assert sent.code == 0, sent.output
        assert [d["status"] for d in sent.json()["data"]["deliveries"]] == ["queued"]
    assert not got.exists()  # nothing typed into a working agent
    assert agent_states(project, None, socket=sock)["busy"].held == 2

    for expected, left in (("first message\n", 1), ("first message\nsecond message\n", 0)):
        append(events, {"t": time.time(), "event": "Stop"})  # the turn ends: its Stop hook flushes
        flushed = coditect(root, "streams", "flush", "busy", "--socket", sock, "--json")
        assert [d["status"] for d in flushed.json()["data"]["deliveries"]] == ["delivered"], flushed.output
        assert (
            retry_until(lambda: got.read_text() if got.exists() else "", lambda t, e=expected: t == e)
            == expected
        )
        assert agent_states(project, None, socket=sock)["busy"].held == left
