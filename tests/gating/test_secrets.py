"""Secrets and injection on a real project, real tmux and real gates (issue 11).

A token canary: GH_TOKEN, GITHUB_TOKEN and ANTHROPIC_API_KEY hold unique values while panes are launched, the
evening sync runs the gates and a checkpoint runs its gates; then every pane's environment (tmux's and the
process's own), every pane log, gate log, report, the store and every process's command line are searched
for them. And text typed into a ``shell`` pane by ``sync morning --send`` never runs, whatever a deliverable
title or a blocker reason (newlines included) holds.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from gating_helpers import MakeTiny, Tiny
from helpers import Sampler, coditect, command_lines, kill_tmux_server, retry_until

from coditect_cli.adapters.tmux import Tmux
from coditect_cli.project import Project
from coditect_cli.services import launch

SECRETS = ("GH_TOKEN", "GITHUB_TOKEN", "ANTHROPIC_API_KEY")


@pytest.fixture
def private_socket() -> Iterator[str]:
    """A tmux socket no server runs on yet: coditect starts the server itself (from its own environment)."""
    name = f"coditect-secrets-{uuid.uuid4().hex[:10]}"
    yield name
    kill_tmux_server(name)


def edit_manifest(tiny: Tiny, old: str, new: str, *, count: int = 1) -> None:
    path = tiny.root / "workstreams" / "phase-1.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= count, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def files_under(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots for p in root.rglob("*") if p.is_file()}


def environ(pid: int | None) -> bytes:
    assert pid is not None
    return Path(f"/proc/{pid}/environ").read_bytes()


def test_no_credential_reaches_a_pane_a_gate_a_log_a_report_or_the_store(
    make_tiny: MakeTiny, private_socket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coditect_cli.services.session import agent_file, log_path

    tiny, _ = make_tiny(2)
    canaries = {name: f"canary-{name.lower()}-{uuid.uuid4().hex}" for name in SECRETS}
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    # s2 asks for ANTHROPIC_API_KEY on purpose; every gate prints its whole environment first.
    edit_manifest(tiny, "  - id: s2\n", "  - id: s2\n    pass_env: [ANTHROPIC_API_KEY]\n")
    edit_manifest(tiny, 'run: "python3 gate.py"', 'run: "env; python3 gate.py"', count=2)
    monkeypatch.chdir(tiny.root)

    launched = launch.launch(
        Project(tiny.root), "phase-1", attach=False, agent="env; exec sleep 600", socket=private_socket, day=1
    )
    tmux = Tmux(private_socket)
    common = tiny.root / ".git"
    logs = {s: log_path(common, "phase-1", s) for s in ("s1", "s2")}
    for log in logs.values():  # each agent printed its environment into its pane log
        retry_until(
            lambda log=log: log.read_text() if log.exists() else "", lambda t: "CODITECT_STREAM=" in t
        )

    evening = coditect(tiny.root, "sync", "evening", "--run-gates", "--socket", private_socket, env=canaries)
    assert evening.code == 0, evening.output
    checkpoint = coditect(tiny.root, "checkpoint", "1", "--socket", private_socket, "--json", env=canaries)
    assert checkpoint.code == 0, checkpoint.output
    assert checkpoint.json()["data"]["status"] == "passed"

    panes = {p.stream: p for p in tmux.panes()}
    assert set(panes) == {"s1", "s2"}
    pane_env = {s: environ(p.pane_pid) for s, p in panes.items()}
    tmux_env = {
        "global": tmux.run(["show-environment", "-g"]).stdout,
        "session": tmux.run(["show-environment", "-t", f"={launched.session}"]).stdout,
    }
    files = files_under(common / "coditect", tiny.root / "workstreams" / "reports")
    gate_logs = [text for path, text in files.items() if "logs" in path.parts and path.suffix == ".log"]
    assert any(b"PATH=" in text and b"CODITECT_GATE=" in text for text in gate_logs)  # gates printed theirs
    assert any(b"GATE_COUNTER=" in text for text in gate_logs)  # the manifest's top-level pass_env
    assert any(path.name == "state.db" for path in files) and any(p.suffix == ".md" for p in files)
    processes = command_lines()
    env_file = agent_file(common, "phase-1", "s2", ".env")

    for name, value in canaries.items():
        secret = value.encode()
        leaks = [f"tmux {where} environment" for where, text in tmux_env.items() if value in text]
        leaks += [str(path) for path, text in files.items() if secret in text]
        leaks += [f"command line of pid {pid}" for pid, line in processes.items() if secret in line]
        leaks += [
            f"output of {cmd}"
            for cmd, r in (("evening", evening), ("checkpoint", checkpoint))
            if value in r.output
        ]
        leaks += [f"{s}'s pane environment" for s, env in pane_env.items() if secret in env]
        # Passed on purpose to s2 only: its agent has it (and printed it with `env` into its own pane log),
        # through its 0600 environment file.
        expected = (
            {"s2's pane environment", str(logs["s2"]), str(env_file)}
            if name == "ANTHROPIC_API_KEY"
            else set()
        )
        assert set(leaks) == expected, name
    assert env_file.stat().st_mode & 0o077 == 0
    assert f"ANTHROPIC_API_KEY={canaries['ANTHROPIC_API_KEY']}".encode() in pane_env["s2"].split(b"\0")
    assert not any(canaries["ANTHROPIC_API_KEY"] in command for command in launched.commands)


def test_text_sent_to_a_shell_pane_never_runs_whatever_newlines_it_holds(
    make_tiny: MakeTiny, private_socket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny, _ = make_tiny(2)
    title_marker, reason_marker, done = tmp_path / "from-title", tmp_path / "from-reason", tmp_path / "done"
    # A deliverable title tries to run a command on its line (the manifest refuses a newline in a title);
    # a blocker reason, which any agent can set with `coditect block`, tries a second line.
    edit_manifest(
        tiny,
        "  - id: s1\n",
        f'  - id: s1\n    deliverables: [{{id: d1, days: 1-10, title: "Build it; touch {title_marker} $(touch {title_marker})"}}]\n',
    )
    monkeypatch.setenv("SHELL", "/bin/bash")
    monkeypatch.chdir(tiny.root)
    launch.launch(Project(tiny.root), "phase-1", attach=False, agent=None, socket=private_socket, day=2)
    tmux = Tmux(private_socket)
    pane = retry_until(lambda: {p.stream: p for p in tmux.panes()}, lambda p: "s1" in p)["s1"]
    blocked = coditect(tiny.root, "block", "s1", f"waiting\ntouch {reason_marker}\x1b[2J")
    assert blocked.code == 0, blocked.output

    morning = coditect(
        tiny.root, "sync", "morning", "--day", "2", "--send", "--socket", private_socket, "--json"
    )
    assert morning.code == 0, morning.output

    # The test itself now types a real command: once it ran, bash has read every line typed before it.
    tmux.run(
        ["send-keys", "-t", pane.pane_id, "-l", "--", f"touch {done}"],
        ["send-keys", "-t", pane.pane_id, "Enter"],
    )
    retry_until(done.exists, bool)
    assert not title_marker.exists() and not reason_marker.exists()
    screen = tmux.run(["capture-pane", "-p", "-J", "-t", pane.pane_id, "-S", "-200"]).stdout
    # Each typed line starts with `#` (after the shell's prompt, or on a line of its own in a pasted block).
    typed = [m.group(1) for m in re.finditer(r"(?:^|[$#>] )(# .*)$", screen, re.MULTILINE)]
    assert any(line.startswith("# [coditect morning sync, day 2]") for line in typed), screen
    assert any(
        line.startswith("# [coditect morning sync") and f"touch {title_marker}" in line for line in typed
    )
    assert any(line.startswith(f"# touch {reason_marker}") for line in typed), screen  # a comment of its own
    assert "\x1b" not in screen and "[2J" not in screen


def test_escape_sequences_in_commit_subjects_never_reach_the_terminal_or_the_report(
    make_tiny: MakeTiny,
) -> None:
    tiny, _ = make_tiny(2)
    subject = "feat(s1): \x1b]0;owned\x07retitle \x1b[2J\x1b[31mred\x9b0m"
    tiny.commit(1, "s1/more.txt", "more\n", subject)
    morning = coditect(tiny.root, "sync", "morning", "--day", "2")
    assert morning.code == 0, morning.output
    report = (tiny.root / "workstreams" / "reports" / "phase-1" / "day-02-morning.md").read_text()
    assert "\\x1b]0;owned\\x07retitle \\x1b[2J\\x1b[31mred\\x9b0m" in report
    assert (
        "\\x1b]0;owned" in morning.stdout and "\\x1b[2J\\x1b[31mred\\x9b0m" in morning.stdout
    )  # rich drops BEL
    for shown in (morning.stdout, report):
        assert not any(c in shown for c in "\x1b\x07\x9b")


def test_a_streams_env_values_reach_its_pane_through_a_0600_file_never_a_command_line(
    make_tiny: MakeTiny, private_socket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coditect_cli.services.session import agent_file, log_path

    tiny, _ = make_tiny(2)
    canary = f"canary-env-{uuid.uuid4().hex}"
    edit_manifest(tiny, "  - id: s1\n", f'  - id: s1\n    env: {{API_SECRET: "{canary}", PLAIN: "a b"}}\n')
    common = tiny.root / ".git"
    log = log_path(common, "phase-1", "s1")
    printed = f"API_SECRET={canary}"
    tmux = Tmux(private_socket)
    launch_args = ("--socket", private_socket, "--agent", "env; exec sleep 600", "--day", "1")

    with Sampler(canary.encode()) as ps:
        dry = coditect(tiny.root, "--verbose", "streams", "launch", *launch_args, "--dry-run", "--json")
        launched = coditect(tiny.root, "--verbose", "streams", "launch", *launch_args, "--json")
        assert launched.code == 0, launched.output
        retry_until(lambda: log.read_text() if log.exists() else "", lambda t: printed in t)
        first = {p.stream: p for p in tmux.panes()}["s1"].pane_pid
        # A restart starts the manifest's `run: shell` again in the same pane: it gets the value too.
        restarted = coditect(tiny.root, "--verbose", "streams", "restart", "s1", "--force")
        assert restarted.code == 0, restarted.output
        pane = retry_until(lambda: {p.stream: p for p in tmux.panes()}["s1"], lambda p: p.pane_pid != first)
        assert f"{printed}\0".encode() in environ(pane.pane_pid)  # the agent's own environment
        monkeypatch.chdir(tiny.root)
        codes = launch.run_headless(Project(tiny.root), "phase-1", agent="env", day=1)
        assert codes == {"s1": 0, "s2": 0}
        assert printed in log.read_text()  # the headless run's output
    assert ps.hits == {}
    assert dry.code == 0 and "tmux_commands" in dry.output and "DEBUG" not in dry.stdout

    session = launched.json()["data"]["session"]
    where = {
        "--verbose and --json output": dry.output + launched.output + restarted.output,
        "tmux's global environment": tmux.run(["show-environment", "-g"]).stdout,
        "the session's environment": tmux.run(["show-environment", "-t", f"={session}"]).stdout,
        "the panes' start commands": tmux.run(["list-panes", "-a", "-F", "#{pane_start_command}"]).stdout,
    }
    assert [name for name, text in where.items() if canary in text] == []
    assert "$ tmux " in launched.stderr and "API_SECRET" not in launched.stderr  # verbose logged the commands
    env_file = agent_file(common, "phase-1", "s1", ".env")
    assert env_file.stat().st_mode & 0o777 == 0o600 and canary in env_file.read_text()
