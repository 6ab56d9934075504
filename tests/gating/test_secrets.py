"""Injection on a real project and real tmux (issue 11): text typed into a ``shell`` pane by ``sync morning --send`` never runs, whatever a
deliverable title or a blocker reason (newlines included) holds.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from gating_helpers import MakeTiny, Tiny
from helpers import coditect, kill_tmux_server, retry_until

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


def command_lines() -> dict[int, bytes]:
    """Every process's command line that this user can read (what `ps` shows)."""
    out: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                continue
    return out


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
