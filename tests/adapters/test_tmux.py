"""The tmux adapter against a real tmux server on a private socket (libtmux's ``server`` fixture).

Argument escaping for tmux's command-line parser, a whole session built by one tmux invocation (directories,
environment, titles, options, an agent that exits at once keeps its pane), panes added in terminal order,
literal ``send-keys``, and reading panes when no server runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import retry_until
from libtmux.server import Server

from coditect_cli.adapters.tmux import (
    MESSAGE_BUDGET,
    Tmux,
    add_pane_commands,
    escape,
    literal,
    pack,
    parse_panes,
    sequence,
    session_commands,
    session_units,
)
from coditect_cli.domain.launch import AgentCommand, PaneSpec, PaneState, SessionSpec, env_file_text

# A tiny agent: writes its environment and directory to OUT/<stream>.json, then waits (or exits with CODE).
AGENT = """
import json, os, sys, time
out, code = sys.argv[1], int(sys.argv[2])
stream = os.environ.get("CODITECT_STREAM", "?")
with open(os.path.join(out, stream + ".json.tmp"), "w") as fh:
    json.dump({"cwd": os.getcwd(), "env": dict(os.environ), "argv": sys.argv[1:]}, fh)
os.rename(os.path.join(out, stream + ".json.tmp"), os.path.join(out, stream + ".json"))
if code >= 0:
    sys.exit(code)
time.sleep(300)
"""


def agent(out: Path, code: int = -1, *extra: str) -> AgentCommand:
    argv = (sys.executable, "-c", AGENT, str(out), str(code), *extra)
    return AgentCommand("template", argv, sys.executable, "agent")


def pane(
    stream: str,
    cwd: Path,
    out: Path,
    *,
    code: int = -1,
    env: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
) -> PaneSpec:
    """A pane whose environment file (what the launch service writes) is already in ``out``."""
    variables = (("CODITECT_STREAM", stream), *(env or {}).items())
    env_file = out / f"{stream}.env"
    env_file.write_text(env_file_text(dict(variables)))
    return PaneSpec(
        stream=stream,
        title=f"{stream} · feature/x/{stream}/topic",
        cwd=cwd,
        env=variables,
        agent=agent(out, code, *extra),
        log=out / f"{stream}.log",
        env_file=env_file,
    )


def reported(out: Path, stream: str) -> dict[str, object]:
    path = out / f"{stream}.json"
    retry_until(path.exists, bool)
    data: dict[str, object] = json.loads(path.read_text())
    return data


def by_stream(tmux: Tmux, session: str) -> dict[str, PaneState]:
    return {p.stream: p for p in tmux.session_panes(session)}


# ----------------------------------------------------------------------------------------------- parsing


class EscapeCase(NamedTuple):
    test_id: str
    value: str
    expected: str


ESCAPES = [
    EscapeCase("plain", "abc", "abc"),
    EscapeCase("inner-semicolon", "a;b", "a;b"),
    EscapeCase("trailing-semicolon", "a b;", "a b\\;"),
    EscapeCase("only-semicolon", ";", "\\;"),
    EscapeCase("backslash-semicolon", "x\\;", "x\\\\;"),
]


@pytest.mark.parametrize("case", ESCAPES, ids=[c.test_id for c in ESCAPES])
def test_escape_protects_a_trailing_semicolon(case: EscapeCase) -> None:
    assert escape(case.value) == case.expected


def test_sequence_joins_commands_with_separate_semicolons() -> None:
    assert sequence([["a", "x;"], ["b"]]) == ["a", "x\\;", ";", "b"]
    assert literal("/tmp/a#b") == "/tmp/a##b"


def test_parse_panes_reads_dead_status_and_user_options() -> None:
    fields = [
        "s",
        "@1",
        "2",
        "w",
        "%3",
        "42",
        "1",
        "7",
        "",
        "sh",
        "/x",
        "api.v2",
        "T",
        "/sock",
        "/w",
        "t\x1fx",
    ]
    (state,) = parse_panes("\x1f".join(fields) + "\nbroken line\n")
    assert state.title == "t\x1fx"  # whatever a program puts in its title does not shift the fields
    assert state.pane_id == "%3" and state.window_index == 2 and state.pane_pid == 42
    assert state.dead and state.dead_status == 7 and state.dead_signal is None
    assert state.stream == "api.v2" and state.stream_title == "T" and state.socket_path == "/sock"
    assert state.start_path == "/w" and state.cwd == "/x"


# ----------------------------------------------------------------------------------------------- a real server


def test_no_server_means_no_panes(server: Server) -> None:
    assert Tmux(server.socket_name).panes() == []


def test_one_invocation_builds_every_pane_with_its_dir_env_title_and_options(
    server: Server, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    odd = tmp_path / "dir with #{hash} and 'quotes'"
    odd.mkdir()
    tricky = {"SEMI": "ends with;", "QUOTES": 'it\'s "quoted" $HOME `x`', "BACKSLASH": "x\\;"}
    spec = SessionSpec(
        name="coditect-demo-proj-rel-1-2",
        phase="rel-1.2",
        layout="tiled",
        panes=(
            pane("api.v2", odd, out, env=tricky),
            pane("web-ui", tmp_path, out),
            pane("quick", tmp_path, out, code=3),  # exits at once: remain-on-exit must already be on
        ),
    )
    tmux = Tmux(server.socket_name)
    tmux.create_session(spec)
    assert tmux.invocations == 1

    first = reported(out, "api.v2")
    assert first["cwd"] == str(odd)
    env = first["env"]
    assert isinstance(env, dict)
    for key, value in tricky.items():
        assert env[key] == value, key
    # Through the pane's environment file only: no value on tmux's command lines or in its environments.
    commands = " ".join(" ".join(c) for c in session_commands(spec))
    started = tmux.run(["list-panes", "-a", "-F", "#{pane_start_command}"]).stdout
    environments = tmux.run(["show-environment", "-g"]).stdout
    environments += tmux.run(["show-environment", "-t", f"={spec.name}"]).stdout
    for value in tricky.values():
        assert value not in commands and value not in started and value not in environments
    # tmux marks a pane dead when its tty closes and learns the exit status when it reaps the child.
    panes = retry_until(
        lambda: by_stream(tmux, spec.name), lambda p: len(p) == 3 and p["quick"].dead_status is not None
    )
    assert list(panes) == ["api.v2", "web-ui", "quick"]  # list-panes order is pane order
    assert panes["quick"].dead_status == 3
    assert panes["web-ui"].cwd == str(tmp_path) and not panes["web-ui"].dead
    assert panes["api.v2"].stream_title == "api.v2 · feature/x/api.v2/topic"
    assert panes["api.v2"].title == "api.v2 · feature/x/api.v2/topic"

    session = server.sessions.get(session_name=spec.name)
    assert session is not None
    window = session.windows[0]
    assert len(session.windows) == 1 and window.window_name == "rel-1.2"
    assert window.show_option("remain-on-exit") in {"on", True}
    assert window.show_option("pane-border-status") == "top"
    assert "@coditect_title" in str(window.show_option("pane-border-format"))
    assert (window.window_width, window.window_height) == ("240", "80")  # detached, yet room for 6 panes


def test_missing_panes_are_added_in_terminal_order_and_others_left_alone(
    server: Server, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    streams = ["s1", "s2", "s3", "s4"]
    spec = SessionSpec("coditect-p-order", "order", "tiled", tuple(pane(s, tmp_path, out) for s in streams))
    tmux = Tmux(server.socket_name)
    tmux.create_session(spec)
    before = retry_until(lambda: by_stream(tmux, spec.name), lambda p: len(p) == 4)
    for gone in ("s1", "s3"):
        tmux.run(["kill-pane", "-t", before[gone].pane_id])
    existing = retry_until(lambda: by_stream(tmux, spec.name), lambda p: len(p) == 2)
    missing = [p for p in spec.panes if p.stream not in existing]
    tmux.add_panes(spec, missing, existing)
    after = retry_until(lambda: by_stream(tmux, spec.name), lambda p: len(p) == 4)
    assert list(after) == streams
    for kept in ("s2", "s4"):
        assert after[kept].pane_id == before[kept].pane_id and after[kept].pane_pid == before[kept].pane_pid
    assert {after["s1"].window_id, after["s3"].window_id} == {before["s2"].window_id}


def test_windows_layout_gives_each_stream_a_window_and_restores_a_killed_one(
    server: Server, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    streams = ["a", "b", "c"]
    spec = SessionSpec("coditect-p-win", "win", "windows", tuple(pane(s, tmp_path, out) for s in streams))
    tmux = Tmux(server.socket_name)
    tmux.create_session(spec)
    rows = retry_until(lambda: by_stream(tmux, spec.name), lambda p: len(p) == 3)
    assert len({r.window_id for r in rows.values()}) == 3
    assert [r.window_name for r in rows.values()] == streams
    tmux.run(["kill-window", "-t", rows["b"].window_id])
    existing = retry_until(lambda: by_stream(tmux, spec.name), lambda p: len(p) == 2)
    cmds = add_pane_commands(spec, [spec.panes[1]], existing)
    assert cmds[0][:4] == ["new-window", "-a", "-t", rows["a"].window_id]
    tmux.add_panes(spec, [spec.panes[1]], existing)
    after = retry_until(lambda: tmux.session_panes(spec.name), lambda p: len(p) == 3)
    assert [p.stream for p in sorted(after, key=lambda p: p.window_index)] == streams
    session = server.sessions.get(session_name=spec.name)
    assert session is not None
    assert all(w.show_option("remain-on-exit") in {"on", True} for w in session.windows)


def test_send_types_text_literally_then_enter(server: Server, tmp_path: Path) -> None:
    target = tmp_path / "typed.txt"
    cat = AgentCommand("template", ("/bin/sh", "-c", f"exec cat > '{target}'"), "cat", "cat")
    spec = SessionSpec(
        "coditect-p-send",
        "send",
        "tiled",
        (PaneSpec("only", "only", tmp_path, (), cat, None),),
    )
    tmux = Tmux(server.socket_name)
    tmux.create_session(spec)
    (row,) = retry_until(lambda: tmux.session_panes(spec.name), lambda p: len(p) == 1)
    text = "echo \"double\" 'single' $HOME `id`; rm -rf / && exit;"
    tmux.send([row.pane_id], text)
    assert retry_until(lambda: target.read_text() if target.exists() else "", lambda t: t.endswith("\n")) == (
        text + "\n"
    )
    assert session_commands(spec)[0][0] == "new-session"


def test_a_session_too_big_for_one_tmux_message_is_built_in_a_few(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    big = "x" * 900  # per pane: ~30 panes x 1.5 KB is well over tmux's 16 KiB per client message
    streams = [f"w{i:02d}" for i in range(30)]
    spec = SessionSpec(
        "coditect-p-big",
        "big",
        "windows",
        tuple(pane(s, tmp_path, out, env={"N": s}, extra=(big,)) for s in streams),
    )
    groups = pack(session_units(spec))
    assert len(groups) >= 3 and all(
        sum(len(a) + 1 for c in g for a in c) < MESSAGE_BUDGET + 500 for g in groups
    )
    tmux = Tmux(server.socket_name)
    tmux.create_session(spec)
    assert tmux.invocations == len(groups)
    rows = retry_until(lambda: tmux.session_panes(spec.name), lambda p: len(p) == 30)
    assert sorted(r.stream for r in rows) == streams
    last = reported(out, "w29")
    env, argv = last["env"], last["argv"]
    assert isinstance(env, dict) and env["N"] == "w29" and isinstance(argv, list) and argv[-1] == big
    session = server.sessions.get(session_name=spec.name)
    assert session is not None
    assert all(w.show_option("remain-on-exit") in {"on", True} for w in session.windows)
