"""Reading a host's snapshot (one SSH call's output): the panes section, and each stream's events file tail
(a tail as long as tail's limit started inside the file, so its first line is dropped; a missing file has
no section and no events)."""

from __future__ import annotations

import json
from pathlib import Path

from coditect_cli.adapters.ssh import SshHost
from coditect_cli.agents.events import TAIL_BYTES
from coditect_cli.domain.manifest import Host
from coditect_cli.services.hosts import _MARK, HostPanes, RemoteLayout, RemoteTmux, parse_snapshot

LAY = RemoteLayout(Host(name="h1", ssh="h1.example", workdir="/srv/w"), "proj")


def _line(t: float, event: str) -> str:
    return json.dumps({"t": t, "event": event}, separators=(",", ":"))


def _entry(tmp_path: Path) -> HostPanes:
    host = SshHost("h1", "h1.example", None, tmp_path)
    return HostPanes("h1", ["s1", "s2", "s3"], RemoteTmux(host, LAY.socket, LAY))


def test_events_tails_by_stream_first_line_of_a_cut_tail_dropped(tmp_path: Path) -> None:
    short = "\n".join([_line(1.0, "Launch"), _line(2.0, "SessionStart"), _line(3.0, "Stop")]) + "\n"
    filler = _line(4.0, "PostToolUse") + "\n"
    # As long as tail's limit: its first line may be a cut one (here a whole one, to show it is dropped).
    long_tail = (_line(9.0, "Stop") + "\n" + filler * (TAIL_BYTES // len(filler) + 1))[:TAIL_BYTES]
    assert len(long_tail) == TAIL_BYTES
    output = (
        f"{_MARK}panes 1\nno server running on /tmp/tmux-0/x\n{_MARK}screens\n{_MARK}events\n"
        f"==> {LAY.events('phase-1', 's1')} <==\n{short}\n"
        f"==> {LAY.events('phase-1', 's2')} <==\n{long_tail}\n"
        "==> /dev/null <==\n"
    )
    entry = _entry(tmp_path)
    parse_snapshot(entry, LAY, "phase-1", output, lambda rows: ("x", rows))
    assert entry.unreachable is None and entry.rows == {}  # no tmux server there yet: nothing runs
    assert [e.event for e in entry.events["s1"]] == ["Launch", "SessionStart", "Stop"]
    s2 = entry.events["s2"]
    assert s2 and all(e.event == "PostToolUse" for e in s2)  # the (maybe partial) first line is not read
    assert "s3" not in entry.events  # its file does not exist


def test_a_tmux_failure_other_than_no_server_makes_the_host_unreadable(tmp_path: Path) -> None:
    entry = _entry(tmp_path)
    parse_snapshot(entry, LAY, "phase-1", f"{_MARK}panes 1\nprotocol version mismatch\n", lambda r: ("x", r))
    assert entry.unreachable == "tmux failed on host h1: protocol version mismatch"
