"""A warm interpreter for the commands run over and over: ``status``, ``streams status``, ``sync morning``,
and ``streams launch``.

Most of such a command's time is Python importing coditect, typer, rich and pydantic, not its work. The first
time one of them runs, it also starts a *warm server* in the background: a coditect process that has imported
everything once and waits on a Unix socket. The next run of one of these commands sends it its arguments,
working directory, environment, umask and its standard input, output and error themselves (as file
descriptors), and the server forks a child that runs the command exactly as this process would have, writing
straight to this terminal. The child's exit status comes back and becomes this process's. So the command
behaves the same either way (output, colours, terminal width, exit code, ``--watch``, Ctrl-C, which is passed
on), and costs a Python start-up without the imports.

- The socket lives in a private directory (``$XDG_RUNTIME_DIR/coditect`` or ``$TMPDIR/coditect-<uid>``, mode
  0700, owned by this user; anything else there means no server); the server only answers its own user (the
  peer's credentials are checked). The environment travels over that socket only: never on a command line,
  never in the server's own environment (it starts with a minimal one), never written anywhere.
- One server per interpreter and coditect installation. It stops after ``CODITECT_SERVER_IDLE`` seconds
  without a request (default 900), and at once when coditect's own source files changed since it started
  (that request then runs in-process).
- ``CODITECT_SERVER=0`` turns it off (the command runs in-process, no server is started).

Only a fixed set of commands is served (:data:`SERVED`); everything else always runs in-process. The worker
has no controlling terminal, so what needs one goes back to the caller (:mod:`coditect_cli.handoff`): the
``tmux attach`` that ends ``streams launch`` is run by the caller, which replaces itself with it; a launch
that would push to origin or reach remote hosts over ssh (either may prompt) stops before it changed
anything, and the caller runs it in-process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
import threading
from typing import Any

from coditect_cli.entry import SERVED, command_words, enabled, served

__all__ = ["SERVED", "command_words", "enabled", "run_served", "serve", "served"]

DEFAULT_IDLE = 900.0
_MAX_MESSAGE = 16 * 1024 * 1024
_HEADER = struct.Struct("!I")
# The server's own environment: what Python needs to start and find coditect, nothing else (no credentials).
_SERVER_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "TMPDIR",
)


def socket_dir() -> str | None:
    """The private directory holding the servers' sockets (created 0700), or None when none is safe."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = (
        os.path.join(base, "coditect")
        if base
        else os.path.join(os.environ.get("TMPDIR") or "/tmp", f"coditect-{os.getuid()}")
    )
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    import stat

    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None  # someone else's, or open to others: no server
    return path


def socket_path() -> str | None:
    """This interpreter's and installation's server socket, or None when there is no safe place for it."""
    import hashlib

    folder = socket_dir()
    if folder is None:
        return None
    package = os.path.dirname(os.path.abspath(__file__))
    key = "\0".join((sys.executable, sys.version, package, os.environ.get("PYTHONPATH", "")))
    path = os.path.join(folder, f"warm-{hashlib.sha256(key.encode()).hexdigest()[:16]}.sock")
    return path if len(path.encode()) < 108 else None  # AF_UNIX paths are short (107 bytes)


# -------------------------------------------------------------------------------------------- the client


def run_served(argv: list[str]) -> int | None:
    """Run ``argv`` on the warm server: its exit status, or None when it must run in-process (not a served
    command, serving off, no server yet: one is started for next time, or the server refused it)."""
    if not enabled() or not served(argv):
        return None
    path = socket_path()
    if path is None:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        start_server(path)
        return None
    try:
        return _exchange(conn, argv)
    finally:
        conn.close()


def _exchange(conn: socket.socket, argv: list[str]) -> int | None:

    umask = os.umask(0)
    os.umask(umask)
    request = {
        "argv": argv,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": umask,
        "streams": [_stream_info(s) for s in (sys.stdin, sys.stdout, sys.stderr)],
    }
    worker: list[int] = []  # its pid, once known
    caught: list[int] = []  # signals that came before it was known

    def forward(signum: int, _frame: Any) -> None:
        if not worker:
            caught.append(signum)
            return
        with contextlib.suppress(OSError):
            os.kill(worker[0], signum)

    # Ctrl-C (and the like) go to the worker, which ends as the command would; from here on, so that no
    # signal falls between the request and its answer.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    try:
        socket.send_fds(conn, [_frame(request)], [0, 1, 2])
        reader = _Reader(conn)
        started = reader.message()
    except OSError:
        started = None
    if not isinstance(started, dict) or not isinstance(started.get("pid"), int):
        _restore_signals()
        if caught:
            raise KeyboardInterrupt
        return None  # refused (stale server, bad request): run in-process
    worker.append(started["pid"])
    verbose = "--verbose" in argv or "-v" in argv
    if verbose:
        sys.stderr.write(f"coditect: run by the warm server (worker pid {worker[0]})\n")
        sys.stderr.flush()
    for signum in caught:
        forward(signum, None)
    try:
        ended = reader.message()
    except OSError:
        ended = None
    if isinstance(ended, dict) and isinstance(ended.get("decline"), str):
        # The worker stopped before changing anything: what comes next needs this process's terminal.
        _restore_signals()
        if verbose:
            sys.stderr.write(f"coditect: running here instead ({ended['decline']})\n")
        return None
    if isinstance(ended, dict) and isinstance(ended.get("exit"), int):
        program = ended.get("exec")
        if ended["exit"] == 0 and isinstance(program, list) and len(program) >= 2:
            # What the command ended with (``tmux attach``) belongs to this process and its terminal.
            _restore_signals()
            sys.stdout.flush()
            sys.stderr.flush()
            try:
                os.execv(str(program[0]), [str(a) for a in program[1:]])
            except OSError as exc:
                sys.stderr.write(f"coditect: cannot run {program[0]}: {exc.strerror}\n")
                return 1
        return int(ended["exit"])
    sys.stderr.write("coditect: the warm server's worker ended without an exit status\n")
    return 1


def _restore_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)


def _stream_info(stream: Any) -> dict[str, Any] | None:
    if stream is None:
        return None
    return {
        "encoding": getattr(stream, "encoding", None) or "utf-8",
        "errors": getattr(stream, "errors", None) or "strict",
        "line_buffering": bool(getattr(stream, "line_buffering", False)),
    }


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return _HEADER.pack(len(body)) + body


class _Reader:
    """Framed messages from one connection, in order (several may arrive in one read)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buf = bytearray()

    def _fill(self, size: int) -> None:
        while len(self.buf) < size:
            more = self.conn.recv(65536)
            if not more:
                raise OSError("connection closed")
            self.buf += more

    def message(self) -> Any:
        """The next message (OSError when the connection ends first or it is malformed)."""
        self._fill(_HEADER.size)
        (size,) = _HEADER.unpack_from(self.buf)
        if size > _MAX_MESSAGE:
            raise OSError("message too large")
        self._fill(_HEADER.size + size)
        body = bytes(self.buf[_HEADER.size : _HEADER.size + size])
        del self.buf[: _HEADER.size + size]
        try:
            return json.loads(body)
        except ValueError:
            raise OSError("malformed message") from None

    def message_with_fds(self, count: int) -> tuple[Any, list[int]]:
        """The next message and the descriptors sent with its first bytes (closed again on failure)."""
        data, fds, _flags, _addr = socket.recv_fds(self.conn, 65536, count)
        self.buf += data
        try:
            if not data:
                raise OSError("connection closed")
            return self.message(), fds
        except OSError:
            for fd in fds:
                os.close(fd)
            raise


def start_server(path: str) -> None:
    """Start the warm server for ``path`` in the background (its own session, no terminal, a minimal
    environment); failing to is not an error (the command runs in-process anyway)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k in _SERVER_ENV}
    idle = os.environ.get("CODITECT_SERVER_IDLE")
    if idle:
        env["CODITECT_SERVER_IDLE"] = idle
    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-m", "coditect_cli.warm", path],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )


# -------------------------------------------------------------------------------------------- the server


def _sources_stamp() -> tuple[tuple[str, int, int], ...]:
    """coditect's source files with their modification times and sizes: a change means a stale server."""
    package = os.path.dirname(os.path.abspath(__file__))
    out: list[tuple[str, int, int]] = []
    for folder, dirs, files in os.walk(package):
        dirs[:] = [d for d in dirs if d != "__pycache__" and d != "templates"]
        for name in files:
            if name.endswith(".py"):
                full = os.path.join(folder, name)
                try:
                    st = os.stat(full)
                except OSError:
                    continue
                out.append((full, st.st_mtime_ns, st.st_size))
    return tuple(sorted(out))


_THIRD_PARTY = (
    "rich.console",
    "rich.table",
    "rich.live",
    "typer._adapters",
    "pydantic.type_adapter",
    "yaml",
    "sqlite3",
    "filelock",
    "concurrent.futures.thread",
    "subprocess",
)


def _preload() -> None:
    """Import every coditect module and what they import lazily, so that each forked child starts with them
    (a module that fails to import here is imported, and its error reported, by the child that needs it)."""
    import importlib
    import pkgutil

    import coditect_cli

    names = [
        info.name
        for info in pkgutil.walk_packages(coditect_cli.__path__, "coditect_cli.")
        if not info.name.endswith(("__main__", ".warm", ".entry"))
    ]
    for name in (*_THIRD_PARTY, *names):
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    with contextlib.suppress(Exception):
        from coditect_cli.cli.app import prebuild

        prebuild(sorted({words[0] for words in SERVED}))


def serve(path: str) -> int:
    """Listen on ``path`` until idle (or stale): fork a child per request that runs it, and keep what each
    child's memos learned (merges, histories by commit ids) for the children after it."""
    import selectors

    signal.signal(signal.SIGTERM, _terminate)  # the socket is removed on the way out
    idle = float(os.environ.get("CODITECT_SERVER_IDLE") or DEFAULT_IDLE)
    listener = _listen(path)
    if listener is None:
        return 0
    stamp = _sources_stamp()
    _preload()
    from coditect_cli.adapters import memo

    inode = os.stat(path).st_ino
    _write_pid(path)
    chooser = selectors.DefaultSelector()
    chooser.register(listener, selectors.EVENT_READ)
    learning: dict[int, bytearray] = {}  # a child's pipe -> what it sent so far
    children: dict[int, int] = {}  # a child's pipe -> its pid
    try:
        while True:
            events = chooser.select(timeout=None if learning else idle)
            if not events and not learning:
                return 0
            for key, _mask in events:
                if key.fileobj is not listener:
                    fd = key.fd
                    chunk = os.read(fd, 1 << 20)
                    if chunk:
                        learning[fd] += chunk
                        continue
                    chooser.unregister(fd)
                    os.close(fd)
                    _absorb(memo, bytes(learning.pop(fd)))
                    # Waited for (not left to the kernel): its CPU time counts in this process's children.
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(children.pop(fd), 0)
                    continue
                conn, _ = listener.accept()
                with conn:
                    answer = _handle(conn, stamp, listener, learning, chooser)
                if answer == "stale":
                    return 0
                if isinstance(answer, tuple):
                    children[answer[0]] = answer[1]
    finally:
        listener.close()
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == inode:
                os.unlink(path)
                os.unlink(path + ".pid")


def _terminate(_signum: int, _frame: Any) -> None:
    raise SystemExit(0)


def _write_pid(path: str) -> None:
    """``<socket>.pid``: this server's process id (for ``ps``, ``kill`` and the benchmarks' CPU figures)."""
    tmp = f"{path}.pid.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as out:
        out.write(f"{os.getpid()}\n")
    os.replace(tmp, path + ".pid")


def _handle(
    conn: socket.socket, stamp: object, listener: socket.socket, learning: dict[int, bytearray], chooser: Any
) -> str | tuple[int, int]:
    """Answer one connection: fork its child ((its pipe, its pid)), or refuse it ("refused"); "stale" when
    this server must stop."""
    import selectors

    conn.settimeout(5.0)
    if not _same_user(conn):
        return "refused"
    try:
        request, fds = _Reader(conn).message_with_fds(3)
    except OSError:
        return "refused"
    try:
        conn.settimeout(None)
        if _sources_stamp() != stamp:
            conn.sendall(_frame({"stale": True}))
            return "stale"
        if not _valid(request) or len(fds) != 3:
            conn.sendall(_frame({"refused": "bad request"}))
            return "refused"
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            listener.close()
            os.close(read_end)
            for fd in learning:
                os.close(fd)
            _child(conn, request, fds, write_end)  # never returns
        os.close(write_end)
        learning[read_end] = bytearray()
        chooser.register(read_end, selectors.EVENT_READ)
        return read_end, pid
    finally:
        for fd in fds:
            os.close(fd)


def _absorb(memo: Any, data: bytes) -> None:
    """Keep what a child learned (sent by our own forked child: trusted as this process is)."""
    import pickle

    if not data:
        return
    with contextlib.suppress(Exception):
        memo.absorb(pickle.loads(data))


def _listen(path: str) -> socket.socket | None:
    """A socket listening on ``path``, or None when another server already answers there."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return None  # a server is there already
    except OSError:
        pass
    finally:
        probe.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(path)
    except OSError:
        listener.close()
        return None
    finally:
        os.umask(old)
    listener.listen(64)
    return listener


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return bool(uid == os.getuid())


def _valid(request: Any) -> bool:
    return bool(
        isinstance(request, dict)
        and isinstance(request.get("argv"), list)
        and all(isinstance(a, str) for a in request["argv"])
        and served(request["argv"])
        and isinstance(request.get("cwd"), str)
        and isinstance(request.get("env"), dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in request["env"].items())
        and isinstance(request.get("umask"), int)
        and isinstance(request.get("streams"), list)
        and len(request["streams"]) == 3
    )


def _child(conn: socket.socket, request: dict[str, Any], fds: list[int], lessons: int) -> None:
    """In the forked child: become the client's command (its descriptors, directory, environment) and run it."""
    import io
    import time

    from coditect_cli import handoff

    code = 1
    declined = ""
    finished = threading.Event()
    handoff.serving()
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        time.tzset()
        os.umask(request["umask"])
        modes = ("r", "w", "w")
        names = ("stdin", "stdout", "stderr")
        for fd, (name, mode, info) in enumerate(zip(names, modes, request["streams"], strict=True)):
            info = info or {}
            raw = io.FileIO(fd, mode, closefd=False)
            buffered: Any = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
            wrapper = io.TextIOWrapper(
                buffered,
                encoding=str(info.get("encoding") or "utf-8"),
                errors=str(info.get("errors") or "strict"),
                line_buffering=bool(info.get("line_buffering")) or (name == "stderr"),
                write_through=name == "stderr",
            )
            setattr(sys, name, wrapper)
            setattr(sys, f"__{name}__", wrapper)
        sys.argv = ["coditect", *request["argv"]]
        conn.sendall(_frame({"pid": os.getpid()}))
        _watch_caller(conn, finished)
        from coditect_cli.adapters import memo
        from coditect_cli.cli.app import main

        memo.mark()

        try:
            main(list(request["argv"]))
            code = 0
        except SystemExit as stop:
            code = _exit_code(stop.code)
        except KeyboardInterrupt:
            code = 130
        except handoff.RunInCaller as back:
            declined = back.reason or "it needs the terminal"
    except KeyboardInterrupt:  # Ctrl-C before the command started (or after it ended)
        code = 130
    except BaseException:
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        finished.set()
        ended: dict[str, Any] = {"decline": declined} if declined else {"exit": code}
        program = handoff.pending_exec()
        if program is not None and not declined:
            ended["exec"] = program
        with contextlib.suppress(OSError):
            conn.sendall(_frame(ended))
        _teach(lessons)
        os._exit(code)


def _watch_caller(conn: socket.socket, finished: threading.Event) -> None:
    """End this worker as Ctrl-C would when its caller goes away first (killed, or its terminal closed):
    nobody would read what it prints, and a ``--watch`` would refresh for ever."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            conn.recv(1)  # the caller never writes again: this returns when it hangs up
        if not finished.is_set():
            with contextlib.suppress(OSError):
                os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="coditect-warm-caller", daemon=True).start()


def _teach(fd: int) -> None:
    """Send the parent what this child's memos learned, then close the pipe."""
    try:
        import pickle

        from coditect_cli.adapters import memo

        data = pickle.dumps(memo.learned())
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except Exception:
        pass
    finally:
        os.close(fd)


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{value}\n")
    return 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: python -m coditect_cli.warm SOCKET\n")
        sys.exit(2)
    sys.exit(serve(sys.argv[1]))
