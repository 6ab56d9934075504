"""Per-phase process locks, so two coditect commands never interleave their changes to one phase.

:func:`phase_lock` takes an exclusive :class:`filelock.FileLock` on ``<common_dir>/coditect/locks/<phase>.lock``.
On Unix that is an ``flock(2)`` on an open descriptor: the kernel drops it when the holder exits, however it
exits (``SIGKILL`` included), so a crashed command never leaves a phase locked. While the lock is held, a sidecar
``<phase>.holder.json`` records who holds it (pid, command, host, start time), so a second command can say whom it
is waiting for. The sidecar is only informative: it is written just after the lock is taken and removed just
before it is released, and a holder that crashed leaves it behind. Such a leftover names a dead pid; the next
holder overwrites it.

Different phases use different files and never block each other.

Not re-entrant: taking a phase's lock again in the thread that already holds it raises :class:`RuntimeError` at
once (a programming error) rather than waiting out the timeout against itself. Other threads of the same process
do wait, like other processes, because every acquisition opens its own descriptor.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

from filelock import FileLock, Timeout

from coditect_cli.adapters.proc import redact
from coditect_cli.errors import CoditectError, UnavailableError

LOCKS_DIR = Path("coditect") / "locks"

# (lock file, thread id) of every phase lock this process holds, to refuse a same-thread re-acquisition.
_held: set[tuple[str, int]] = set()
_held_guard = threading.Lock()


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or, in a leftover record, last held) a phase lock."""

    phase: str
    pid: int
    command: str
    host: str
    started: str

    def describe(self) -> str:
        """``\\`coditect streams setup\\` (pid 1234 on host, since 2026-11-21T10:00:00Z)``."""
        return f"`{self.command}` (pid {self.pid} on {self.host}, since {self.started})"

    def is_alive(self) -> bool | None:
        """Whether the holder process still runs; None when it ran on another host (no way to tell)."""
        if self.host != socket.gethostname():
            return None
        return _pid_alive(self.pid)


def _pid_alive(pid: int) -> bool:
    """True when ``pid`` names a live process (a zombie counts as dead: it holds no descriptors)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): trust kill(0)
    fields = stat.rpartition(")")[2].split()
    return not (fields and fields[0] == "Z")


def _file_stem(phase: str) -> str:
    # Phase names are git-ref-safe already; quoting keeps any '/' from escaping the locks directory.
    return quote(phase, safe="")


def lock_path(common_dir: Path, phase: str) -> Path:
    """The lock file of ``phase``: ``<common_dir>/coditect/locks/<phase>.lock``."""
    return Path(common_dir) / LOCKS_DIR / f"{_file_stem(phase)}.lock"


def holder_path(common_dir: Path, phase: str) -> Path:
    """The holder record of ``phase``: ``<common_dir>/coditect/locks/<phase>.holder.json``."""
    return Path(common_dir) / LOCKS_DIR / f"{_file_stem(phase)}.holder.json"


def read_holder(common_dir: Path, phase: str) -> LockHolder | None:
    """The recorded holder of ``phase``'s lock, or None. A record may be stale: check :meth:`LockHolder.is_alive`."""
    try:
        data = json.loads(holder_path(common_dir, phase).read_text(encoding="utf-8"))
        return LockHolder(
            phase=str(data["phase"]),
            pid=int(data["pid"]),
            command=str(data["command"]),
            host=str(data["host"]),
            started=str(data["started"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def lock_held(path: Path) -> bool | None:
    """Whether a process holds the flock on ``path`` now (None when it cannot be told).

    A shared lock, tried without waiting and released at once, conflicts only with an exclusive holder.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not Unix
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _write_holder(path: Path, holder: LockHolder) -> None:
    # Write then rename, so a waiting process never reads half a record.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(holder)) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _contention_error(common_dir: Path, phase: str, lock_file: Path) -> UnavailableError:
    holder = read_holder(common_dir, phase)
    find_it = f"find the process holding it with `fuser -v {lock_file}` or `lsof {lock_file}`"
    if holder is None:
        return UnavailableError(
            f"phase '{phase}' is locked by another process (no holder recorded in "
            f"{holder_path(common_dir, phase)}); try again when it finishes",
            hint=find_it,
        )
    if holder.is_alive() is False:
        # The kernel released the dead holder's flock; whoever holds it now did not record itself (it inherited
        # the descriptor, or took the lock an instant ago).
        return UnavailableError(
            f"phase '{phase}' is locked, but the lock is stale: its recorded holder {holder.describe()} is no "
            "longer running, and another process still holds the lock file",
            hint=find_it,
        )
    return UnavailableError(f"phase '{phase}' is locked by {holder.describe()}; try again when it finishes")


@contextmanager
def phase_lock(common_dir: Path, phase: str, command: str, timeout: float = 5.0) -> Iterator[LockHolder]:
    """Hold ``phase``'s exclusive lock for the block, recording ``command`` as its holder; yields the record.

    Waits up to ``timeout`` seconds (0: one attempt; negative: no limit) for another holder, then raises
    :class:`UnavailableError` naming it. Raises :class:`RuntimeError` at once if this thread already holds it.
    """
    locks = Path(common_dir) / LOCKS_DIR
    try:
        locks.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CoditectError(f"cannot create the lock directory {locks}: {exc.strerror or exc}") from exc
    lock_file = lock_path(common_dir, phase)
    key = (str(lock_file), threading.get_ident())
    with _held_guard:
        if key in _held:
            raise RuntimeError(
                f"phase '{phase}' is already locked by this thread (phase_lock is not re-entrant)"
            )
    lock = FileLock(str(lock_file), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise _contention_error(common_dir, phase, lock_file) from None
    with _held_guard:
        _held.add(key)
    record = holder_path(common_dir, phase)
    try:
        holder = LockHolder(
            phase=phase,
            pid=os.getpid(),
            command=redact(command),
            host=socket.gethostname(),
            started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        try:
            _write_holder(record, holder)
        except OSError as exc:
            raise CoditectError(f"cannot record the holder of phase '{phase}' in {record}: {exc}") from exc
        try:
            yield holder
        finally:
            record.unlink(missing_ok=True)  # still ours: we hold the lock
    finally:
        with _held_guard:
            _held.discard(key)
        lock.release()
