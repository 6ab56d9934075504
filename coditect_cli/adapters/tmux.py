"""tmux, driven through the one subprocess runner (:func:`coditect_cli.adapters.proc.run`).

Every call is one ``tmux [-L SOCKET] CMD ; CMD ; ...`` process: a whole session (every pane, its options,
title, log pipe and layout) is built by a single tmux invocation, or a few when the command list exceeds what
one tmux client may send (16 KiB; see :func:`pack`). That is faster than one round-trip per
pane (libtmux, tmuxp) and race-free: tmux runs the whole command list before its event loop reaps a child,
so ``remain-on-exit`` is set before even an agent that exits at once could close its pane.

tmux facts this module relies on (tmux 3.3a):

- On the command line, an argument ending in ``;`` ends a command; :func:`escape` rewrites a trailing
  ``;`` as ``\\;``, which tmux turns back into ``;``.
- ``-c`` (start directory), ``select-pane -T`` and ``pipe-pane`` expand formats, so ``#`` is doubled
  there (:func:`literal`). Commands are taken as they are.
- No ``-e NAME=VALUE`` and no ``set-environment``: a value there shows in ``ps``, in ``--verbose`` and in
  tmux's error messages. A pane's environment comes from the 0600 file its command sources
  (:func:`~coditect_cli.domain.launch.pane_argv`).
- A command given as several arguments is ``execvp``'d without the user's ``default-shell``.
- Panes are found by the ``@coditect_stream`` user option, never by index (``base-index`` varies).
- Targets are explicit (``=SESSION:`` is the session's current window and its active pane): with no
  ``-t``, tmux picks the "best" session, which on a busy default server may be another one.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Collection, Sequence

from coditect_cli.adapters import proc
from coditect_cli.domain.launch import (
    SESSION_SIZE,
    STREAM_OPTION,
    TITLE_OPTION,
    PaneSpec,
    PaneState,
    SessionSpec,
    pane_argv,
)
from coditect_cli.errors import CommandFailed

log = logging.getLogger("coditect.tmux")

SOCKET_ENV = "CODITECT_TMUX_SOCKET"
"""Environment variable naming the tmux socket (``tmux -L``) when ``--socket`` is not given."""

SEP = "\x1f"  # between the fields of one list-panes row: tmux prints it as is; no sane path holds it
# pane_title last: programs may set it to anything, so the row is split at most len-1 times.
_FIELDS = (
    "session_name",
    "window_id",
    "window_index",
    "window_name",
    "pane_id",
    "pane_pid",
    "pane_dead",
    "pane_dead_status",
    "pane_dead_signal",
    "pane_current_command",
    "pane_current_path",
    STREAM_OPTION,
    TITLE_OPTION,
    "socket_path",
    "pane_start_path",
    "pane_title",
)
PANE_FORMAT = SEP.join(f"#{{{f}}}" for f in _FIELDS)

BORDER_FORMAT = (
    " #{?#{" + TITLE_OPTION + "},#{" + TITLE_OPTION + "},#{pane_title}}"
    "#{?pane_dead, — exited #{?pane_dead_signal,on signal #{pane_dead_signal},#{pane_dead_status}},} "
)
"""What the pane border shows: the stream's title, and how the agent ended once it has."""

CAPTURE_MARK = "\x1fcoditect-screen-end "
"""The line ending each pane's screen in :meth:`Tmux.capture`'s output."""

NO_SERVER = ("no server running", "error connecting to", "server exited unexpectedly")


def escape(arg: str) -> str:
    """``arg`` as tmux's command-line parser must receive it (a trailing ``;`` would end the command)."""
    return arg[:-1] + "\\;" if arg.endswith(";") else arg


def literal(text: str) -> str:
    """``text`` for an argument tmux expands as a format (``-c``, ``-T``, ``pipe-pane``): ``#`` doubled."""
    return text.replace("#", "##")


def sequence(commands: Sequence[Sequence[str]]) -> list[str]:
    """One tmux argument list running ``commands`` in order (``;``-separated, arguments escaped)."""
    out: list[str] = []
    for i, command in enumerate(commands):
        if i:
            out.append(";")
        out.extend(escape(arg) for arg in command)
    return out


def _int(text: str) -> int | None:
    return int(text) if text.strip().lstrip("-").isdigit() else None


def parse_panes(output: str) -> list[PaneState]:
    """Rows of ``list-panes -F PANE_FORMAT`` as :class:`PaneState` values."""
    rows: list[PaneState] = []
    for line in output.splitlines():
        parts = line.split(SEP, len(_FIELDS) - 1)
        if len(parts) != len(_FIELDS):
            continue
        f = dict(zip(_FIELDS, parts, strict=True))
        rows.append(
            PaneState(
                session=f["session_name"],
                window_id=f["window_id"],
                window_index=_int(f["window_index"]) or 0,
                window_name=f["window_name"],
                pane_id=f["pane_id"],
                pane_pid=_int(f["pane_pid"]),
                dead=f["pane_dead"] == "1",
                dead_status=_int(f["pane_dead_status"]),
                dead_signal=_int(f["pane_dead_signal"]),
                command=f["pane_current_command"],
                cwd=f["pane_current_path"],
                title=f["pane_title"],
                stream=f[STREAM_OPTION],
                stream_title=f[TITLE_OPTION],
                socket_path=f["socket_path"],
                start_path=f["pane_start_path"],
            )
        )
    return rows


def _spawn_args(pane: PaneSpec) -> list[str]:
    """The ``-c DIR -- ARGV`` tail shared by new-session, split-window, new-window and respawn-pane (no
    environment value: see the module docstring)."""
    return ["-c", literal(str(pane.cwd)), "--", *pane_argv(pane)]


def _window_options(target: str) -> list[list[str]]:
    return [
        ["set-option", "-w", "-t", target, "remain-on-exit", "on"],
        ["set-option", "-w", "-t", target, "pane-border-status", "top"],
        ["set-option", "-w", "-t", target, "pane-border-format", BORDER_FORMAT],
    ]


def _pane_setup(target: str, pane: PaneSpec) -> list[list[str]]:
    """Tag, title and log the pane ``target`` (the pane just created, active in its window)."""
    cmds = [
        ["set-option", "-p", "-t", target, STREAM_OPTION, pane.stream],
        ["set-option", "-p", "-t", target, TITLE_OPTION, pane.title],
        ["select-pane", "-t", target, "-T", literal(pane.title)],
    ]
    if pane.log is not None:
        # exec: one process per pane (the shell tmux starts for the pipe becomes cat).
        cmds.append(["pipe-pane", "-o", "-t", target, literal(f"exec cat > {shlex.quote(str(pane.log))}")])
    return cmds


Unit = list[list[str]]
"""Commands that must run in the same tmux process (a pane's creation and its options: ``remain-on-exit``
has to be set before tmux's event loop can notice an agent that exited at once)."""


def session_units(spec: SessionSpec) -> list[Unit]:
    """The commands creating ``spec`` from nothing, one unit per pane (plus a last one selecting pane 1)."""
    target = f"={spec.name}:"
    width, height = SESSION_SIZE
    units: list[Unit] = []
    for i, pane in enumerate(spec.panes):
        unit: Unit = []
        if i == 0:
            name = spec.window_name if spec.layout == "tiled" else pane.stream
            size = ["-x", str(width), "-y", str(height)]
            unit.append(["new-session", "-d", "-s", spec.name, *size, "-n", name, *_spawn_args(pane)])
        elif spec.layout == "tiled":
            unit.append(["split-window", "-t", target, *_spawn_args(pane)])
        else:
            unit.append(["new-window", "-t", target, "-n", pane.stream, *_spawn_args(pane)])
        if i == 0 or spec.layout == "windows":
            unit += _window_options(target)
        unit += _pane_setup(target, pane)
        if spec.layout == "tiled" and i > 0:
            # Re-tile after every split: the next split then has room (tmux refuses tiny panes).
            unit.append(["select-layout", "-t", target, "tiled"])
        units.append(unit)
    if spec.layout == "tiled":
        units.append([["select-pane", "-t", f"{target}.{{top-left}}"]])
    else:
        units.append([["select-window", "-t", f"{target}{{start}}"]])
    return units


def session_commands(spec: SessionSpec) -> list[list[str]]:
    """Every tmux command creating ``spec`` from nothing, in order."""
    return [cmd for unit in session_units(spec) for cmd in unit]


def add_pane_units(
    spec: SessionSpec, missing: Sequence[PaneSpec], existing: dict[str, PaneState]
) -> list[Unit]:
    """Units adding ``missing`` panes to the live session, each next to its neighbour in terminal order.

    ``existing`` maps stream ids to their live (or dead, kept) panes; they are never touched.
    """
    session = f"={spec.name}:"
    order = [p.stream for p in spec.panes]
    wanted = {p.stream for p in missing}
    units: list[Unit] = []
    # Where the previous stream's pane is (an existing pane id, or a window whose active pane it is).
    anchor: str | None = None
    for pane in spec.panes:
        if pane.stream in existing:
            state = existing[pane.stream]
            anchor = state.pane_id if spec.layout == "tiled" else state.window_id
            continue
        if pane.stream not in wanted:
            continue
        later = [existing[s] for s in order[order.index(pane.stream) + 1 :] if s in existing]
        spawn = _spawn_args(pane)
        unit: Unit = []
        if spec.layout == "tiled":
            if anchor is not None:
                unit.append(["split-window", "-t", anchor, *spawn])
                window = _window_of(anchor, existing)
            elif later:
                unit.append(["split-window", "-b", "-t", later[0].pane_id, *spawn])
                window = later[0].window_id
            else:
                unit.append(["new-window", "-t", session, "-n", spec.window_name, *spawn])
                unit += _window_options(session)
                window = session
            # The new pane is its window's active pane: target it through the window.
            unit += _pane_setup(window, pane)
            unit.append(["select-layout", "-t", window, "tiled"])
            anchor = window
        else:
            if anchor is not None:
                unit.append(["new-window", "-a", "-t", anchor, "-n", pane.stream, *spawn])
            elif later:
                unit.append(["new-window", "-b", "-t", later[0].window_id, "-n", pane.stream, *spawn])
            else:
                unit.append(["new-window", "-t", session, "-n", pane.stream, *spawn])
            # Without -d the new window is the session's current one.
            unit += _window_options(session)
            unit += _pane_setup(session, pane)
            anchor = session
        units.append(unit)
    return units


def add_pane_commands(
    spec: SessionSpec, missing: Sequence[PaneSpec], existing: dict[str, PaneState]
) -> list[list[str]]:
    """Every tmux command adding ``missing`` panes to the live session, in order."""
    return [cmd for unit in add_pane_units(spec, missing, existing) for cmd in unit]


def _window_of(anchor: str, existing: dict[str, PaneState]) -> str:
    """The window holding ``anchor`` (a pane id of ``existing``, or already a window/session target)."""
    for state in existing.values():
        if state.pane_id == anchor:
            return state.window_id
    return anchor


MESSAGE_BUDGET = 16_000
"""Bytes of arguments one tmux client may send: tmux refuses a command list over its 16 KiB message size
("command too long"), so larger sessions are built by a few invocations, cut between panes."""


def _size(command: Sequence[str]) -> int:
    return sum(len(escape(a).encode()) + 1 for a in command) + 2  # each argument NUL-terminated, plus ";"


def pack(units: Sequence[Unit], budget: int = MESSAGE_BUDGET) -> list[Unit]:
    """``units`` in order, grouped into as few tmux invocations as fit in ``budget`` bytes each.

    A unit is never split (a single unit over the budget gets an invocation of its own, and tmux's own
    error if it really is too long).
    """
    groups: list[Unit] = []
    current: Unit = []
    used = 0
    for unit in units:
        size = sum(_size(c) for c in unit)
        if current and used + size > budget:
            groups.append(current)
            current, used = [], 0
        current = current + unit
        used += size
    if current:
        groups.append(current)
    return groups


def respawn_commands(pane_id: str, pane: PaneSpec) -> list[list[str]]:
    """The commands starting ``pane``'s command again in the pane ``pane_id`` (see :meth:`Tmux.respawn`)."""
    commands: list[list[str]] = [["respawn-pane", "-k", "-t", pane_id, *_spawn_args(pane)]]
    if pane.log is not None:
        commands.append(["pipe-pane", "-t", pane_id])
        commands.append(
            ["pipe-pane", "-o", "-t", pane_id, literal(f"exec cat >> {shlex.quote(str(pane.log))}")]
        )
    return commands


def send_commands(pane_ids: Sequence[str], text: str) -> list[list[str]]:
    """Type ``text`` literally (``send-keys -l``) into each pane, then press Enter as a separate key."""
    cmds: list[list[str]] = []
    for pane_id in pane_ids:
        if text:
            cmds.append(["send-keys", "-t", pane_id, "-l", "--", text])
        cmds.append(["send-keys", "-t", pane_id, "Enter"])
    return cmds


class Tmux:
    """One tmux server: the default one, or ``tmux -L socket``. Counts its invocations (for benchmarks)."""

    def __init__(self, socket: str | None = None) -> None:
        self.socket = socket or None
        self.invocations = 0

    def argv(self, commands: Sequence[Sequence[str]]) -> list[str]:
        """The full command line running ``commands`` in one tmux process."""
        base = ["tmux", "-L", self.socket] if self.socket else ["tmux"]
        return [*base, *sequence(commands)]

    def run(self, *commands: Sequence[str], check: bool = True) -> proc.Completed:
        """Run ``commands`` in ONE tmux process (``cmd ; cmd ; ...``)."""
        self.invocations += 1
        return proc.run(self.argv(commands), check=check, timeout=60)

    def panes(self) -> list[PaneState]:
        """Every pane of the server, in one ``list-panes -a`` call; none when no server runs.

        tmux before 3.5 can miss a SIGCHLD: the agent stays a zombie and its pane dead without an exit
        status, for good. Any later child exit makes tmux reap every zombie, so when a dead pane has no
        status, a second call runs ``run-shell true`` (which waits for its child) before listing again.
        """
        rows = self._list_panes(reap=False)
        if any(r.dead and r.dead_status is None and r.dead_signal is None for r in rows):
            rows = self._list_panes(reap=True)
        return rows

    def _list_panes(self, *, reap: bool) -> list[PaneState]:
        listing = ["list-panes", "-a", "-F", PANE_FORMAT]
        done = self.run(*([["run-shell", "true"], listing] if reap else [listing]), check=False)
        if done.returncode != 0:
            if any(marker in done.stderr for marker in NO_SERVER):
                return []
            raise CommandFailed(list(done.argv), done.returncode, done.stderr)
        return parse_panes(done.stdout)

    def session_panes(self, session: str) -> list[PaneState]:
        """The panes of ``session`` (empty when it does not exist)."""
        return [p for p in self.panes() if p.session == session]

    def run_units(self, units: Sequence[Unit]) -> None:
        """Run ``units`` in as few tmux processes as tmux's message size allows (usually one)."""
        for group in pack(units):
            self.run(*group)

    def create_session(self, spec: SessionSpec) -> None:
        """Create the session ``spec`` describes, every pane included, in one tmux invocation (a few for
        very large sessions)."""
        self.run_units(session_units(spec))

    def add_panes(self, spec: SessionSpec, missing: list[PaneSpec], existing: dict[str, PaneState]) -> None:
        """Add ``missing`` panes to the existing session; existing panes are left alone."""
        if missing:
            self.run_units(add_pane_units(spec, missing, existing))

    def send(self, pane_ids: Sequence[str], text: str) -> None:
        """Type ``text`` literally into the panes, then Enter (one invocation for all of them)."""
        if pane_ids:
            self.run(*send_commands(pane_ids, text))

    def capture(self, pane_ids: Sequence[str], *, history: Collection[str] = ()) -> dict[str, str]:
        """The live screen (``capture-pane -p``, no scrollback) of each pane, in ONE tmux process.

        Panes in ``history`` (dead ones: no program draws there any more) include their last 50 lines of
        scrollback. The screens come back in order, each followed by a marker line naming its pane. A pane
        that vanished meanwhile fails the whole list: then every pane is captured on its own and the vanished
        ones left out.
        """
        if not pane_ids:
            return {}
        commands: list[list[str]] = []
        for pane_id in pane_ids:
            back = ["-S", "-50"] if pane_id in history else []
            commands.append(["capture-pane", "-p", *back, "-t", pane_id])
            commands.append(["display-message", "-p", "-t", pane_id, CAPTURE_MARK + "#{pane_id}"])
        done = self.run(*commands, check=False)
        if done.returncode != 0:
            if len(pane_ids) == 1:
                return {}
            out: dict[str, str] = {}
            for pane_id in pane_ids:
                out.update(self.capture([pane_id], history=history))
            return out
        screens: dict[str, str] = {}
        current: list[str] = []
        for line in done.stdout.split("\n"):
            if line.startswith(CAPTURE_MARK):
                screens[line.removeprefix(CAPTURE_MARK)] = "\n".join(current)
                current = []
            else:
                current.append(line)
        return screens

    def paste(self, pane_id: str, text: str) -> None:
        """Put ``text`` into the pane's input as the program's terminal would: through a tmux buffer (the
        text never appears on a command line), as a bracketed paste when the program asked for that, so a
        multi-line text arrives as one block and its newlines submit nothing."""
        buffer = f"coditect-{os.getpid()}-{pane_id.lstrip('%')}"
        self.invocations += 1
        proc.run([*self.argv([["load-buffer", "-b", buffer, "-"]])], input=text, timeout=60)
        self.run(["paste-buffer", "-d", "-p", "-r", "-b", buffer, "-t", pane_id])

    def press(self, pane_ids: Sequence[str], key: str = "Enter") -> None:
        """Press ``key`` in each pane (one tmux process)."""
        if pane_ids:
            self.run(*[["send-keys", "-t", pane_id, key] for pane_id in pane_ids])

    def respawn(self, pane_id: str, pane: PaneSpec) -> None:
        """Start ``pane``'s command again in the (dead or killed) pane ``pane_id``: same pane, options and
        title; its log pipe reopened."""
        self.run(*respawn_commands(pane_id, pane))

    def kill_session(self, session: str) -> None:
        """End ``session`` and every process in it."""
        self.run(["kill-session", "-t", f"={session}"])

    def switch_client(self, session: str) -> None:
        """Inside tmux: switch the current client to ``session`` (no nested tmux)."""
        self.run(["switch-client", "-t", f"={session}"])

    def attach_argv(self, session: str) -> list[str]:
        """The command line attaching a terminal to ``session``."""
        return self.argv([["attach-session", "-t", f"={session}"]])

    def exec_attach(self, session: str) -> None:
        """Replace this process with ``tmux attach-session``: the terminal belongs to tmux from here on.

        Not through :func:`proc.run`, which captures output: attaching needs the real terminal, and there
        is nothing left to do afterwards. The binary is resolved and the command logged the same way.
        """
        from coditect_cli import handoff

        argv = self.attach_argv(session)
        binary = proc.which("tmux")
        log.debug("$ exec %s", shlex.join(argv))
        handoff.exec_program(binary, argv)  # a warm server's worker hands it to its caller


def inside_tmux_socket() -> str | None:
    """The socket path of the tmux server this process runs inside (``$TMUX``), or None outside tmux."""
    value = os.environ.get("TMUX", "")
    return value.split(",")[0] or None
