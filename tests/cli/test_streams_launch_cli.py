"""``coditect streams launch|status|send|stop|attach`` end to end: wiring, JSON envelopes and exit codes.

Runs the CLI in-process against a sandbox with a small manifest and a private tmux server (libtmux's
``server`` fixture); the socket is given once (through ``CODITECT_TMUX_SOCKET``) and found again from the
state store by the later commands.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import CliResult, call_main, project_with, retry_until, session_of
from libtmux.server import Server

from coditect_cli.adapters.tmux import Tmux
from coditect_cli.errors import ExitCode


def cli(root: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> CliResult:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return call_main(args, capsys)


def data(result: CliResult) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def test_launch_status_send_stop_through_the_cli(
    isolated_git: Path,
    tmp_path: Path,
    server: Server,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    typed = tmp_path / "typed"
    typed.mkdir()
    root = project_with(tmp_path, {"web": f"cat > {typed}/{{stream}}.txt", "api": "sh -c 'exit 3'"})
    session = session_of(root, "cli-demo", "p1")
    monkeypatch.setenv("CODITECT_TMUX_SOCKET", server.socket_name)

    # stdout is not a terminal here: launch does not try to attach.
    launched = cli(root, ["streams", "launch", "--json"], capsys)
    assert launched.code == 0, launched.output
    env = data(launched)
    assert env["command"] == "streams launch" and env["ok"] is True
    assert env["data"]["session"] == session and env["data"]["socket"] == server.socket_name
    assert [p["state"] for p in env["data"]["panes"]] == ["started", "started"]
    assert env["data"]["setup_steps"] and env["data"]["attached"] is False
    assert env["data"]["attach_command"] == f"tmux -L {server.socket_name} attach -t ={session}"

    # From here on the socket comes from the state store.
    monkeypatch.delenv("CODITECT_TMUX_SOCKET")

    def status() -> dict[str, Any]:
        result = cli(root, ["streams", "status", "--json"], capsys)
        assert result.code == 0, result.output
        return {s["stream"]: s for s in data(result)["data"]["streams"]}

    rows = retry_until(status, lambda r: r["api"]["exit_status"] is not None)
    assert (rows["api"]["state"], rows["api"]["exit_status"]) == ("dead", 3)
    assert rows["web"]["state"] == "running" and rows["web"]["worktrees"][0]["unpushed"] == 0

    sent = cli(root, ["streams", "send", "web", "it's $1; done;"], capsys)
    assert sent.code == 0, sent.output
    assert "delivered web" in sent.stdout
    assert (
        retry_until(lambda: (typed / "web.txt").read_text(), lambda t: t.endswith("\n")) == "it's $1; done;\n"
    )
    unknown = cli(root, ["streams", "send", "nope", "x"], capsys)
    assert unknown.code == ExitCode.USAGE and "no stream 'nope'" in unknown.output

    human = cli(root, ["streams", "status"], capsys)
    assert human.code == 0 and "exited 3" in human.stdout and "working" in human.stdout

    # A file in the way: --remove-worktrees refuses (exit 4), naming it; nothing is stopped.
    draft = root / ".coditect/worktrees/p1/web/root/lanes/web/draft.txt"
    draft.parent.mkdir(parents=True)
    draft.write_text("draft\n")
    refused = cli(root, ["streams", "stop", "--remove-worktrees", "--json"], capsys)
    assert refused.code == ExitCode.REFUSED
    envelope = data(refused)
    assert envelope["error"]["code"] == "refused"
    assert [p["message"] for p in envelope["problems"]] == ["uncommitted: ?? lanes/web/draft.txt"]
    assert len(Tmux(server.socket_name).session_panes(session)) == 2

    stopped = cli(root, ["streams", "stop", "--json"], capsys)
    assert stopped.code == 0, stopped.output
    assert data(stopped)["data"]["killed"] is True and data(stopped)["data"]["removed_worktrees"] == []
    assert [w["path"] for w in data(stopped)["data"]["worktrees_with_work"]] == [str(draft.parents[2])]
    assert Tmux(server.socket_name).session_panes(session) == []
    assert draft.exists()
    after = status()
    assert {s["state"] for s in after.values()} == {"missing"}

    gone = cli(root, ["streams", "send", "all", "x"], capsys)
    assert gone.code == ExitCode.UNAVAILABLE and f"no tmux session {session}" in gone.output


def test_missing_agent_program_exits_5_listing_every_stream(
    isolated_git: Path, tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project_with(
        tmp_path, {"a": "no-such-agent-1", "b": "sleep 60", "c": "./bin/no-such-agent-2 {stream}"}
    )
    result = cli(root, ["streams", "launch", "--socket", server.socket_name, "--no-attach", "--json"], capsys)
    assert result.code == ExitCode.UNAVAILABLE
    envelope = data(result)
    assert envelope["error"]["code"] == "unavailable"
    assert [p["message"] for p in envelope["problems"]] == [
        "stream a: `no-such-agent-1` is not installed or not on PATH",
        "stream c: `./bin/no-such-agent-2` is not installed or not on PATH",
    ]
    assert Tmux(server.socket_name).panes() == []
    human = cli(root, ["streams", "launch", "--socket", server.socket_name], capsys)
    assert human.code == ExitCode.UNAVAILABLE
    assert "2 stream(s) cannot start their agent" in human.stderr and "stream c:" in human.stderr


def test_launch_dry_run_bad_template_and_attach_without_a_terminal(
    isolated_git: Path,
    tmp_path: Path,
    server: Server,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = project_with(tmp_path, {"a": "sleep 60"})
    session = session_of(root, "cli-demo", "p1")
    dry = cli(root, ["streams", "launch", "--socket", server.socket_name, "--dry-run", "--day", "2"], capsys)
    assert dry.code == 0, dry.output
    assert f"tmux new-session -d -s {session} " in dry.stdout and "day 2" in dry.stdout
    assert Tmux(server.socket_name).panes() == []
    bad = cli(root, ["streams", "launch", "--socket", server.socket_name, "--agent", "run {task}"], capsys)
    assert bad.code == ExitCode.USAGE and "unknown placeholder {task}" in bad.output
    attach = cli(root, ["streams", "attach", "--socket", server.socket_name], capsys)
    assert attach.code == ExitCode.UNAVAILABLE and f"no tmux session {session} " in attach.output
    monkeypatch.delenv("TMUX", raising=False)
    asked = cli(root, ["streams", "launch", "--socket", server.socket_name, "--attach", "--json"], capsys)
    assert asked.code == 0, asked.output
    assert data(asked)["data"]["attach_note"] == "not attaching: stdin is not a terminal"
    attach = cli(root, ["streams", "attach", "--socket", server.socket_name], capsys)
    assert attach.code == ExitCode.USAGE and "needs a terminal" in attach.output  # stdin is no terminal here
    described = cli(root, ["streams", "attach", "--json"], capsys)
    assert described.code == 0, described.output
    assert data(described)["data"]["attach_command"] == f"tmux -L {server.socket_name} attach -t ={session}"


def test_help_imports_neither_libtmux_nor_the_tmux_adapter() -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "coditect_cli", "streams", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "launch" in done.stdout and "stop" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.startswith(("libtmux", "coditect_cli.adapters.tmux"))}
