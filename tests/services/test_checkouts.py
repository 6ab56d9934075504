"""Two checkouts of one project on one tmux server (issue 11): each has its own session, named with the hash of
its root, and one checkout's launch, send, status and stop never reach the other's agents. A session of the name
used before the hash (``coditect-<project>-<phase>``) is still found by the checkout it started in, and by no
other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest
from helpers import retry_until, session_of
from libtmux.server import Server
from test_launch import do_launch, small_project

from coditect_cli.adapters.tmux import Tmux
from coditect_cli.domain.launch import legacy_session_name
from coditect_cli.project import Project
from coditect_cli.services import launch as svc
from coditect_cli.services import streams as streams_svc

STREAMS = [("a1", "sleep 600"), ("a2", "sleep 600")]


def checkout(tmp: Path, name: str) -> tuple[Project, Path]:
    """A copy of the project ``demo`` (phase ``p1``) in ``tmp/name``, and where its agents write what they get."""
    project = small_project(tmp / name, "p1", STREAMS)
    typed = tmp / name / "typed"
    typed.mkdir()
    return project, typed


def launch_typing(project: Project, typed: Path, socket: str, mp: pytest.MonkeyPatch) -> svc.LaunchResult:
    """Launch ``project`` with agents that write each line they read to ``typed/<stream>.txt``."""
    return do_launch(project, socket, mp, agent=f"cat > {typed}/{{stream}}.txt")


def live(socket: str, session: str) -> dict[str, tuple[str, int | None]]:
    """Each stream's pane id and process in ``session``."""
    return {p.stream: (p.pane_id, p.pane_pid) for p in Tmux(socket).session_panes(session) if not p.dead}


def lines(typed: Path, stream: str) -> str:
    path = typed / f"{stream}.txt"
    return path.read_text() if path.exists() else ""


def started(socket: str, session: str) -> dict[str, Any]:
    return retry_until(
        lambda: live(socket, session), lambda p: len(p) == 2 and all(pid for _, pid in p.values())
    )


class Pair(NamedTuple):
    """Two copies of one project on one tmux server; A's streams launched."""

    socket: str
    a: Project
    typed_a: Path
    b: Project
    typed_b: Path
    first: svc.LaunchResult  # A's launch


@pytest.fixture
def pair(isolated_git: Path, tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch) -> Pair:
    a, typed_a = checkout(tmp_path, "a")
    b, typed_b = checkout(tmp_path, "b")
    first = launch_typing(a, typed_a, server.socket_name, monkeypatch)
    return Pair(server.socket_name, a, typed_a, b, typed_b, first)


def test_two_checkouts_of_one_project_never_share_a_session(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, a, typed_a, b, typed_b, first = pair
    panes_a = started(sock, first.session)
    second = launch_typing(b, typed_b, sock, monkeypatch)

    assert first.session == session_of(a.root, "demo", "p1") and second.session == session_of(
        b.root, "demo", "p1"
    )
    assert first.session != second.session
    assert second.created and second.added == ["a1", "a2"]  # B adopted none of A's panes
    assert all(Path(p.cwd).is_relative_to(b.root) for p in second.panes)
    started(sock, second.session)
    assert live(sock, first.session) == panes_a

    monkeypatch.chdir(b.root)
    sent = streams_svc.send(b, None, "all", "from b", socket=sock)
    assert sorted(sent.delivered) == ["a1", "a2"] and sent.session == second.session
    for stream in ("a1", "a2"):
        assert retry_until(lambda s=stream: lines(typed_b, s), lambda t: t.endswith("\n")) == "from b\n"
    monkeypatch.chdir(a.root)
    streams_svc.send(a, None, "a1", "from a", socket=sock)
    assert retry_until(lambda: lines(typed_a, "a1"), lambda t: t.endswith("\n")) == "from a\n"
    assert lines(typed_a, "a2") == ""  # nothing B typed reached A's agents

    monkeypatch.chdir(b.root)
    stopped = streams_svc.stop(b, None, socket=sock)
    assert stopped.killed and stopped.session == second.session
    assert live(sock, second.session) == {}
    assert live(sock, first.session) == panes_a  # A's agents run on, untouched
    monkeypatch.chdir(a.root)
    status_a = streams_svc.status(a, None, socket=sock)
    assert status_a.session == first.session and status_a.exists


def test_a_session_of_the_old_name_is_found_by_its_own_checkout_only(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, a, typed_a, b, typed_b, launched = pair
    # What a launch before the upgrade left running: A's session under the name without the hash.
    legacy = legacy_session_name("demo", "p1")
    Tmux(sock).run(["rename-session", "-t", f"={launched.session}", legacy])
    panes_a = started(sock, legacy)

    # A finds it: status, send, and a launch that adds nothing.
    monkeypatch.chdir(a.root)
    assert streams_svc.status(a, None, socket=sock).session == legacy
    streams_svc.send(a, None, "a2", "still a", socket=sock)
    assert retry_until(lambda: lines(typed_a, "a2"), lambda t: t.endswith("\n")) == "still a\n"
    again = launch_typing(a, typed_a, sock, monkeypatch)
    assert again.session == legacy and not again.created and again.added == []

    # B never takes it for its own: its status sees nothing, its stop kills nothing, its launch starts its own.
    monkeypatch.chdir(b.root)
    status_b = streams_svc.status(b, None, socket=sock)
    assert status_b.session == session_of(b.root, "demo", "p1") and not status_b.exists
    assert not streams_svc.stop(b, None, socket=sock).killed
    mine = launch_typing(b, typed_b, sock, monkeypatch)
    assert mine.created and mine.session == session_of(b.root, "demo", "p1")
    streams_svc.send(b, None, "all", "only b", socket=sock)
    for stream in ("a1", "a2"):
        assert retry_until(lambda s=stream: lines(typed_b, s), lambda t: t.endswith("\n")) == "only b\n"
    assert lines(typed_a, "a1") == "" and live(sock, legacy) == panes_a

    # A's stop ends the old session, and only it.
    monkeypatch.chdir(a.root)
    assert streams_svc.stop(a, None, socket=sock).session == legacy
    assert live(sock, legacy) == {} and len(live(sock, mine.session)) == 2
