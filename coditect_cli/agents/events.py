"""What an agent tells coditect about itself: hook events appended to one small file per stream.

Claude Code runs this file as its hook command (``--settings FILE``: ``UserPromptSubmit``, ``Notification``,
``Stop``, ``SessionStart``, ``PostToolUse``, ``SessionEnd``), with the event as JSON on stdin; Codex runs it as
its ``notify`` program, with the event as JSON in the last argument. Either way it appends one compact JSON
line to the stream's events file and exits 0 (a hook that fails or exits 2 would disturb the agent).

It is run by path with ``python3 -I -S`` (no site packages, no coditect import: about 20 ms), so it uses the
standard library only. When the event ends a turn (``Stop``, an idle notification, Codex's turn complete) and
messages are held for the stream (a ``.held`` file next to the events file), it starts the stored flush
command (``.flush``, a JSON argv) detached, which delivers them.

coditect reads the file back with :func:`read_events` (its tail only) to tell the stream's state.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

LAUNCH = "Launch"
"""The event coditect writes when it (re)starts a pane: state reads only what follows the last one."""
TURN_ENDS = frozenset({"Stop", "agent-turn-complete"})
TAIL_BYTES = 32_768


@dataclass(frozen=True)
class AgentEvent:
    """One event of an agent (a line of its events file)."""

    t: float
    event: str
    type: str = ""  # a Notification's notification_type
    message: str = ""
    session: str = ""
    prompt_sha: str = ""
    tool: str = ""
    kind: str = ""  # the agent kind, on a Launch event


def text_sha(text: str) -> str:
    """The digest an event carries for a prompt (the text itself is never stored)."""
    return hashlib.sha256(text.strip().encode("utf-8", "replace")).hexdigest()[:16]


def record(payload: dict[str, object], *, now: float | None = None) -> dict[str, object]:
    """The compact line stored for a hook or notify ``payload``."""
    event = str(payload.get("hook_event_name") or payload.get("type") or "unknown")
    out: dict[str, object] = {"t": round(now if now is not None else time.time(), 3), "event": event}
    if payload.get("notification_type"):
        out["type"] = str(payload["notification_type"])
    elif event == "SessionStart" and payload.get("source"):
        out["type"] = str(payload["source"])  # startup, resume, clear, compact
    if event == "Notification" and payload.get("message"):
        out["message"] = str(payload["message"])[:300]
    for key, name in (("session_id", "session"), ("thread-id", "session"), ("tool_name", "tool")):
        if payload.get(key):
            out[name] = str(payload[key])
    if isinstance(payload.get("prompt"), str):
        out["prompt_sha"] = text_sha(str(payload["prompt"]))
    return out


def append(path: Path, line: dict[str, object]) -> None:
    """Append one event line (one ``write`` on an ``O_APPEND`` descriptor: lines never interleave)."""
    data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_events(path: Path) -> list[AgentEvent]:
    """The events since the pane's last start (the file's tail is enough), oldest first."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return parse_events(tail, cut=size > TAIL_BYTES)


def parse_events(tail: str, *, cut: bool = False) -> list[AgentEvent]:
    """The events since the pane's last start in ``tail``, the end of an events file (``cut``: it does not
    start at the file's beginning, so its first line may be partial); oldest first."""
    events: list[AgentEvent] = []
    lines = tail.splitlines()
    if cut:
        lines = lines[1:]  # the first line may be cut
    for line in lines:
        try:
            data = json.loads(line)
            event = AgentEvent(
                t=float(data["t"]),
                event=str(data["event"]),
                type=str(data.get("type", "")),
                message=str(data.get("message", "")),
                session=str(data.get("session", "")),
                prompt_sha=str(data.get("prompt_sha", "")),
                tool=str(data.get("tool", "")),
                kind=str(data.get("kind", "")),
            )
        except (ValueError, KeyError, TypeError):
            continue
        if event.event == LAUNCH:
            events = []
        events.append(event)
    return events


def _flush_held(path: Path) -> None:
    held, flush = path.with_suffix(".held"), path.with_suffix(".flush")
    if not held.exists() or not flush.is_file():
        return
    try:
        argv = json.loads(flush.read_text(encoding="utf-8"))
        subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except (OSError, ValueError):
        return


def main(argv: list[str]) -> int:
    """``events.py FILE [JSON]``: record the event (stdin, or the JSON argument Codex passes)."""
    if len(argv) < 2:
        print("usage: events.py EVENTS_FILE [JSON]", file=sys.stderr)
        return 1
    path = Path(argv[1])
    try:
        raw = argv[2] if len(argv) > 2 else sys.stdin.read()
        payload = json.loads(raw) if raw.strip() else {}
        if not isinstance(payload, dict):
            payload = {}
        if not path.parent.is_dir():
            print(f"coditect: no stream for events file {path} (its directory is gone)", file=sys.stderr)
            return 1
        line = record(payload)
        append(path, line)
        if line["event"] in TURN_ENDS or line.get("type") == "idle_prompt":
            _flush_held(path)
    except (OSError, ValueError) as exc:
        print(f"coditect: cannot record the event: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
