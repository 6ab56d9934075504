"""The agents in a phase's panes: their state, and messages delivered to them (or held until they can take
them). The API other services build on (``streams status|send|flush``, ``sync --send``, checkpoint
announcements, the autopilot):

- :func:`agent_states` / :func:`read_states`: one :class:`~coditect_cli.domain.agent_state.AgentState` per
  stream, from one ``list-panes``, one tmux process capturing every screen and each stream's events file;
- :func:`deliver`: each stream's text typed in (through a tmux buffer, a bracketed paste), Enter pressed in a
  separate tmux call after a settle, arrival confirmed (Claude Code's ``UserPromptSubmit`` event; the Enter
  retried once), one :class:`Delivery` per stream: ``delivered``, ``queued`` (the agent was busy: Claude Code
  queues the message), ``held`` (it waits for approval or sits at a dialog: kept in the store, never typed),
  ``unconfirmed`` or ``skipped``;
- :func:`deliver_held`: the held messages of agents that are idle now, oldest first (run by the agent's own
  ``Stop`` hook through ``streams flush``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from coditect_cli.agents.events import LAUNCH, AgentEvent, append, read_events, text_sha
from coditect_cli.domain.agent_state import DELIVERED, AgentState, decide_state
from coditect_cli.domain.launch import PaneState, ordered_streams, panes_by_stream
from coditect_cli.errors import UsageError
from coditect_cli.project import Project
from coditect_cli.services.session import PhaseSession, agent_file, phase_session

if TYPE_CHECKING:
    from coditect_cli.adapters.tmux import Tmux
    from coditect_cli.services.hosts import HostPanes

SETTLE = 0.3
"""Seconds between the text and its Enter: a TUI reads input that arrives at once as one paste, and an
Enter inside a paste is a newline, not a submit."""
CONFIRM = 4.0
"""Seconds to wait for the agent to say the message arrived, before the Enter is retried once."""
QUEUE_WAIT = 1.0
"""Seconds to watch a busy agent before reporting the message queued."""

Status = Literal["delivered", "queued", "held", "unconfirmed", "skipped"]


@dataclass(frozen=True)
class Delivery:
    """What happened to one stream's message."""

    stream: str
    status: Status
    state: str  # the agent's state when the message came
    detail: str = ""
    held_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "stream": self.stream,
            "status": self.status,
            "state": self.state,
            "detail": self.detail,
            "held_id": self.held_id,
        }


# ----------------------------------------------------------------------------------------------- state


def stream_kind(s: PhaseSession, stream: str, events: list[AgentEvent]) -> str:
    """The agent kind a pane runs: what its launch recorded, else the manifest's."""
    if events and events[0].event == LAUNCH and events[0].kind:
        return events[0].kind
    try:
        return s.manifest.stream(stream).agent_options.kind
    except KeyError:
        return "unknown"


def read_states(
    s: PhaseSession,
    tmux: Tmux,
    rows: Mapping[str, PaneState],
    streams: list[str],
    held: Mapping[str, int] | None = None,
    *,
    screens: Mapping[str, str] | None = None,
    events_of: Mapping[str, list[AgentEvent]] | None = None,
) -> dict[str, AgentState]:
    """The state of each of ``streams``' agents; ``rows`` from one ``list-panes`` (:func:`panes_by_stream`).

    ``screens`` (pane id -> screen) and ``events_of`` (stream -> events), when given, were read already (a
    remote host's, over its SSH connection); else the screens are captured and the events files read here.
    """
    if screens is None:
        panes = [rows[st] for st in streams if st in rows]
        screens = tmux.capture([r.pane_id for r in panes], history={r.pane_id for r in panes if r.dead})
    out: dict[str, AgentState] = {}
    for st in streams:
        if events_of is not None:
            events = events_of.get(st, [])
        else:
            events = read_events(agent_file(s.common, s.manifest.phase, st))
        row = rows.get(st)
        screen = screens.get(row.pane_id) if row is not None else None
        out[st] = decide_state(
            st, stream_kind(s, st, events), row, events, screen, held=(held or {}).get(st, 0)
        )
    return out


def host_states(
    s: PhaseSession, entry: HostPanes, held: Mapping[str, int], streams: list[str] | None = None
) -> dict[str, AgentState]:
    """The states of a host's streams (``streams``: some of them) from what :func:`~coditect_cli.services.hosts.
    host_panes` read there in one SSH call (panes, screens, events)."""
    return read_states(
        s,
        entry.tmux,
        entry.rows,
        entry.streams if streams is None else streams,
        held,
        screens=entry.screens,
        events_of=entry.events,
    )


def agent_states(project: Project, phase: str | None, *, socket: str | None = None) -> dict[str, AgentState]:
    """Every stream's agent state, in terminal order (those on remote hosts read over their connection)."""
    from coditect_cli.adapters.tmux import Tmux

    s = phase_session(project, phase, socket)
    tmux = Tmux(s.socket)
    streams = [st.id for st in ordered_streams(s.manifest)]
    held = _held_counts(s)
    remote = {st.id for st in s.manifest.streams if st.host}
    local = [st for st in streams if st not in remote]
    rows: dict[str, PaneState] = {}
    if local:
        s, found = s.locate(tmux)
        rows = panes_by_stream(found)
    states = read_states(s, tmux, rows, local, held) if local else {}
    if remote:  # one SSH call per host; the streams of an unreachable host are left out
        from coditect_cli.services.hosts import host_panes

        for entry in host_panes(project, s.manifest, s.common):
            if entry.unreachable is None:
                states.update(host_states(s, entry, held))
    return {st: states[st] for st in streams if st in states}


def _held_counts(s: PhaseSession) -> dict[str, int]:
    from coditect_cli.services.session import _store_path

    if not _store_path(s.common).is_file():
        return {}
    from coditect_cli.state.messages import counts
    from coditect_cli.state.store import Store

    with Store.open(s.common) as store:
        return counts(store, s.manifest.phase)


# ----------------------------------------------------------------------------------------------- delivery


@contextlib.contextmanager
def _typing(s: PhaseSession, stream: str) -> Iterator[None]:
    """One writer per pane at a time: two texts typed at once would be glued into one message."""
    lock = agent_file(s.common, s.manifest.phase, stream, ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class EventsFile(Protocol):
    """A stream's agent events file, here or on the stream's host."""

    def read(self) -> list[AgentEvent]:
        """The events since the pane's last start."""
        ...

    def append(self, line: dict[str, object]) -> None:
        """Append one event line."""
        ...


@dataclass(frozen=True)
class LocalEvents:
    """The events file of a stream that runs on this machine."""

    path: Path

    def read(self) -> list[AgentEvent]:
        """The events since the pane's last start."""
        return read_events(self.path)

    def append(self, line: dict[str, object]) -> None:
        """Append one event line."""
        append(self.path, line)


def _events_for(s: PhaseSession, tmux: Tmux, stream: str) -> EventsFile:
    """``stream``'s events file: on its host (read over its connection) when ``tmux`` is a host's server."""
    from coditect_cli.services.hosts import RemoteTmux

    if isinstance(tmux, RemoteTmux) and tmux.layout is not None:
        return tmux.events_file(s.manifest.phase, stream)
    return LocalEvents(agent_file(s.common, s.manifest.phase, stream))


def _reports_prompts(events: EventsFile) -> bool:
    """Whether the agent reports its own turns (it wrote a session or turn event since its pane started)."""
    return any(e.event in {"UserPromptSubmit", "SessionStart", "Stop"} for e in events.read())


def _arrived(events: EventsFile, since: float, sha: str) -> tuple[bool, bool]:
    """(a prompt was submitted since ``since``, it was exactly ``sha``)."""
    submitted = [e for e in events.read() if e.event == "UserPromptSubmit" and e.t >= since]
    return bool(submitted), any(e.prompt_sha == sha for e in submitted)


def _type_one(s: PhaseSession, tmux: Tmux, state: AgentState, text: str) -> Delivery:
    """Type ``text`` into one agent's pane, press Enter apart from it, and confirm it arrived.

    The text is made safe first (:func:`~coditect_cli.domain.text.pane_text`): no escape sequence or control
    character reaches the pane, and a shell gets every line as a ``#`` comment, so nothing typed runs.
    """
    from coditect_cli.domain.text import pane_text

    assert state.pane_id is not None
    text = pane_text(text, shell=state.kind == "shell")
    events_file = _events_for(s, tmux, state.stream)
    start = time.time() - 0.05
    tmux.paste(state.pane_id, text)
    time.sleep(SETTLE)
    tmux.press([state.pane_id])
    # An agent that reports the prompts it gets (Claude Code's hook, or any agent writing UserPromptSubmit to
    # its events file) confirms arrival itself; for the others coditect marks the delivery, which would
    # otherwise land after the agent's own turn-end and leave it looking busy.
    if state.kind != "claude" and not _reports_prompts(events_file):
        events_file.append({"t": round(time.time(), 3), "event": DELIVERED})
        return Delivery(
            state.stream, "delivered", state.label, f"typed and entered ({state.kind} has no arrival signal)"
        )
    sha = text_sha(text)
    for attempt in range(2):
        wait = QUEUE_WAIT if state.state == "working" else CONFIRM
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            seen, exact = _arrived(events_file, start, sha)
            if seen:
                if exact:
                    return Delivery(state.stream, "delivered", state.label)
                return Delivery(state.stream, "delivered", state.label, "arrived, but not exactly as sent")
            time.sleep(0.05)
        if state.state == "working":
            return Delivery(state.stream, "queued", state.label, "the agent is busy: Claude Code queued it")
        if attempt == 0:
            tmux.press([state.pane_id])  # the Enter may have landed inside the paste: once more
    return Delivery(
        state.stream, "unconfirmed", state.label, "typed and entered; the agent did not report it"
    )


def _hold(s: PhaseSession, state: AgentState, text: str, *, busy: bool = False) -> Delivery:
    """Keep ``text`` for the stream until its agent's turn ends (its Stop hook delivers it).

    ``busy``: the agent works and would glue a message typed now to the next one in its own queue, so
    coditect queues it instead, to be delivered one per turn.
    """
    from coditect_cli.state.messages import hold
    from coditect_cli.state.store import Store

    reason = (
        "busy: delivered when its turn ends"
        if busy
        else (f"{state.label}: {state.detail}" if state.detail else state.label)
    )
    with Store.open(s.common) as store:
        message_id = hold(store, s.manifest.phase, state.stream, text, reason)
    agent_file(s.common, s.manifest.phase, state.stream, ".held").touch()
    if busy:
        return Delivery(state.stream, "queued", state.label, f"queued by coditect ({reason})", message_id)
    return Delivery(state.stream, "held", state.label, f"held until the agent is idle ({reason})", message_id)


def _one_per_turn(state: AgentState) -> bool:
    """Agents that report their turns (Claude Code's hooks, Codex's notify) get one message per turn: a
    message typed while they work would be queued by them and glued to the next one."""
    return state.kind in {"claude", "codex"}


def _skip_reason(state: AgentState) -> str | None:
    if state.state == "missing":
        return "no pane"
    if state.state == "exited":
        return f"the agent {state.label}"
    return None


def deliver(
    project: Project,
    phase: str | None,
    texts: Mapping[str, str],
    *,
    socket: str | None = None,
    force: bool = False,
) -> tuple[PhaseSession, list[Delivery]]:
    """Deliver each stream's text (key ``all``: every stream) to its agent; see the module docstring.

    Never types into a pane that waits for approval or sits at a dialog: the message is held (``force``
    types it anyway). Messages already held for a stream that can take text now go first, in order.
    """
    from coditect_cli.adapters.tmux import Tmux

    s = phase_session(project, phase, socket)
    streams = [st.id for st in ordered_streams(s.manifest)]
    unknown = [t for t in texts if t != "all" and t not in streams]
    if unknown:
        raise UsageError(
            f"no stream {unknown[0]!r} in phase {s.manifest.phase} (streams: {', '.join(streams)}, or all)"
        )
    wanted = {st: texts["all"] for st in streams} if "all" in texts else dict(texts)
    tmux = Tmux(s.socket)
    order = [st for st in streams if st in wanted]
    remote = {st.id for st in s.manifest.streams if st.host}
    local = [st for st in order if st not in remote]
    if local:
        s, found = s.locate(tmux)
        rows = panes_by_stream(found)
    else:
        rows = {}
    held = _held_counts(s)
    states = read_states(s, tmux, rows, local, held) if local else {}
    servers: dict[str, Tmux] = {}  # remote stream -> its host's tmux server
    unreachable: dict[str, str] = {}
    if remote:
        from coditect_cli.services.hosts import host_panes

        for entry in host_panes(project, s.manifest, s.common):
            mine = [st for st in entry.streams if st in wanted]
            if entry.unreachable:
                unreachable.update(dict.fromkeys(mine, entry.unreachable))
            elif mine:
                rows.update(entry.rows)
                servers.update(dict.fromkeys(mine, entry.tmux))
                states.update(host_states(s, entry, held, mine))
    if not rows and not unreachable:
        raise s.not_running()
    out: list[Delivery] = []
    for st in order:
        if st in unreachable:
            out.append(Delivery(st, "skipped", "unreachable", f"host unreachable: {unreachable[st]}"))
            continue
        state = states[st]
        skip = _skip_reason(state)
        if skip is not None:
            out.append(Delivery(st, "skipped", state.label, skip))
        elif not force and not state.accepts_text:
            out.append(_hold(s, state, wanted[st]))
        elif not force and _one_per_turn(state) and (state.state == "working" or state.held):
            out.append(_hold(s, state, wanted[st], busy=True))
            if state.state != "working":  # idle with older messages waiting: the oldest goes in now
                out.extend(_deliver_now(s, servers.get(st, tmux), state, []))
        else:
            out.extend(_deliver_now(s, servers.get(st, tmux), state, [wanted[st]]))
    return s, out


def _deliver_now(s: PhaseSession, tmux: Tmux, state: AgentState, texts: list[str]) -> list[Delivery]:
    """Held messages of the stream first, then ``texts``, one at a time (each confirmed before the next)."""
    from coditect_cli.state.messages import mark, waiting
    from coditect_cli.state.store import Store

    out: list[Delivery] = []
    with _typing(s, state.stream):
        held = []
        if state.held:
            with Store.open(s.common) as store:
                held = waiting(store, s.manifest.phase, state.stream)
        if held and _one_per_turn(state):
            held = held[:1]  # the rest wait for the next turn's end (its Stop hook flushes again)
        for message in held:
            done = _type_one(s, tmux, state, message.text)
            out.append(
                Delivery(state.stream, done.status, done.state, f"held since {message.created}", message.id)
            )
            if done.status in {"delivered", "queued"}:
                with Store.open(s.common) as store:
                    mark(store, message.id, "delivered")
            state = _busy(state)
        if held:
            with Store.open(s.common) as store:
                if not waiting(store, s.manifest.phase, state.stream):
                    agent_file(s.common, s.manifest.phase, state.stream, ".held").unlink(missing_ok=True)
        for text in texts:
            out.append(_type_one(s, tmux, state, text))
            state = _busy(state)
    return out


def _busy(state: AgentState) -> AgentState:
    """The state after a message went in: a hook agent now works on it (the next one gets queued)."""
    from dataclasses import replace

    return replace(state, state="working") if state.kind == "claude" else state


def deliver_held(
    project: Project, phase: str | None, stream: str | None = None, *, socket: str | None = None
) -> list[Delivery]:
    """Deliver the messages held for agents that can take text now (``idle``, or ``stream``'s only)."""
    from coditect_cli.adapters.tmux import Tmux

    s = phase_session(project, phase, socket)
    streams = [st.id for st in ordered_streams(s.manifest)]
    if stream is not None and stream not in streams:
        raise UsageError(f"no stream {stream!r} in phase {s.manifest.phase} (streams: {', '.join(streams)})")
    held = _held_counts(s)
    order = [st for st in streams if held.get(st) and (stream is None or st == stream)]
    if not order:
        return []
    tmux = Tmux(s.socket)
    s, found = s.locate(tmux)
    rows = panes_by_stream(found)
    states = read_states(s, tmux, rows, order, held)
    out: list[Delivery] = []
    for st in order:
        state = states[st]
        if state.state in {"idle", "unknown"}:
            out.extend(_deliver_now(s, tmux, state, []))
    return out
