"""The state store on real SQLite files: schema, migrations, append-only events, redaction."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from coditect_cli.errors import ExitCode
from coditect_cli.state import MIGRATIONS, StateError, Store
from coditect_cli.state.store import parse_time

TOKEN = "ghp_" + "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6"  # the shape of a GitHub classic token (36 alnum)
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def test_open_creates_wal_store_with_current_schema(common_dir: Path) -> None:
    with Store.open(common_dir) as store:
        assert store.path == common_dir / "coditect" / "state.db"
        assert store.schema_version == len(MIGRATIONS)
    raw = _raw(common_dir / "coditect" / "state.db")
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        names = {
            row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
        }
        assert {"runs", "events", "meta", "events_no_update", "events_no_delete"} <= names
    finally:
        raw.close()


def test_open_in_a_real_git_common_dir(tmp_path: Path, isolated_git: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    common = subprocess.run(
        ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with Store.open(Path(common)) as store:
        assert store.path == repo / ".git" / "coditect" / "state.db"
        assert store.path.is_file()


def test_missing_common_dir_is_a_state_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot create the state directory"):
        Store.open(tmp_path / "nope")


def test_reopening_does_not_rerun_migrations(common_dir: Path) -> None:
    with Store.open(common_dir) as store:
        run_id = store.begin_run("streams setup", "phase-1")
    # Migration 1 creates tables without IF NOT EXISTS: running it again would fail.
    with Store.open(common_dir) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert [run.id for run in store.runs()] == [run_id]


def test_an_appended_migration_runs_once_and_old_code_refuses_the_result(common_dir: Path) -> None:
    calls: list[int] = []

    def add_prs(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("CREATE TABLE prs (id INTEGER PRIMARY KEY, title TEXT NOT NULL)")

    with Store.open(common_dir) as store:
        store.begin_run("streams setup", "phase-1")
    newer = (*MIGRATIONS, add_prs, "CREATE INDEX prs_by_title ON prs(title);")
    with Store.open(common_dir, migrations=newer) as store:
        assert store.schema_version == len(MIGRATIONS) + 2
    with Store.open(common_dir, migrations=newer) as store:
        assert store.schema_version == len(MIGRATIONS) + 2
        assert len(store.runs()) == 1
    assert calls == [1]
    with pytest.raises(StateError) as caught:
        Store.open(common_dir)
    assert str(common_dir / "coditect" / "state.db") in caught.value.message
    assert "newer coditect" in caught.value.message


def test_a_failing_migration_rolls_back_and_keeps_the_version(common_dir: Path) -> None:
    broken = (*MIGRATIONS, "CREATE TABLE half (x TEXT); INSERT INTO no_such_table VALUES (1);")
    with pytest.raises(StateError, match="no_such_table"):
        Store.open(common_dir, migrations=broken)
    raw = _raw(common_dir / "coditect" / "state.db")
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 'half'").fetchone()[0] == 0
    finally:
        raw.close()


def test_future_schema_version_is_refused_naming_the_file(common_dir: Path) -> None:
    Store.open(common_dir).close()
    db = common_dir / "coditect" / "state.db"
    raw = _raw(db)
    raw.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    raw.close()
    with pytest.raises(StateError) as caught:
        Store.open(common_dir)
    assert str(db) in caught.value.message
    assert f"schema version {len(MIGRATIONS) + 5}" in caught.value.message
    assert caught.value.exit_code == ExitCode.ERROR


def test_a_file_that_is_not_a_database_is_a_state_error(common_dir: Path) -> None:
    (common_dir / "coditect").mkdir()
    db = common_dir / "coditect" / "state.db"
    db.write_bytes(b"this is not sqlite, " * 100)
    with pytest.raises(StateError) as caught:
        Store.open(common_dir)
    assert str(db) in caught.value.message


def test_concurrent_first_opens_migrate_once(common_dir: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from coditect_cli.state import Store
        with Store.open(Path(sys.argv[1])) as store:
            store.begin_run("opener", None)
            print(store.schema_version)
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(common_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == str(len(MIGRATIONS))
    with Store.open(common_dir) as store:
        assert len(store.runs(command="opener")) == 4


def test_events_are_append_only(common_dir: Path) -> None:
    with Store.open(common_dir) as store:
        run_id = store.begin_run("streams setup", "phase-1")
        store.record_event(run_id, "streams setup", "note", detail={"x": 1})
    raw = _raw(common_dir / "coditect" / "state.db")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("UPDATE events SET kind = 'other'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM events")
        assert raw.execute("SELECT kind FROM events").fetchall() == [("note",)]
    finally:
        raw.close()


def test_foreign_keys_are_enforced(common_dir: Path) -> None:
    with Store.open(common_dir) as store, pytest.raises(StateError, match="FOREIGN KEY"):
        store.record_event(999, "streams setup", "note")


def test_ref_moves_are_recorded_and_read_back_in_order(common_dir: Path) -> None:
    a, b = "a" * 40, "b" * 40
    with Store.open(common_dir) as store:
        run_id = store.begin_run("streams setup", "phase-1")
        store.record_ref_move(run_id, "streams setup", "phase-1", "root", "refs/heads/develop", None, a)
        store.record_ref_move(run_id, "streams setup", "phase-1", "api", "refs/heads/develop", a, b)
        store.record_event(run_id, "streams setup", "note", phase="phase-1")
        store.record_ref_move(run_id, "streams setup", "phase-1", "root", "refs/heads/develop", b, None)
        store.record_ref_move(None, "checkpoint 1", "phase-2", "root", "refs/heads/x", None, a)
        with pytest.raises(ValueError):
            store.record_ref_move(run_id, "streams setup", "phase-1", "root", "refs/heads/y", None, None)

        moves = store.events(phase="phase-1", kind="ref")
        assert [(e.repo, e.ref, e.old, e.new) for e in moves] == [
            ("root", "refs/heads/develop", None, a),
            ("api", "refs/heads/develop", a, b),
            ("root", "refs/heads/develop", b, None),
        ]
        assert all(e.run_id == run_id and e.command == "streams setup" and e.kind == "ref" for e in moves)
        assert [e.id for e in moves] == sorted(e.id for e in moves)
        assert all(TIME_RE.match(e.time) for e in moves)
        assert len(store.events(phase="phase-1")) == 4
        assert len(store.events()) == 5
        assert [e.kind for e in store.events(run_id=run_id, repo="api")] == ["ref"]

        first = moves[0].time
        assert len(store.events(since=first)) == 5
        assert len(store.events(since=parse_time(first))) == 5
        future = datetime.now(timezone.utc) + timedelta(minutes=1)
        assert store.events(since=future) == []
        assert store.events(since=future.isoformat()) == []
        with pytest.raises(ValueError):
            store.events(since=datetime(2026, 1, 1))  # naive: ambiguous


def test_tokens_in_detail_never_reach_the_file(common_dir: Path) -> None:
    detail = {
        "stderr": f"remote: Invalid username or password ({TOKEN})",
        "argv": ["git", "push", f"https://x-access-token:{TOKEN}@github.com/o/r.git"],
        "nested": {"headers": [f"Authorization: Bearer {TOKEN}"], TOKEN: 1},
        "count": 3,
        "path": Path("/tmp/x"),
    }
    with Store.open(common_dir) as store:
        run_id = store.begin_run(f"pr open --token {TOKEN}", "phase-1")
        store.record_event(
            run_id, "pr open", "forge", repo=f"https://u:{TOKEN}@github.com/o/r", detail=detail
        )
        event = store.events(kind="forge")[0]
    assert TOKEN not in repr(event)
    assert event.detail is not None
    assert event.detail["count"] == 3
    assert event.detail["path"] == "/tmp/x"
    assert "***" in event.detail["stderr"]

    raw = _raw(common_dir / "coditect" / "state.db")
    try:
        rows = raw.execute("SELECT * FROM events").fetchall() + raw.execute("SELECT * FROM runs").fetchall()
    finally:
        raw.close()
    dump = repr(rows)
    assert "***" in dump
    assert TOKEN not in dump
    for file in (common_dir / "coditect").iterdir():  # the WAL and shm files too
        assert TOKEN.encode() not in file.read_bytes()


def test_run_lifecycle(common_dir: Path) -> None:
    with Store.open(common_dir) as store:
        run_id = store.begin_run("checkpoint 1", "phase-1")
        run = store.run(run_id)
        assert run is not None
        assert (run.command, run.phase, run.status, run.finished) == (
            "checkpoint 1",
            "phase-1",
            "running",
            None,
        )
        assert TIME_RE.match(run.started)

        store.finish_run(run_id, "ok")
        run = store.run(run_id)
        assert run is not None and run.status == "ok" and run.finished is not None
        assert TIME_RE.match(run.finished)
        with pytest.raises(StateError, match="already finished"):
            store.finish_run(run_id, "failed")
        with pytest.raises(StateError, match="no run 4242"):
            store.finish_run(4242, "ok")
        with pytest.raises(ValueError):
            store.finish_run(run_id, "running")

        with pytest.raises(RuntimeError), store.track_run("merge-phase", "phase-1"):
            raise RuntimeError("boom")
        with store.track_run("status", None) as ok_id:
            pass
        assert [(r.command, r.status) for r in store.runs(phase="phase-1")] == [
            ("checkpoint 1", "ok"),
            ("merge-phase", "failed"),
        ]
        assert [r.id for r in store.runs(status="ok")] == [run_id, ok_id]


def test_transactions_commit_roll_back_and_nest(common_dir: Path) -> None:
    with Store.open(common_dir) as store:
        run_id = store.begin_run("streams setup", "phase-1")
        with pytest.raises(KeyError), store.transaction():
            store.record_event(run_id, "streams setup", "lost")
            raise KeyError("abort")
        assert store.events(kind="lost") == []

        with store.transaction():
            store.record_event(run_id, "streams setup", "kept")
            with pytest.raises(KeyError), store.transaction():
                store.record_event(run_id, "streams setup", "inner-lost")
                raise KeyError("inner")
            store.record_event(run_id, "streams setup", "kept-too")
        assert [e.kind for e in store.events()] == ["kept", "kept-too"]


def test_meta_round_trip(common_dir: Path) -> None:
    with Store.open(common_dir) as store:
        assert store.get_meta("forge") is None
        store.set_meta("forge", "local")
        store.set_meta("forge", "github")
        store.set_meta("secret", TOKEN)
        assert store.get_meta("forge") == "github"
        assert TOKEN not in (store.get_meta("secret") or "")
