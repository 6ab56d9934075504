"""The doctor's checks that need no sandbox: versions, the state store, the phase lock, origins."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from coditect_cli.services import doctor
from coditect_cli.state.lock import holder_path, phase_lock
from coditect_cli.state.store import DB_NAME, MIGRATIONS, STATE_DIR


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("git version 2.39.5", (2, 39, 5)),
        ("git version 2.38.0.windows.1", (2, 38, 0)),
        ("git version 2.45", (2, 45)),
        ("tmux 3.3a", (3, 3)),
        ("no digits here", None),
    ],
)
def test_parse_version(text: str, expected: tuple[int, ...] | None) -> None:
    assert doctor.parse_version(text) == expected


def test_python_check() -> None:
    assert doctor.python_check((3, 9, 18)).status == "fail"
    assert "needs 3.10" in doctor.python_check((3, 9, 18)).detail
    assert doctor.python_check((3, 10, 0)).status == "ok"


def _store(common: Path, version: int, *, wal: bool = True) -> Path:
    path = common / STATE_DIR / DB_NAME
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path, isolation_level=None)
    if wal:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.close()
    return path


@pytest.mark.parametrize(
    ("version", "status"),
    [(len(MIGRATIONS), "ok"), (len(MIGRATIONS) - 1, "warn"), (len(MIGRATIONS) + 1, "fail")],
    ids=["current", "older", "newer"],
)
def test_store_schema_version(tmp_path: Path, version: int, status: str) -> None:
    path = _store(tmp_path, version)
    before = sorted(os.listdir(path.parent))
    check = doctor.store_check(tmp_path)
    assert check.status == status, check
    assert f"schema version {version}" in check.detail
    assert sorted(os.listdir(path.parent)) == before == [DB_NAME], "no -wal or -shm file may appear"


def test_store_not_created_yet(tmp_path: Path) -> None:
    check = doctor.store_check(tmp_path)
    assert check.status == "ok" and "not created yet" in check.detail
    assert not (tmp_path / STATE_DIR).exists()


def test_store_that_is_not_a_database_fails(tmp_path: Path) -> None:
    path = tmp_path / STATE_DIR / DB_NAME
    path.parent.mkdir()
    path.write_bytes(b"not sqlite at all\n" * 100)
    check = doctor.store_check(tmp_path)
    assert check.status == "fail" and "cannot read the state store" in check.detail


def test_lock_free_held_and_stale(tmp_path: Path) -> None:
    assert doctor.lock_check(tmp_path, "phase-1").detail == "not locked"
    with phase_lock(tmp_path, "phase-1", "coditect checkpoint 1"):
        held = doctor.lock_check(tmp_path, "phase-1")
        record = holder_path(tmp_path, "phase-1").read_text(encoding="utf-8")
    assert held.status == "warn"
    assert held.detail.startswith(f"locked by `coditect checkpoint 1` (pid {os.getpid()}")
    # Freed, its record written again by hand (as a holder killed before removing it would leave it).
    holder_path(tmp_path, "phase-1").write_text(record.replace(str(os.getpid()), "0"), encoding="utf-8")
    stale = doctor.lock_check(tmp_path, "phase-1")
    assert stale.status == "warn" and stale.detail.startswith("stale lock: `coditect checkpoint 1` (pid 0")
    assert str(holder_path(tmp_path, "phase-1")) in (stale.hint or "")


def test_local_origin(tmp_path: Path) -> None:
    assert doctor._local_origin("https://github.com/o/r.git", tmp_path) is None
    assert doctor._local_origin("git@github.com:o/r.git", tmp_path) is None
    assert doctor._local_origin("ssh://git@host/o/r", tmp_path) is None
    assert doctor._local_origin("/srv/git/r.git", tmp_path) == Path("/srv/git/r.git")
    assert doctor._local_origin("file:///srv/git/r.git", tmp_path) == Path("/srv/git/r.git")
    assert doctor._local_origin("../r.git", tmp_path) == tmp_path / "../r.git"


def test_envelope_problems_of_a_check() -> None:
    warn = doctor.Check("tmux", "tmux", "warn", "tmux is not installed", "install tmux")
    (problem,) = warn.envelope_problems()
    assert (problem.code, problem.severity) == ("doctor.tmux", "warning")
    assert problem.message == "tmux: tmux is not installed (install tmux)"
    assert doctor.Check("git", "git", "ok", "git 2.39.5").envelope_problems() == ()
    fail = doctor.Check("git", "git", "fail", "too old")
    assert fail.envelope_problems()[0].severity == "error"
