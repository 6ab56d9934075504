"""Per-phase locks between real processes: contention names the holder, death releases the lock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coditect_cli.errors import ExitCode, UnavailableError
from coditect_cli.state import phase_lock, read_holder
from coditect_cli.state.lock import holder_path, lock_path

# Takes the phase lock, signals readiness by creating `ready`, then holds it until `release` exists.
HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from coditect_cli.state.lock import phase_lock
    common, phase, command, ready, release = sys.argv[1:6]
    with phase_lock(Path(common), phase, command, timeout=10):
        Path(ready).write_text("ready")
        deadline = time.monotonic() + 60
        while not Path(release).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    """
)

# Holds the lock file with a bare flock and records nothing (as a process that inherited the descriptor would).
BARE_FLOCK = textwrap.dedent(
    """
    import fcntl, os, sys, time
    from pathlib import Path
    lock_file, ready, release = sys.argv[1:4]
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    Path(ready).write_text("ready")
    deadline = time.monotonic() + 60
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    """
)


class Child:
    """A child python process and its two signal files."""

    def __init__(self, tmp: Path, name: str, code: str, *args: str) -> None:
        self.ready = tmp / f"{name}.ready"
        self.release_file = tmp / f"{name}.release"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, *args, str(self.ready), str(self.release_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, limit: float = 30.0) -> None:
        deadline = time.monotonic() + limit
        while not self.ready.exists():
            if self.proc.poll() is not None:
                _, err = self.proc.communicate()
                pytest.fail(f"child exited with {self.proc.returncode} before it was ready:\n{err}")
            if time.monotonic() > deadline:
                pytest.fail("child never became ready")
            time.sleep(0.02)

    def release(self) -> None:
        self.release_file.write_text("go")
        self.proc.wait(timeout=30)
        assert self.proc.returncode == 0, self.proc.communicate()[1]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc.communicate()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[list[Child]]:
    children: list[Child] = []
    yield children
    for child in children:
        child.cleanup()


def _holder(tmp_path: Path, spawn: list[Child], common_dir: Path, phase: str, command: str) -> Child:
    child = Child(tmp_path, f"holder{len(spawn)}", HOLDER, str(common_dir), phase, command)
    spawn.append(child)
    child.wait_ready()
    return child


def test_a_second_process_waits_then_names_the_holder(
    tmp_path: Path, common_dir: Path, spawn: list[Child]
) -> None:
    child = _holder(tmp_path, spawn, common_dir, "phase-1", "coditect streams setup")
    recorded = read_holder(common_dir, "phase-1")
    assert recorded is not None
    assert (recorded.pid, recorded.command, recorded.is_alive()) == (
        child.pid,
        "coditect streams setup",
        True,
    )

    started = time.monotonic()
    with (
        pytest.raises(UnavailableError) as caught,
        phase_lock(common_dir, "phase-1", "coditect checkpoint 1", 0.5),
    ):
        pytest.fail("acquired a lock another process holds")
    waited = time.monotonic() - started
    message = caught.value.message
    assert waited >= 0.45
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert message.startswith("phase 'phase-1' is locked by `coditect streams setup` (pid ")
    assert f"pid {child.pid} on {socket.gethostname()}, since " in message
    assert message.endswith("; try again when it finishes")

    # Another phase is not blocked.
    with phase_lock(common_dir, "phase-2", "coditect streams setup phase-2", timeout=0) as other:
        assert other.pid == os.getpid()

    child.release()
    assert not holder_path(common_dir, "phase-1").exists()  # the holder removed its record
    started = time.monotonic()
    with phase_lock(common_dir, "phase-1", "coditect checkpoint 1", timeout=0) as mine:
        assert time.monotonic() - started < 0.5
        assert read_holder(common_dir, "phase-1") == mine
        assert mine.command == "coditect checkpoint 1"
    assert not holder_path(common_dir, "phase-1").exists()
    assert lock_path(common_dir, "phase-1").exists()  # flock files stay; only the record goes


def test_a_killed_holder_does_not_leave_the_lock_stuck(
    tmp_path: Path, common_dir: Path, spawn: list[Child]
) -> None:
    child = _holder(tmp_path, spawn, common_dir, "phase-1", "coditect merge-phase")
    child.kill()
    leftover = read_holder(common_dir, "phase-1")
    assert leftover is not None and leftover.pid == child.pid
    assert leftover.is_alive() is False

    started = time.monotonic()
    with phase_lock(common_dir, "phase-1", "coditect merge-phase --continue", timeout=0) as mine:
        assert time.monotonic() - started < 0.5
        assert read_holder(common_dir, "phase-1") == mine


def test_a_held_lock_with_a_dead_recorded_holder_is_reported_stale(
    tmp_path: Path, common_dir: Path, spawn: list[Child]
) -> None:
    dead = _holder(tmp_path, spawn, common_dir, "phase-1", "coditect checkpoint 2")
    dead.kill()
    bare = Child(tmp_path, "bare", BARE_FLOCK, str(lock_path(common_dir, "phase-1")))
    spawn.append(bare)
    bare.wait_ready()

    with pytest.raises(UnavailableError) as caught, phase_lock(common_dir, "phase-1", "coditect status", 0.2):
        pytest.fail("acquired a lock another process holds")
    assert "stale" in caught.value.message
    assert f"`coditect checkpoint 2` (pid {dead.pid} " in caught.value.message
    assert caught.value.hint is not None and "fuser" in caught.value.hint

    bare.release()
    with phase_lock(common_dir, "phase-1", "coditect status", timeout=0):
        pass


def test_reacquiring_in_the_same_thread_fails_at_once(common_dir: Path) -> None:
    with phase_lock(common_dir, "phase-1", "coditect streams setup"):
        started = time.monotonic()
        with (
            pytest.raises(RuntimeError, match="not re-entrant"),
            phase_lock(common_dir, "phase-1", "again", 5.0),
        ):
            pass
        assert time.monotonic() - started < 1.0
        assert read_holder(common_dir, "phase-1") is not None  # the outer hold is intact
    with phase_lock(common_dir, "phase-1", "coditect streams setup", timeout=0):
        pass


def test_another_thread_of_the_same_process_waits(common_dir: Path) -> None:
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with phase_lock(common_dir, "phase-1", "coditect sync morning"):
            taken.set()
            done.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert taken.wait(30)
        with (
            pytest.raises(UnavailableError, match=f"pid {os.getpid()} "),
            phase_lock(common_dir, "phase-1", "coditect status", timeout=0.1),
        ):
            pass
    finally:
        done.set()
        thread.join(30)


def test_phase_names_cannot_escape_the_locks_directory(common_dir: Path) -> None:
    with phase_lock(common_dir, "../evil/phase", "coditect streams setup", timeout=0):
        files = sorted(p.name for p in (common_dir / "coditect" / "locks").iterdir())
    assert files == ["..%2Fevil%2Fphase.holder.json", "..%2Fevil%2Fphase.lock"]
    assert sorted(p.name for p in common_dir.iterdir()) == ["coditect"]
