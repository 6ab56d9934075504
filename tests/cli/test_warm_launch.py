"""``streams launch`` served by the warm server (coditect_cli.warm, coditect_cli.handoff).

Real processes: `python -m coditect_cli` as a user runs it, the warm server it starts, a private tmux server
(libtmux's ``server`` fixture, plus a second one to compare with), and for the attach a pseudo-terminal that
is the caller's controlling terminal.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

from libtmux.server import Server

from tests.helpers import (
    alive,
    kill_tmux_server,
    project_with,
    retry_until,
    run_cli,
    served,
    server_pid,
    session_of,
)

PANE_FORMAT = (
    "#{session_name}|#{window_index}|#{pane_index}|#{pane_title}|#{pane_current_path}|#{@coditect_stream}"
)


def _panes(socket: str) -> list[str]:
    done = subprocess.run(
        ["tmux", "-L", socket, "list-panes", "-a", "-F", PANE_FORMAT],
        capture_output=True,
        text=True,
        check=False,
    )
    return sorted(done.stdout.splitlines())


def _origin_branches(root: Path) -> list[str]:
    done = subprocess.run(
        ["git", "ls-remote", "--heads", "origin"], cwd=root, capture_output=True, text=True, check=True
    )
    return sorted(line.split("refs/heads/", 1)[1] for line in done.stdout.splitlines())


def test_a_served_launch_builds_the_session_an_in_process_one_builds(
    tmp_path: Path, served_env: dict[str, str], server: Server
) -> None:
    root = project_with(tmp_path, {"web": "sleep 600", "api": "sleep 600"})
    other = f"{server.socket_name}-alone"
    try:
        # First run: no server yet. It sets the phase up (pushing) in-process, and starts the server.
        first = run_cli(
            ["streams", "launch", "--no-attach", "--json", "--verbose", "-L", other], root, env=served_env
        )
        assert first.code == 0 and not served(first), first.stderr
        server_pid(served_env)
        expected = _panes(other)
        assert len(expected) == 2
        kill_tmux_server(other)
        alone = run_cli(
            ["streams", "launch", "--no-attach", "--json", "-L", other],
            root,
            env={**served_env, "CODITECT_SERVER": "0"},
        )
        launched = run_cli(
            ["streams", "launch", "--no-attach", "--json", "--verbose", "-L", server.socket_name],
            root,
            env=served_env,
        )
        assert served(launched) and launched.code == 0, launched.stderr
        assert "running here instead" not in launched.stderr
        # The same panes (titles, directories, stream options) as the in-process launch made.
        assert _panes(server.socket_name) == expected == _panes(other)
        ours, theirs = json.loads(launched.stdout)["data"], json.loads(alone.stdout)["data"]
        assert [(p["stream"], p["state"]) for p in ours["panes"]] == [("web", "started"), ("api", "started")]
        assert [(p["stream"], p["state"]) for p in theirs["panes"]] == [
            (p["stream"], p["state"]) for p in ours["panes"]
        ]
        # Launched again: nothing to add, and the worker says so.
        again = run_cli(["streams", "launch", "--no-attach", "--json", "--verbose"], root, env=served_env)
        assert served(again) and again.code == 0
        assert [p["state"] for p in json.loads(again.stdout)["data"]["panes"]] == ["running", "running"]
    finally:
        kill_tmux_server(other)


def test_a_launch_that_would_push_runs_in_the_callers_process(
    tmp_path: Path, served_env: dict[str, str], server: Server
) -> None:
    root = project_with(tmp_path, {"web": "sleep 600"})
    run_cli(["status", "--json"], root, env=served_env)  # starts a server
    server_pid(served_env)
    assert _origin_branches(root) == ["develop", "main"]
    # Setup with a push may prompt (credentials, a passphrase): the worker hands it back untouched.
    pushed = run_cli(
        ["streams", "launch", "--no-attach", "--verbose", "-L", server.socket_name], root, env=served_env
    )
    assert pushed.code == 0, pushed.stderr
    assert "running here instead (setting up with a push" in pushed.stderr
    assert "p1-integration" in _origin_branches(root)
    assert len(_panes(server.socket_name)) == 1


def test_a_launch_without_push_is_served_setup_included(
    tmp_path: Path, served_env: dict[str, str], server: Server
) -> None:
    root = project_with(tmp_path, {"web": "sleep 600"})
    run_cli(["status", "--json"], root, env=served_env)
    server_pid(served_env)
    local = run_cli(
        ["streams", "launch", "--no-attach", "--no-push", "--json", "--verbose", "-L", server.socket_name],
        root,
        env=served_env,
    )
    assert served(local) and local.code == 0, local.stderr
    assert json.loads(local.stdout)["data"]["setup_steps"]
    assert _origin_branches(root) == ["develop", "main"]  # nothing pushed
    branches = subprocess.run(
        ["git", "branch", "--format=%(refname:short)"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "p1-integration" in branches


def test_the_attach_is_run_by_the_caller_itself(
    tmp_path: Path, served_env: dict[str, str], server: Server
) -> None:
    root = project_with(tmp_path, {"web": "sleep 600"})
    argv = ["streams", "launch", "--no-push", "--verbose", "-L", server.socket_name]
    run_cli(["status", "--json"], root, env=served_env)
    server_pid(served_env)

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "TMUX"}
    env.update({**served_env, "TERM": "xterm-256color"})
    # In a session of its own whose controlling terminal is the pty (opened after setsid), then coditect
    # in the same process (exec keeps the pid).
    become = (
        "import os, sys; os.setsid(); fd = os.open(sys.argv[1], os.O_RDWR); "
        "[os.dup2(fd, n) for n in range(3)]; os.close(fd); "
        "os.execv(sys.executable, [sys.executable, '-m', 'coditect_cli', *sys.argv[2:]])"
    )
    caller = subprocess.Popen(
        [sys.executable, "-c", become, os.ttyname(follower), *argv],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen = bytearray()

    def drain() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(leader, 65536):
                seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        # The tmux client attached to the session is the caller's own process (it replaced itself).
        clients = retry_until(
            lambda: subprocess.run(
                ["tmux", "-L", server.socket_name, "list-clients", "-F", "#{client_pid}"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split(),
            lambda pids: bool(pids),
        )
        assert clients == [str(caller.pid)], bytes(seen).decode(errors="replace")
        assert b"run by the warm server" in seen
        session = session_of(root, "cli-demo", "p1")
        subprocess.run(["tmux", "-L", server.socket_name, "detach-client", "-s", session], check=False)
        assert caller.wait(timeout=60) == 0
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()
        os.close(follower)  # kept open until now: a read on the leader would fail before the caller opened it
        reader.join(timeout=5)  # its read fails once no follower is open
        os.close(leader)
    assert not alive(caller.pid)
