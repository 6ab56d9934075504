"""Pure-Python work beside this process's own, in a forked copy of it: real parallelism where a thread
would only take turns with the main one for the GIL.

``streams status`` reads a hundred worktrees' kept statuses (an index and a directory walk each: Python
work, no process to wait on) while it reads the panes; in a thread the two take turns, and every system call
of the main thread then waits for the other to let go. :func:`beside` runs the function in a fork of this
process (which has everything imported and read already) and hands its result back through a pipe; what the
fork's memos learned (:mod:`coditect_cli.adapters.memo`) comes back with it. Where fork is unavailable, or
other threads run (a fork copies only the calling one), it is a thread.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

T = TypeVar("T")

FORK_SAFE = frozenset({"coditect-warm-caller"})
"""Threads that may run while this process forks: they hold no lock (a warm worker's, waiting in recv)."""


class Beside(Generic[T]):
    """Work started by :func:`beside`: :meth:`result` waits for it; :meth:`discard` lets it go."""

    def __init__(self, fn: Callable[..., T], args: tuple[Any, ...], pid: int = 0, fd: int = -1) -> None:
        self._fn, self._args, self._pid, self._fd = fn, args, pid, fd
        self._future: Future[T] | None = None

    def result(self) -> T:
        """Its result; when it failed, ``fn`` runs again here and fails here as it would have without the
        fork (an exception does not always survive pickling with its fields)."""
        if self._future is not None:
            return self._future.result()
        try:
            outcome, value, learnt = pickle.loads(self._collect())
        except Exception:  # the fork died, or its answer did not arrive whole
            outcome, value, learnt = "redo", None, []
        from coditect_cli.adapters import memo

        memo.absorb(learnt)
        if outcome != "ok":
            return self._fn(*self._args)
        return value  # type: ignore[no-any-return]

    def discard(self) -> None:
        """Wait for it without its result (the caller failed meanwhile)."""
        if self._future is None and self._fd >= 0:
            with contextlib.suppress(OSError):
                self._collect()

    def _collect(self) -> bytes:
        chunks: list[bytes] = []
        try:
            while chunk := os.read(self._fd, 1 << 20):
                chunks.append(chunk)
        finally:
            os.close(self._fd)
            self._fd = -1
            os.waitpid(self._pid, 0)
        return b"".join(chunks)


def beside(fn: Callable[..., T], *args: Any) -> Beside[T]:
    """Start ``fn(*args)`` beside this process (see the module doc)."""
    others = [t for t in threading.enumerate() if t is not threading.current_thread()]
    if not hasattr(os, "fork") or any(t.name not in FORK_SAFE for t in others):
        work = Beside(fn, args)
        work._future = _in_thread(fn, *args)
        return work
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the fork: compute, send, leave without running the parent's exit handlers
        os.close(read_end)
        _send(write_end, fn, args)
        os._exit(0)
    os.close(write_end)
    return Beside(fn, args, pid, read_end)


def _send(fd: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    from coditect_cli.adapters import memo

    memo.mark()
    try:
        data = pickle.dumps(("ok", fn(*args), memo.learned()))
    except BaseException:  # the parent does it again itself, and fails there as it would have
        data = pickle.dumps(("redo", None, []))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)


def _in_thread(fn: Callable[..., T], *args: Any) -> Future[T]:
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="coditect-beside", daemon=True).start()
    return future
