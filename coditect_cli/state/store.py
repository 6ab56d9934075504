"""The embedded state store: one SQLite file per project, ``<git-common-dir>/coditect/state.db``.

It keeps the run journal (``runs``: one row per coditect command that changes anything) and the append-only
``events`` log (every ref a command moved, and anything else worth auditing), plus a small ``meta`` table.
The file lives in the superproject's git common dir, so every worktree of the project shares one store.

Connection rules: stdlib :mod:`sqlite3` only, opened with ``isolation_level=None`` (autocommit; every
transaction is explicit, see :meth:`Store.transaction`), ``journal_mode=WAL`` so readers never block the
writer, ``foreign_keys=ON`` and a 5 s ``busy_timeout``. Times are UTC ISO-8601 with millisecond precision and a
``Z`` suffix (``2026-11-21T10:00:00.000Z``), fixed width, so they sort and compare as text.

Every string written to the store passes through :func:`coditect_cli.adapters.proc.redact` first: tokens
never reach the file.

Schema migrations
-----------------
The schema version is ``PRAGMA user_version``: the number of entries of :data:`MIGRATIONS` applied. Opening a
store applies the missing ones in order, each in its own ``BEGIN IMMEDIATE`` transaction that also bumps
``user_version`` (so a crash leaves the store at a consistent version, and two processes opening a fresh store
at once migrate it exactly once). A store whose version is newer than this code knows is refused with
:class:`StateError`.

To add migration 2, append one entry to :data:`MIGRATIONS`; never edit or reorder an entry that has shipped.
An entry is either an SQL script (a string of ``;``-separated statements, triggers included) or a function
``(sqlite3.Connection) -> None``. Either runs inside the migration's transaction, so it must not ``BEGIN``,
``COMMIT`` or call ``executescript`` (which commits), and must not touch ``user_version``::

    _MIGRATION_2 = '''
    CREATE TABLE prs (id INTEGER PRIMARY KEY, repo TEXT NOT NULL, ...);
    '''
    MIGRATIONS = (_MIGRATION_1, _MIGRATION_2)

``events`` is append-only: triggers abort any UPDATE or DELETE on it. A migration that really must rewrite the
table (a rebuild; ``ALTER TABLE ... ADD COLUMN`` is fine without) has to drop the two triggers and recreate them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, TypeAlias

from coditect_cli.adapters.proc import redact
from coditect_cli.errors import CoditectError, ExitCode, UnavailableError

STATE_DIR = "coditect"
DB_NAME = "state.db"
BUSY_TIMEOUT_MS = 5000

RUN_STATUSES = ("running", "ok", "failed", "aborted")
"""Every value ``runs.status`` takes; a run starts ``running`` and is finished with one of the others."""

REF_KIND = "ref"
"""The event kind of a ref move (see :meth:`Store.record_ref_move`)."""

# A migration: an SQL script, or a function run on the connection inside the migration's transaction.
Migration: TypeAlias = "str | Callable[[sqlite3.Connection], None]"

_MIGRATION_1 = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    command TEXT NOT NULL,
    phase TEXT,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL DEFAULT 'running'
);
CREATE INDEX runs_by_phase ON runs(phase, id);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES runs(id),
    time TEXT NOT NULL,
    command TEXT NOT NULL,
    phase TEXT,
    repo TEXT,
    kind TEXT NOT NULL,
    ref TEXT,
    old TEXT,
    new TEXT,
    detail TEXT
);
CREATE INDEX events_by_phase ON events(phase, kind, id);
CREATE INDEX events_by_run ON events(run_id);
CREATE INDEX events_by_time ON events(time);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed');
END;

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
"""

# Migration 2: the local forge. Pull requests (numbered per repository; at most one open PR per repository,
# base and head), their reviews and comments, and check results by commit (a history: the latest row per
# repository, commit and name is the current result).
_MIGRATION_2 = """
CREATE TABLE pull_requests (
    id INTEGER PRIMARY KEY,
    repo TEXT NOT NULL,
    number INTEGER NOT NULL CHECK (number > 0),
    base TEXT NOT NULL,
    head TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'merged', 'closed')),
    head_sha TEXT,
    merged_head_sha TEXT,
    base_sha TEXT,
    merge_commit TEXT,
    strategy TEXT CHECK (strategy IS NULL OR strategy IN ('squash', 'merge', 'rebase')),
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    merged TEXT,
    closed TEXT,
    UNIQUE (repo, number)
);
CREATE UNIQUE INDEX pull_requests_one_open ON pull_requests(repo, base, head) WHERE state = 'open';
CREATE INDEX pull_requests_by_base ON pull_requests(repo, base, number);

CREATE TABLE reviews (
    id INTEGER PRIMARY KEY,
    pr_id INTEGER NOT NULL REFERENCES pull_requests(id),
    reviewer TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('approved', 'changes_requested', 'commented')),
    body TEXT NOT NULL DEFAULT '',
    head_sha TEXT,
    time TEXT NOT NULL
);
CREATE INDEX reviews_by_pr ON reviews(pr_id, id);

CREATE TABLE checks (
    id INTEGER PRIMARY KEY,
    repo TEXT NOT NULL,
    sha TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'success', 'failure')),
    log TEXT,
    time TEXT NOT NULL
);
CREATE INDEX checks_by_commit ON checks(repo, sha, name, id);

CREATE TABLE comments (
    id INTEGER PRIMARY KEY,
    pr_id INTEGER NOT NULL REFERENCES pull_requests(id),
    author TEXT NOT NULL,
    body TEXT NOT NULL,
    time TEXT NOT NULL
);
CREATE INDEX comments_by_pr ON comments(pr_id, id);
"""

_MIGRATION_3 = """
CREATE TABLE tasks (
    phase TEXT NOT NULL,
    task TEXT NOT NULL,
    stream TEXT NOT NULL,
    state TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (phase, task)
);
CREATE TABLE blocks (
    id INTEGER PRIMARY KEY,
    phase TEXT NOT NULL,
    stream TEXT NOT NULL,
    reason TEXT NOT NULL,
    on_stream TEXT,
    created TEXT NOT NULL,
    resolved TEXT
);
CREATE INDEX blocks_open ON blocks(phase, stream, resolved);
CREATE TABLE syncs (
    id INTEGER PRIMARY KEY,
    phase TEXT NOT NULL,
    kind TEXT NOT NULL,
    day INTEGER NOT NULL,
    time TEXT NOT NULL,
    report TEXT
);
CREATE INDEX syncs_by_phase ON syncs(phase, kind, id);
"""

# Migration 4: the gating journal (``checkpoint`` and ``merge-phase``, see coditect_cli/services/journal.py).
# A journal is one run's plan: its steps (index, kind, JSON payload, pending/done/undone, JSON result) and the
# refs each step moves with their old and new values, journaled *before* they move. At most one journal per
# phase is open (resumable). Gate results are kept per journal and tree, so a resumed run never runs a gate
# twice on the same tree; ``gating_results`` is the record of each checkpoint and merge-phase outcome.
_MIGRATION_4 = """
CREATE TABLE journals (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES runs(id),
    command TEXT NOT NULL,
    phase TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    args TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'aborted')),
    started TEXT NOT NULL,
    finished TEXT
);
CREATE UNIQUE INDEX journals_one_open ON journals(phase) WHERE state = 'open';
CREATE INDEX journals_by_phase ON journals(phase, id);

CREATE TABLE journal_steps (
    journal_id INTEGER NOT NULL REFERENCES journals(id),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    kind TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'undone')),
    started TEXT,
    finished TEXT,
    result TEXT,
    PRIMARY KEY (journal_id, idx)
);

CREATE TABLE journal_refs (
    id INTEGER PRIMARY KEY,
    journal_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    repo TEXT NOT NULL,
    ref TEXT NOT NULL,
    location TEXT NOT NULL CHECK (location IN ('local', 'origin')),
    old TEXT,
    new TEXT,
    CHECK (old IS NOT NULL OR new IS NOT NULL),
    FOREIGN KEY (journal_id, idx) REFERENCES journal_steps(journal_id, idx)
);
CREATE INDEX journal_refs_by_step ON journal_refs(journal_id, idx, id);

CREATE TABLE gate_results (
    journal_id INTEGER NOT NULL REFERENCES journals(id),
    repo TEXT NOT NULL,
    tree TEXT NOT NULL,
    passed INTEGER NOT NULL CHECK (passed IN (0, 1)),
    detail TEXT NOT NULL DEFAULT '{}',
    time TEXT NOT NULL,
    PRIMARY KEY (journal_id, repo, tree)
);

CREATE TABLE gating_results (
    id INTEGER PRIMARY KEY,
    journal_id INTEGER NOT NULL UNIQUE REFERENCES journals(id),
    phase TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('checkpoint', 'merge-phase')),
    checkpoint INTEGER,
    status TEXT NOT NULL CHECK (status IN ('passed', 'failed', 'aborted')),
    data TEXT NOT NULL DEFAULT '{}',
    report TEXT,
    time TEXT NOT NULL
);
CREATE INDEX gating_results_by_phase ON gating_results(phase, kind, checkpoint, id);
"""

MIGRATIONS: tuple[Migration, ...] = (_MIGRATION_1, _MIGRATION_2, _MIGRATION_3, _MIGRATION_4)
"""The schema, as ordered migrations; ``user_version`` counts those applied. Append only."""


class StateError(CoditectError):
    """The state store cannot be opened or used (unreadable, corrupt, or written by a newer coditect)."""

    exit_code = ExitCode.ERROR
    code = "state"


@dataclass(frozen=True)
class Event:
    """One row of the append-only ``events`` log. ``detail`` is the decoded JSON object, if any."""

    id: int
    run_id: int | None
    time: str
    command: str
    phase: str | None
    repo: str | None
    kind: str
    ref: str | None
    old: str | None
    new: str | None
    detail: dict[str, Any] | None


PR_STATES = ("open", "merged", "closed")
"""Every value ``pull_requests.state`` takes."""
REVIEW_STATES = ("approved", "changes_requested", "commented")
"""Every value ``reviews.state`` takes."""
CHECK_STATUSES = ("pending", "success", "failure")
"""Every value ``checks.status`` takes."""
MERGE_STRATEGIES = ("squash", "merge", "rebase")
"""Every value ``pull_requests.strategy`` takes (once merged)."""


@dataclass(frozen=True)
class PullRequestRecord:
    """One row of ``pull_requests``: a pull request of the local forge."""

    id: int
    repo: str
    number: int
    base: str
    head: str
    title: str
    body: str
    state: str
    head_sha: str | None  # the head when the PR was opened
    merged_head_sha: str | None  # the head that was merged
    base_sha: str | None  # the base tip the merge was made on
    merge_commit: str | None  # the base tip after the merge
    strategy: str | None
    created: str
    updated: str
    merged: str | None
    closed: str | None


@dataclass(frozen=True)
class ReviewRecord:
    """One row of ``reviews``: a verdict on a pull request, with the head it was given on."""

    id: int
    pr_id: int
    reviewer: str
    state: str
    body: str
    head_sha: str | None
    time: str


@dataclass(frozen=True)
class CheckRecord:
    """One row of ``checks``: a check result (a gate run) on one commit."""

    id: int
    repo: str
    sha: str
    name: str
    status: str
    log: str | None
    time: str


@dataclass(frozen=True)
class CommentRecord:
    """One row of ``comments``."""

    id: int
    pr_id: int
    author: str
    body: str
    time: str


_PR_COLUMNS = (
    "id, repo, number, base, head, title, body, state, head_sha, merged_head_sha, base_sha, merge_commit, "
    "strategy, created, updated, merged, closed"
)


@dataclass(frozen=True)
class Run:
    """One row of the run journal: a command invocation, its phase, when it ran and how it ended."""

    id: int
    command: str
    phase: str | None
    started: str
    finished: str | None
    status: str


def utc_now() -> str:
    """The current time as the store writes it: UTC ISO-8601, milliseconds, ``Z`` suffix."""
    return format_time(datetime.now(timezone.utc))


def format_time(moment: datetime) -> str:
    """Format an aware datetime the way the store does (UTC, milliseconds, ``Z``); naive ones are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a naive datetime is ambiguous here; give it a timezone: {moment.isoformat()}")
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """Parse an ISO-8601 time with an offset or ``Z`` (as the store writes them) into an aware datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no timezone; add 'Z' for UTC")
    return moment


def _scrub(value: object) -> object:
    """Make ``value`` JSON-ready with every string (keys included) passed through ``redact``."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {redact(str(key)): _scrub(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scrub(item) for item in value]
    return redact(str(value))


def _redact_opt(value: str | None) -> str | None:
    return None if value is None else redact(value)


def _statements(script: str) -> Iterator[str]:
    """Split an SQL script into complete statements (``CREATE TRIGGER ... END;`` bodies stay whole)."""
    buffer = ""
    pieces = script.split(";")
    for piece in pieces[:-1]:
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            buffer = ""
            if statement != ";":
                yield statement
    rest = (buffer + pieces[-1]).strip()
    if rest:
        raise ValueError(f"SQL script ends with an incomplete statement: {rest[:80]!r}")


def _run_migration(conn: sqlite3.Connection, migration: Migration) -> None:
    if isinstance(migration, str):
        for statement in _statements(migration):
            conn.execute(statement)
    else:
        migration(conn)


class Store:
    """An open state store. Create it with :meth:`Store.open`; use it as a context manager or call ``close``.

    One connection, synchronous, not shared between threads. Writes outside :meth:`transaction` commit on
    their own (each is one statement); inside it, they commit or roll back together.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Wrap an already configured and migrated connection; use :meth:`Store.open` instead."""
        self._conn = conn
        self._path = path
        self._savepoints = 0

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    def open(cls, common_dir: Path, *, migrations: Sequence[Migration] = MIGRATIONS) -> Store:
        """Open (creating if needed) ``<common_dir>/coditect/state.db`` and bring its schema up to date.

        ``common_dir`` is the git common dir of the project's superproject. ``migrations`` exists for tests;
        callers use the default. Raises :class:`StateError` when the directory or file cannot be used, or the
        file was written by a newer coditect (its schema version is beyond ``len(migrations)``).
        """
        directory = Path(common_dir) / STATE_DIR
        try:
            directory.mkdir(exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"cannot create the state directory {directory}: {exc.strerror or exc}",
                hint="pass the git common dir of the project (`git rev-parse --git-common-dir`)",
            ) from exc
        path = directory / DB_NAME
        try:
            conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise StateError(f"cannot open the state store {path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            store = cls(conn, path)
            store._migrate(tuple(migrations))
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, path) from exc
            raise
        return store

    def close(self) -> None:
        """Close the connection (rolling back a transaction left open). Safe to call twice."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def schema_version(self) -> int:
        """The schema version of the file (``PRAGMA user_version``): how many migrations it has."""
        with self._errors():
            return self._user_version()

    def _user_version(self) -> int:
        row = self._conn.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def _too_new(self, version: int, known: int) -> StateError:
        return StateError(
            f"the state store {self._path} has schema version {version}, but this coditect knows only "
            f"version {known}: it was written by a newer coditect",
            hint="upgrade coditect to use this project's state",
        )

    def _migrate(self, migrations: tuple[Migration, ...]) -> None:
        known = len(migrations)
        version = self._user_version()
        if version > known:
            raise self._too_new(version, known)
        while version < known:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-read under the write lock: another process may have migrated since we looked.
                version = self._user_version()
                if version > known:
                    raise self._too_new(version, known)
                if version < known:
                    _run_migration(self._conn, migrations[version])
                    version += 1
                    self._conn.execute(f"PRAGMA user_version = {version}")
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ transactions and errors

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise _translate(exc, self._path) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block as one transaction: ``BEGIN IMMEDIATE`` … ``COMMIT``, ``ROLLBACK`` on any exception.

        IMMEDIATE takes the write lock up front, so a read-then-write block cannot fail half-way on a
        concurrent writer (other processes wait up to the busy timeout, then get :class:`UnavailableError`).
        Nested calls become savepoints: an exception rolls back only the inner block.
        """
        if self._conn.in_transaction:
            name = f"coditect_sp{self._savepoints}"
            self._savepoints += 1
            try:
                with self._errors():
                    self._conn.execute(f"SAVEPOINT {name}")
                try:
                    yield
                except BaseException:
                    with self._errors():
                        self._conn.execute(f"ROLLBACK TO {name}")
                        self._conn.execute(f"RELEASE {name}")
                    raise
                with self._errors():
                    self._conn.execute(f"RELEASE {name}")
            finally:
                self._savepoints -= 1
            return
        with self._errors():
            self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self._conn.in_transaction:
                with self._errors():
                    self._conn.execute("ROLLBACK")
            raise
        try:
            with self._errors():
                self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ runs

    def begin_run(self, command: str, phase: str | None) -> int:
        """Journal the start of ``command`` (e.g. ``"streams setup"``) on ``phase``; return the run id."""
        with self._errors():
            cursor = self._conn.execute(
                "INSERT INTO runs (command, phase, started, status) VALUES (?, ?, ?, 'running')",
                (redact(command), _redact_opt(phase), utc_now()),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish_run(self, run_id: int, status: str) -> None:
        """Mark a running run finished with ``status`` (``ok``, ``failed`` or ``aborted``) and the time.

        Raises :class:`StateError` when the run does not exist or has already finished.
        """
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"a run finishes as one of ok, failed, aborted, not {status!r}")
        with self._errors():
            cursor = self._conn.execute(
                "UPDATE runs SET status = ?, finished = ? WHERE id = ? AND status = 'running'",
                (status, utc_now(), run_id),
            )
            if cursor.rowcount == 1:
                return
            existing = self.run(run_id)
        if existing is None:
            raise StateError(f"no run {run_id} in the state store {self._path}")
        raise StateError(f"run {run_id} (`{existing.command}`) already finished as {existing.status}")

    @contextmanager
    def track_run(self, command: str, phase: str | None) -> Iterator[int]:
        """Journal a run around the block: yields its id; finishes ``ok``, ``aborted`` on Ctrl-C, else ``failed``."""
        run_id = self.begin_run(command, phase)
        try:
            yield run_id
        except KeyboardInterrupt:
            self.finish_run(run_id, "aborted")
            raise
        except BaseException:
            self.finish_run(run_id, "failed")
            raise
        self.finish_run(run_id, "ok")

    def run(self, run_id: int) -> Run | None:
        """The run with this id, or None."""
        with self._errors():
            row = self._conn.execute(
                "SELECT id, command, phase, started, finished, status FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
        return None if row is None else Run(*row)

    def runs(
        self, *, command: str | None = None, phase: str | None = None, status: str | None = None
    ) -> list[Run]:
        """Runs matching every filter given, oldest first."""
        where, params = _where(command=command, phase=phase, status=status)
        with self._errors():
            rows = self._conn.execute(
                f"SELECT id, command, phase, started, finished, status FROM runs{where} ORDER BY id", params
            ).fetchall()
        return [Run(*row) for row in rows]

    # ------------------------------------------------------------------ events

    def record_event(
        self,
        run_id: int | None,
        command: str,
        kind: str,
        *,
        phase: str | None = None,
        repo: str | None = None,
        ref: str | None = None,
        old: str | None = None,
        new: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Append one event and return its id.

        ``detail`` is stored as JSON; every string in it (keys too) and every text column is redacted first,
        and values JSON cannot hold are stored as their (redacted) ``str``.
        """
        if not kind:
            raise ValueError("an event needs a kind")
        detail_json = None
        if detail is not None:
            detail_json = json.dumps(_scrub(detail), ensure_ascii=False, separators=(",", ":"))
        with self._errors():
            cursor = self._conn.execute(
                "INSERT INTO events (run_id, time, command, phase, repo, kind, ref, old, new, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    utc_now(),
                    redact(command),
                    _redact_opt(phase),
                    _redact_opt(repo),
                    redact(kind),
                    _redact_opt(ref),
                    _redact_opt(old),
                    _redact_opt(new),
                    detail_json,
                ),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def record_ref_move(
        self,
        run_id: int | None,
        command: str,
        phase: str | None,
        repo: str,
        ref: str,
        old: str | None,
        new: str | None,
    ) -> int:
        """Append a ref move (kind ``ref``): ``old`` is None for a creation, ``new`` None for a deletion."""
        if old is None and new is None:
            raise ValueError(f"a move of {ref} needs an old or a new object id")
        return self.record_event(run_id, command, REF_KIND, phase=phase, repo=repo, ref=ref, old=old, new=new)

    def events(
        self,
        phase: str | None = None,
        kind: str | None = None,
        since: datetime | str | None = None,
        *,
        run_id: int | None = None,
        repo: str | None = None,
    ) -> list[Event]:
        """Events matching every filter given, in the order they were recorded.

        ``since`` (inclusive) is an aware datetime or an ISO-8601 string with an offset or ``Z``.
        """
        where, params = _where(phase=phase, kind=kind, run_id=run_id, repo=repo)
        if since is not None:
            moment = since if isinstance(since, datetime) else parse_time(since)
            where += (" AND" if where else " WHERE") + " time >= ?"
            params.append(format_time(moment))
        with self._errors():
            rows = self._conn.execute(
                "SELECT id, run_id, time, command, phase, repo, kind, ref, old, new, detail "
                f"FROM events{where} ORDER BY id",
                params,
            ).fetchall()
        return [_event(row) for row in rows]

    # ------------------------------------------------------------------ meta

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one write statement (strings redacted); return the last row id. For modules owning tables."""
        clean = [redact(p) if isinstance(p, str) else p for p in params]
        with self._errors():
            cursor = self._conn.execute(sql, clean)
        return int(cursor.lastrowid or 0)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one read statement and return its rows."""
        with self._errors():
            return list(self._conn.execute(sql, list(params)).fetchall())

    def get_meta(self, key: str) -> str | None:
        """The value stored under ``key`` in ``meta``, or None."""
        with self._errors():
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0]) if row[0] is not None else None

    def set_meta(self, key: str, value: str | None) -> None:
        """Store ``value`` (redacted) under ``key`` in ``meta``, replacing any previous value."""
        with self._errors():
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, _redact_opt(value)),
            )

    # ------------------------------------------------------------------ pull requests (the local forge)

    def open_pull_request(
        self, repo: str, base: str, head: str, title: str, body: str, head_sha: str | None
    ) -> tuple[PullRequestRecord, bool]:
        """Open a pull request of ``head`` into ``base`` in ``repo``, numbered after the repository's last one.

        Idempotent: when one is already open for (repo, base, head) it is returned unchanged. Returns the
        record and whether it was created.
        """
        with self.transaction():
            existing = self.find_pull_request(repo, base, head)
            if existing is not None:
                return existing, False
            now = utc_now()
            with self._errors():
                row = self._conn.execute(
                    "SELECT COALESCE(MAX(number), 0) + 1 FROM pull_requests WHERE repo = ?", (repo,)
                ).fetchone()
                cursor = self._conn.execute(
                    "INSERT INTO pull_requests (repo, number, base, head, title, body, state, head_sha, created, "
                    "updated) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)",
                    # repo, base and head are lookup keys (manifest ids, branch names): stored as given.
                    (repo, int(row[0]), base, head, redact(title), redact(body), head_sha, now, now),
                )
            assert cursor.lastrowid is not None
            created = self._pull_request_by_id(cursor.lastrowid)
        return created, True

    def _pull_request_by_id(self, pr_id: int) -> PullRequestRecord:
        with self._errors():
            row = self._conn.execute(
                f"SELECT {_PR_COLUMNS} FROM pull_requests WHERE id = ?", (pr_id,)
            ).fetchone()
        if row is None:
            raise StateError(f"no pull request with id {pr_id} in the state store {self._path}")
        return PullRequestRecord(*row)

    def pull_request(self, repo: str, number: int) -> PullRequestRecord | None:
        """Pull request ``number`` of ``repo``, or None."""
        with self._errors():
            row = self._conn.execute(
                f"SELECT {_PR_COLUMNS} FROM pull_requests WHERE repo = ? AND number = ?", (repo, number)
            ).fetchone()
        return None if row is None else PullRequestRecord(*row)

    def find_pull_request(
        self, repo: str, base: str, head: str, state: str | None = "open"
    ) -> PullRequestRecord | None:
        """The latest pull request of ``head`` into ``base`` in ``repo`` in ``state`` (None: any), or None."""
        found = self.pull_requests(repo=repo, base=base, head=head, state=state)
        return found[-1] if found else None

    def pull_requests(
        self,
        *,
        repo: str | None = None,
        base: str | None = None,
        head: str | None = None,
        state: str | None = None,
    ) -> list[PullRequestRecord]:
        """Pull requests matching every filter given, by repository then number."""
        if state is not None and state not in PR_STATES:
            raise ValueError(f"a pull request state is one of {', '.join(PR_STATES)}, not {state!r}")
        where, params = _where(repo=repo, base=base, head=head, state=state)
        with self._errors():
            rows = self._conn.execute(
                f"SELECT {_PR_COLUMNS} FROM pull_requests{where} ORDER BY repo, number", params
            ).fetchall()
        return [PullRequestRecord(*row) for row in rows]

    def mark_pull_request_merged(
        self, pr_id: int, *, head_sha: str, base_sha: str, merge_commit: str, strategy: str
    ) -> PullRequestRecord:
        """Record that the open pull request ``pr_id`` was merged; StateError when it is not open."""
        if strategy not in MERGE_STRATEGIES:
            raise ValueError(f"a merge strategy is one of {', '.join(MERGE_STRATEGIES)}, not {strategy!r}")
        now = utc_now()
        with self._errors():
            cursor = self._conn.execute(
                "UPDATE pull_requests SET state = 'merged', merged_head_sha = ?, base_sha = ?, merge_commit = ?, "
                "strategy = ?, merged = ?, updated = ? WHERE id = ? AND state = 'open'",
                (head_sha, base_sha, merge_commit, strategy, now, now, pr_id),
            )
        record = self._pull_request_by_id(pr_id)
        if cursor.rowcount != 1:
            raise StateError(f"pull request #{record.number} of {record.repo} is {record.state}, not open")
        return record

    def close_pull_request(self, pr_id: int) -> PullRequestRecord:
        """Close the open pull request ``pr_id`` without merging it (a closed one is returned unchanged)."""
        now = utc_now()
        with self._errors():
            self._conn.execute(
                "UPDATE pull_requests SET state = 'closed', closed = ?, updated = ? WHERE id = ? AND state = 'open'",
                (now, now, pr_id),
            )
        return self._pull_request_by_id(pr_id)

    def add_review(
        self, pr_id: int, reviewer: str, state: str, body: str = "", head_sha: str | None = None
    ) -> ReviewRecord:
        """Append a review of pull request ``pr_id`` by ``reviewer`` (approved, changes_requested, commented)."""
        if state not in REVIEW_STATES:
            raise ValueError(f"a review state is one of {', '.join(REVIEW_STATES)}, not {state!r}")
        now = utc_now()
        with self._errors():
            cursor = self._conn.execute(
                "INSERT INTO reviews (pr_id, reviewer, state, body, head_sha, time) VALUES (?, ?, ?, ?, ?, ?)",
                (pr_id, redact(reviewer), state, redact(body), head_sha, now),
            )
        assert cursor.lastrowid is not None
        return ReviewRecord(cursor.lastrowid, pr_id, redact(reviewer), state, redact(body), head_sha, now)

    def reviews(self, pr_ids: Sequence[int]) -> list[ReviewRecord]:
        """Every review of the pull requests ``pr_ids``, oldest first (one query)."""
        ids = list(dict.fromkeys(pr_ids))
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        with self._errors():
            rows = self._conn.execute(
                "SELECT id, pr_id, reviewer, state, body, head_sha, time FROM reviews "
                f"WHERE pr_id IN ({marks}) ORDER BY id",
                ids,
            ).fetchall()
        return [ReviewRecord(*row) for row in rows]

    def record_check(
        self, repo: str, sha: str, name: str, status: str, log: str | None = None
    ) -> CheckRecord:
        """Record a check result on commit ``sha`` of ``repo`` (pending, success, failure); the latest wins."""
        if status not in CHECK_STATUSES:
            raise ValueError(f"a check status is one of {', '.join(CHECK_STATUSES)}, not {status!r}")
        now = utc_now()
        with self._errors():
            cursor = self._conn.execute(
                "INSERT INTO checks (repo, sha, name, status, log, time) VALUES (?, ?, ?, ?, ?, ?)",
                (repo, sha, redact(name), status, _redact_opt(log), now),
            )
        assert cursor.lastrowid is not None
        return CheckRecord(cursor.lastrowid, repo, sha, redact(name), status, _redact_opt(log), now)

    def checks(self, repo: str, shas: Sequence[str]) -> list[CheckRecord]:
        """The current result of every check on each of ``shas`` in ``repo`` (the latest row per name)."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return []
        marks = ", ".join("?" * len(wanted))
        with self._errors():
            rows = self._conn.execute(
                "SELECT id, repo, sha, name, status, log, time FROM checks WHERE id IN ("
                f"SELECT MAX(id) FROM checks WHERE repo = ? AND sha IN ({marks}) GROUP BY sha, name"
                ") ORDER BY sha, name",
                [repo, *wanted],
            ).fetchall()
        return [CheckRecord(*row) for row in rows]

    def add_comment(self, pr_id: int, author: str, body: str) -> CommentRecord:
        """Append a comment to pull request ``pr_id``."""
        now = utc_now()
        with self._errors():
            cursor = self._conn.execute(
                "INSERT INTO comments (pr_id, author, body, time) VALUES (?, ?, ?, ?)",
                (pr_id, redact(author), redact(body), now),
            )
        assert cursor.lastrowid is not None
        return CommentRecord(cursor.lastrowid, pr_id, redact(author), redact(body), now)

    def comments(self, pr_id: int) -> list[CommentRecord]:
        """The comments of pull request ``pr_id``, oldest first."""
        with self._errors():
            rows = self._conn.execute(
                "SELECT id, pr_id, author, body, time FROM comments WHERE pr_id = ? ORDER BY id", (pr_id,)
            ).fetchall()
        return [CommentRecord(*row) for row in rows]


def _event(row: tuple[Any, ...]) -> Event:
    detail = json.loads(row[10]) if row[10] is not None else None
    return Event(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], detail)


def _where(**filters: object) -> tuple[str, list[object]]:
    """An SQL ``WHERE`` clause (leading space) over the filters that are not None, and its parameters."""
    clauses = [f"{column} = ?" for column, value in filters.items() if value is not None]
    params = [value for value in filters.values() if value is not None]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _translate(exc: sqlite3.Error, path: Path) -> CoditectError:
    """Turn an sqlite3 error into the CLI's hierarchy: a busy store is unavailable, the rest a StateError."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return UnavailableError(
            f"the state store {path} is busy: another coditect process is writing to it ({text})",
            hint="try again when the other command finishes",
        )
    return StateError(f"state store {path}: {text}")
