"""What the day's commands do with the agents' tmux panes, on private tmux servers.

- ``sync morning --send``: each pane's agent is ``cat > <file>`` (a ``shell`` stream's login shell is a
  script doing the same), so each file holds exactly what was typed into that pane: its own stream's
  section on one line, a ``shell`` stream's as a ``# `` comment;
- dead panes: an agent that exited 3 or was killed is a blocker with a restart action, one that exited 0
  finished its work and is not; ``status`` shows each agent's state; a closed pane is reported too.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from daykit import (
    PHASE1,
    SESSION,
    STREAM_ORDER,
    blockers_of,
    build,
    by_stream,
    cli,
    cli_json,
    commit,
    edited_manifest,
    md_section,
)
from helpers import kill_tmux_server, retry_until

from coditect_cli.adapters.tmux import Tmux
from coditect_cli.project import Project
from coditect_cli.services import launch


class Launched(NamedTuple):
    root: Path
    socket: str
    typed: Path  # where each cat-agent writes what its pane received: <stream>.txt


def _launched(
    tmp: Path,
    socket: str,
    *,
    runs: dict[str, str] | None = None,
    agent: str | None = None,
    shell: Path | None = None,
) -> Launched:
    """Launch the phase-1 sandbox (setup included) on day 2: each stream's ``run`` from ``runs``, or every
    stream with the ``agent`` template; ``{typed}`` in either is the directory the cat agents write to."""
    typed = tmp / "typed"
    typed.mkdir(parents=True)

    def edit(data: dict[str, Any]) -> None:
        for stream in data["streams"]:
            stream["run"] = (runs or {}).get(stream["id"], "claude").format(typed=typed)

    root = build(tmp, edited_manifest(edit), setup=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        if shell is not None:
            mp.setenv("SHELL", str(shell))  # the login shell of `run: shell` streams
        template = agent.format(typed=typed) if agent else None
        launch.launch(Project(root), PHASE1, attach=False, agent=template, socket=socket, day=2)
    return Launched(root, socket, typed)


def panes(socket: str) -> dict[str, Any]:
    return {p.stream: p for p in Tmux(socket).panes() if p.session.startswith(f"{SESSION}-")}


def received(typed: Path, stream: str) -> str:
    """What ``stream``'s pane received, once a whole line arrived."""
    path = typed / f"{stream}.txt"
    return retry_until(lambda: path.read_text() if path.exists() else "", lambda t: t.endswith("\n"))


@pytest.fixture(scope="module")
def socket_name() -> Iterator[str]:
    name = f"coditect-day-panes-{uuid.uuid4().hex[:8]}"
    yield name
    kill_tmux_server(name)


@pytest.fixture(scope="module")
def dead_socket() -> Iterator[str]:
    name = f"coditect-day-dead-{uuid.uuid4().hex[:8]}"
    yield name
    kill_tmux_server(name)


CAT = "cat > {typed}/{{stream}}.txt"


# ----------------------------------------------------------------------------------------------- --send


@pytest.fixture(scope="module")
def alive(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory, socket_name: str) -> Launched:
    """Four cat agents and one ``shell`` stream (docs) whose login shell is a cat too; backend committed."""
    tmp = tmp_path_factory.mktemp("send")
    shell = tmp / "login-shell"
    shell.write_text(f"#!/bin/sh\nexec cat > {tmp}/typed/docs.txt\n")
    shell.chmod(0o755)
    runs = {s: CAT for s in STREAM_ORDER} | {"docs": "shell"}
    done = _launched(tmp, socket_name, runs=runs, shell=shell)
    commit(
        done.root,
        "backend",
        "backend",
        "src/api/v1/auth.py",
        "\n# x\n",
        "feat(auth): it's $HOME; `id` | done",
    )
    return done


def test_send_delivers_each_stream_its_own_section(
    alive: Launched, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cli_json(alive.root, ["sync", "morning", "--day", "2", "--send", "--socket", alive.socket], capsys)
    assert data["sent"] == STREAM_ORDER
    markdown = (alive.root / "workstreams/reports/phase-1/day-02-morning.md").read_text(encoding="utf-8")
    titles = {s["stream"]: s["today"][0]["title"] for s in data["streams"]}
    for s in data["streams"]:
        heading = f"## {s['name']} ({s['agent']})"
        line = "[coditect morning sync, day 2] " + " | ".join(md_section(markdown, heading).splitlines())
        if s["stream"] == "docs":
            line = "# " + line  # a shell would run it: it gets a comment
        got = received(alive.typed, s["stream"])
        assert got == line + "\n", s["stream"]
        others = [t for sid, t in titles.items() if sid != s["stream"]]
        assert not any(t in got for t in others), s["stream"]
    backend = received(alive.typed, "backend")
    assert (
        "✅ Yesterday: feat(auth): it's $HOME; `id` | done | 🎯 Today: Auth service (signup, login, JWT)"
        in backend
    )


def test_send_human_output_names_the_streams(alive: Launched, capsys: pytest.CaptureFixture[str]) -> None:
    for stream in STREAM_ORDER:
        (alive.typed / f"{stream}.txt").write_text("")  # cat keeps appending at its offset: truncate
    result = cli(alive.root, ["sync", "morning", "--day", "3", "--send", "--socket", alive.socket], capsys)
    assert result.code == 0, result.output
    assert f"sent each stream's section to its pane: {', '.join(STREAM_ORDER)}" in result.stdout
    got = {s: received(alive.typed, s).lstrip("\0") for s in STREAM_ORDER}  # every pane, so none arrives late
    assert all("[coditect morning sync, day 3] " in line for line in got.values()), got
    assert (
        got["infra"].startswith("[coditect morning sync, day 3] ")
        and "Cloud Run services, Redis, IAM" in got["infra"]
    )


def test_without_send_nothing_is_typed(alive: Launched, capsys: pytest.CaptureFixture[str]) -> None:
    before = {s: (alive.typed / f"{s}.txt").read_text() for s in STREAM_ORDER}
    data = cli_json(alive.root, ["sync", "morning", "--day", "4", "--socket", alive.socket], capsys)
    assert data["sent"] == []
    evening = cli_json(alive.root, ["sync", "evening", "--day", "4", "--socket", alive.socket], capsys)
    assert evening["sent"] == []
    assert {s: (alive.typed / f"{s}.txt").read_text() for s in STREAM_ORDER} == before


def test_running_agents_are_no_blockers_and_status_shows_them_running(
    alive: Launched, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cli_json(alive.root, ["sync", "morning", "--day", "2", "--socket", alive.socket], capsys)
    assert all(s["blockers"] == [] for s in data["streams"])
    board = cli_json(alive.root, ["status", "--day", "2", "--socket", alive.socket], capsys)
    agents = {r["stream"]: r["agent"] for r in board["streams"]}
    # Template agents report nothing themselves: `unknown`, or `working` once a message was delivered.
    assert list(agents) == list(STREAM_ORDER) and set(agents.values()) <= {"unknown", "working"}


# ----------------------------------------------------------------------------------------------- dead panes


@pytest.fixture(scope="module")
def dead(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory, dead_socket: str) -> Launched:
    """backend's agent exits 3, deploy's exits 0, docs' is killed (SIGKILL); infra and frontend run."""
    # One agent template for every stream (launch --agent), behaving by stream.
    agent = (
        "sh -c 'case $0 in backend) exit 3;; deploy) exit 0;; *) exec cat > {typed}/$0.txt;; esac' {{stream}}"
    )
    done = _launched(tmp_path_factory.mktemp("dead"), dead_socket, agent=agent)
    retry_until(lambda: panes(dead_socket), lambda p: "docs" in p and p["docs"].pane_pid is not None)
    os.kill(int(panes(dead_socket)["docs"].pane_pid), signal.SIGKILL)
    retry_until(
        lambda: panes(dead_socket),
        lambda p: (
            p["backend"].dead_status == 3 and p["deploy"].dead_status == 0 and p["docs"].dead_signal == 9
        ),
    )
    return done


def test_an_agent_that_failed_or_was_killed_is_a_blocker_one_that_exited_0_is_not(
    dead: Launched, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cli_json(dead.root, ["sync", "morning", "--day", "2", "--socket", dead.socket], capsys)
    sections = by_stream(data)
    (backend,) = blockers_of(sections["backend"], "agent")
    assert backend["message"] == "agent pane is dead (status 3)" and backend["detail"] == {"status": 3}
    (docs,) = blockers_of(sections["docs"], "agent")
    assert docs["message"] == "agent pane is dead (signal 9)"
    assert sections["deploy"]["blockers"] == []  # exit 0: the agent finished its work
    assert sections["infra"]["blockers"] == [] and sections["frontend"]["blockers"] == []
    restarts = [a for a in data["actions"] if a["kind"] == "restart"]
    assert [(a["streams"], a["text"]) for a in restarts] == [
        (["backend"], "restart Backend's agent (agent pane is dead (status 3))"),
        (["docs"], "restart Documentation's agent (agent pane is dead (signal 9))"),
    ]
    markdown = (dead.root / "workstreams/reports/phase-1/day-02-morning.md").read_text(encoding="utf-8")
    assert "🚧 Blockers: agent pane is dead (status 3)" in md_section(
        markdown, "## Backend (codi-code-architect)"
    )
    assert "🚧 Blockers: None" in md_section(markdown, "## Deployment (codi-devops-engineer)")


def test_status_shows_each_agents_state(dead: Launched, capsys: pytest.CaptureFixture[str]) -> None:
    board = cli_json(dead.root, ["status", "--day", "2", "--socket", dead.socket], capsys)
    agents = {r["stream"]: r["agent"] for r in board["streams"]}
    assert {s: agents[s] for s in ("backend", "deploy", "docs")} == {
        "backend": "exited 3",
        "deploy": "exited 0",
        "docs": "killed (signal 9)",
    }
    assert {agents["infra"], agents["frontend"]} <= {"unknown", "working"}  # alive, reporting nothing


def test_the_socket_is_found_in_the_store(
    dead: Launched, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODITECT_TMUX_SOCKET")
    data = cli_json(dead.root, ["sync", "morning", "--day", "2"], capsys)
    assert blockers_of(by_stream(data)["backend"], "agent")[0]["message"] == "agent pane is dead (status 3)"


def test_send_skips_dead_panes_and_still_reaches_the_streams_after_them(
    dead: Launched, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cli_json(dead.root, ["sync", "morning", "--day", "2", "--send", "--socket", dead.socket], capsys)
    assert data["sent"] == ["infra", "frontend"]
    assert "Project setup (Vite, React Router, TailwindCSS)" in received(dead.typed, "frontend")
    assert any("backend" in n for n in data["notes"]) and any("deploy" in n for n in data["notes"])


def test_a_closed_pane_is_reported(dead: Launched, capsys: pytest.CaptureFixture[str]) -> None:
    Tmux(dead.socket).run(["kill-pane", "-t", panes(dead.socket)["frontend"].pane_id])
    retry_until(lambda: panes(dead.socket), lambda p: "frontend" not in p)
    data = cli_json(dead.root, ["sync", "morning", "--day", "2", "--socket", dead.socket], capsys)
    (closed,) = blockers_of(by_stream(data)["frontend"], "agent")
    assert closed["message"] == "no agent pane (it was closed)"
    board = cli_json(dead.root, ["status", "--day", "2", "--socket", dead.socket], capsys)
    assert {r["stream"]: r["agent"] for r in board["streams"]}["frontend"] == "no pane"
