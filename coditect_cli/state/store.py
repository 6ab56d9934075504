"""The embedded state store: one SQLite file per project, ``<git-common-dir>/coditect/state.db``.

It keeps the run journal (``runs``: one row per coditect command that changes anything) and the append-only
``events`` log (every ref a command moved, and anything else worth auditing), plus a small ``meta`` table.
The file lives in the superproject's git common dir, so every worktree of the project shares one store.

This module is the core: opening, migrations, transactions, error translation, redaction, and those three
tables. Each domain's tables belong to a module of their own, made of functions that take the open
:class:`Store` and use :meth:`Store.query`, :meth:`Store.execute` (or :meth:`Store.execute_verbatim`, for
lookup keys that must not be redacted) and :meth:`Store.transaction`:

- :mod:`coditect_cli.state.forge_records`: the local forge's pull requests, reviews, checks and comments
  (migration 2);
- :mod:`coditect_cli.state.coordination`: tasks, blockers and syncs (migration 3);
- :mod:`coditect_cli.state.journal_records`: the gating journals, their steps and ref moves, gate results
  and gating results (migration 4);
- :mod:`coditect_cli.state.agent_usage`: the built-in agent's tokens and cost per request (migration 5).
- :mod:`coditect_cli.state.messages`: messages held for an agent until it can take them (migration 6).

The schema itself stays here, as the one ordered :data:`MIGRATIONS` list, so the version numbering has a
single source.

Connection rules: stdlib :mod:`sqlite3` only, opened with ``isolation_level=None`` (autocommit; every
transaction is explicit, see :meth:`Store.transaction`), ``journal_mode=WAL`` so readers never block the
writer (``synchronous=NORMAL``), ``foreign_keys=ON`` and a 5 s ``busy_timeout``. Times are UTC ISO-8601
with millisecond precision and a ``Z`` suffix (``2026-11-21T10:00:00.000Z``), fixed width, so they sort and
compare as text.

Every string written to the store passes through :func:`coditect_cli.adapters.proc.redact` first: tokens
never reach the file.

Schema migrations
-----------------
The schema version is ``PRAGMA user_version``: the number of entries of :data:`MIGRATIONS` applied. Opening a
store applies the missing ones in order, each in its own ``BEGIN IMMEDIATE`` transaction that also bumps
``user_version`` (so a crash leaves the store at a consistent version, and two processes opening a fresh store
at once migrate it exactly once). A store whose version is newer than this code knows is refused with
:class:`StateError`.

To add migration 5, append one entry to :data:`MIGRATIONS`; never edit or reorder an entry that has shipped.
An entry is either an SQL script (a string of ``;``-separated statements, triggers included) or a function
``(sqlite3.Connection) -> None``. Either runs inside the migration's transaction, so it must not ``BEGIN``,
``COMMIT`` or call ``executescript`` (which commits), and must not touch ``user_version``::

    # Migration 5: ... (the tables of coditect_cli/state/<domain>.py)
    _MIGRATION_5 = '''
    CREATE TABLE handoffs (id INTEGER PRIMARY KEY, phase TEXT NOT NULL, ...);
    '''
    MIGRATIONS = (_MIGRATION_1, _MIGRATION_2, _MIGRATION_3, _MIGRATION_4, _MIGRATION_5)

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

# Migration 2: the local forge (coditect_cli/state/forge_records.py). Pull requests (numbered per repository;
# at most one open PR per repository, base and head), their reviews and comments, and check results by commit
# (a history: the latest row per repository, commit and name is the current result).
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

# Migration 3: tasks, blockers and syncs of a phase (coditect_cli/state/coordination.py).
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

# Migration 4: the gating journal (``checkpoint`` and ``merge-phase``; tables in
# coditect_cli/state/journal_records.py, executor in coditect_cli/services/journal.py).
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

# Migration 5: the built-in agent's token usage, one row per API request (coditect_cli/state/agent_usage.py).
_MIGRATION_5 = """
CREATE TABLE agent_usage (
    id INTEGER PRIMARY KEY,
    phase TEXT NOT NULL,
    stream TEXT NOT NULL,
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    input INTEGER NOT NULL DEFAULT 0,
    output INTEGER NOT NULL DEFAULT 0,
    cache_write INTEGER NOT NULL DEFAULT 0,
    cache_read INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    time TEXT NOT NULL
);
CREATE INDEX agent_usage_by_stream ON agent_usage(phase, stream, task);
"""

# Migration 6: messages held for an agent until it can take them (coditect_cli/state/messages.py).
_MIGRATION_6 = """
CREATE TABLE held_messages (
    id        INTEGER PRIMARY KEY,
    phase     TEXT NOT NULL,
    stream    TEXT NOT NULL,
    text      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    created   TEXT NOT NULL,
    status    TEXT NOT NULL DEFAULT 'held',
    delivered TEXT
);
CREATE INDEX held_messages_waiting ON held_messages(phase, stream, status, id);
"""

# Migration 7: the autopilot (coditect_cli/state/autopilot_records.py): its action journal (one row per action,
# journaled before it is carried out, unique by key), task dispatches, reaction firings, stream backoffs, and
# the forge events (webhook deliveries, unique by delivery id) it reads; the file and line a local-forge
# comment is about.
_MIGRATION_7 = """
CREATE TABLE autopilot_actions (
    id INTEGER PRIMARY KEY,
    phase TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    stream TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'planned' CHECK (state IN ('planned', 'done', 'failed')),
    outcome TEXT,
    created TEXT NOT NULL,
    finished TEXT,
    UNIQUE (phase, key)
);
CREATE INDEX autopilot_actions_open ON autopilot_actions(phase, state);

CREATE TABLE autopilot_dispatches (
    id INTEGER PRIMARY KEY,
    phase TEXT NOT NULL,
    stream TEXT NOT NULL,
    task TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL CHECK (state IN ('working', 'done', 'blocked')),
    base TEXT NOT NULL DEFAULT '{}',
    dispatched TEXT NOT NULL,
    updated TEXT NOT NULL,
    next_at REAL NOT NULL DEFAULT 0,
    reason TEXT
);
CREATE UNIQUE INDEX autopilot_dispatch_one_open ON autopilot_dispatches(phase, stream) WHERE state = 'working';
CREATE INDEX autopilot_dispatches_by_task ON autopilot_dispatches(phase, task);

CREATE TABLE autopilot_reactions (
    phase TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    stream TEXT NOT NULL,
    fired INTEGER NOT NULL DEFAULT 0,
    last_fired REAL NOT NULL DEFAULT 0,
    escalated INTEGER NOT NULL DEFAULT 0,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (phase, key)
);

CREATE TABLE autopilot_backoff (
    phase TEXT NOT NULL,
    stream TEXT NOT NULL,
    level INTEGER NOT NULL,
    until REAL NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (phase, stream)
);

ALTER TABLE comments ADD COLUMN path TEXT;
ALTER TABLE comments ADD COLUMN line INTEGER;

CREATE TABLE forge_events (
    id INTEGER PRIMARY KEY,
    delivery TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    repo TEXT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    received TEXT NOT NULL
);
"""

MIGRATIONS: tuple[Migration, ...] = (
    _MIGRATION_1,
    _MIGRATION_2,
    _MIGRATION_3,
    _MIGRATION_4,
    _MIGRATION_5,
    _MIGRATION_6,
    _MIGRATION_7,
)
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


def redact_optional(value: str | None) -> str | None:
    """``value`` passed through :func:`redact`; None stays None."""
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


def _wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. On a new file several processes opening it at once race for that switch, and SQLite
    answers the losers "database is locked" at once (the busy timeout does not cover it): they try again
    until the busy timeout has passed, by which time the winner has made the file WAL."""
    import time

    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = "locked" in str(exc) or "busy" in str(exc)
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


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
            _wal(conn)
            # WAL with synchronous=NORMAL: a commit survives a crash of coditect; only a power loss may drop
            # the last ones, and the file stays consistent. FULL syncs the WAL on every commit (~10 ms each
            # here), which the built-in agent's one row per request would pay on every turn.
            conn.execute("PRAGMA synchronous = NORMAL")
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
                (redact(command), redact_optional(phase), utc_now()),
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
        where, params = where_clause(command=command, phase=phase, status=status)
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
                    redact_optional(phase),
                    redact_optional(repo),
                    redact(kind),
                    redact_optional(ref),
                    redact_optional(old),
                    redact_optional(new),
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
        where, params = where_clause(phase=phase, kind=kind, run_id=run_id, repo=repo)
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

    # ------------------------------------------------------------------ statements (for the modules owning tables)

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one write statement (strings redacted); return the last row id. For modules owning tables."""
        cursor = self.execute_verbatim(sql, [redact(p) if isinstance(p, str) else p for p in params])
        return int(cursor.lastrowid or 0)

    def execute_verbatim(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        """Run one write statement with ``params`` exactly as given; return its cursor (row id, row count).

        Nothing is redacted: this is for tables whose lookup keys (repository ids, branch names, object ids)
        must be stored as they are. The caller redacts every free-text value itself (:func:`redact`,
        :func:`redact_optional`).
        """
        with self._errors():
            return self._conn.execute(sql, params)

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one read statement and return its rows."""
        with self._errors():
            return list(self._conn.execute(sql, list(params)).fetchall())

    # ------------------------------------------------------------------ meta

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
                (key, redact_optional(value)),
            )


def _event(row: tuple[Any, ...]) -> Event:
    detail = json.loads(row[10]) if row[10] is not None else None
    return Event(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], detail)


def where_clause(**filters: object) -> tuple[str, list[object]]:
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
