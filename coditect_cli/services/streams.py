"""``streams status|send|stop``: the running streams of a phase, their panes and their worktrees.

Panes are found by their ``@coditect_stream`` option in the session :mod:`coditect_cli.services.launch`
created; the session's socket and the pane logs are located by :mod:`coditect_cli.services.session`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.domain.launch import PaneState, ordered_streams, panes_by_stream
from coditect_cli.domain.manifest import Manifest
from coditect_cli.errors import CoditectError, Location, Problem, RefusedError, UnavailableError
from coditect_cli.project import Project
from coditect_cli.services.session import PhaseSession, log_path, phase_session, status_cache_path

if TYPE_CHECKING:
    from coditect_cli.adapters.tmux import Tmux
    from coditect_cli.domain.agent_state import AgentState
    from coditect_cli.services.agents import Delivery

STATUS_GRACE = 2.0  # seconds a dead pane may lack its exit status before wait_for_agents reports None


# ----------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class WorktreeWork:
    """A worktree's unsaved work: uncommitted changes and commits not on its upstream."""

    repo: str
    path: Path
    exists: bool
    branch: str | None = None
    upstream: str | None = None
    changes: tuple[str, ...] = ()  # `git status` short lines: "XY path"
    unpushed: int = 0
    commits: tuple[str, ...] = ()  # "<short sha> <subject>" of each unpushed commit (when listed)

    @property
    def clean(self) -> bool:
        """No uncommitted change and nothing unpushed."""
        return not self.changes and not self.unpushed

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "repo": self.repo,
            "path": str(self.path),
            "exists": self.exists,
            "branch": self.branch,
            "upstream": self.upstream,
            "uncommitted": len(self.changes),
            "unpushed": self.unpushed,
            "changes": list(self.changes),
            "commits": list(self.commits),
        }


@dataclass
class StreamStatus:
    """One stream in ``streams status``: its pane and its worktrees."""

    stream: str
    state: str  # "running", "dead", "missing", "unavailable" (no tmux) or "unreachable" (its host)
    pane_id: str | None
    window: str | None
    exit_status: int | None
    exit_signal: int | None
    command: str | None
    cwd: str | None
    idle_seconds: float | None
    last_line: str | None
    worktrees: list[WorktreeWork]
    agent: AgentState | None = None
    host: str | None = None  # the remote host it runs on (None: this machine)
    host_error: str | None = None  # why its host could not be read (state "unreachable")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "stream": self.stream,
            "state": self.state,
            "agent": self.agent.to_json() if self.agent is not None else None,
            "host": self.host,
            "host_error": self.host_error,
            "pane_id": self.pane_id,
            "window": self.window,
            "exit_status": self.exit_status,
            "exit_signal": self.exit_signal,
            "command": self.command,
            "cwd": self.cwd,
            "idle_seconds": None if self.idle_seconds is None else round(self.idle_seconds, 1),
            "last_line": self.last_line,
            "worktrees": [w.to_json() for w in self.worktrees],
        }


@dataclass
class StatusResult:
    """``streams status``: the session and every stream of the phase."""

    phase: str
    session: str
    socket: str | None
    exists: bool
    streams: list[StreamStatus]
    panes_unavailable: str | None = None  # why panes could not be read (tmux missing); worktrees still are

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "phase": self.phase,
            "session": self.session,
            "socket": self.socket,
            "exists": self.exists,
            "panes_unavailable": self.panes_unavailable,
            "streams": [s.to_json() for s in self.streams],
        }


@dataclass
class SendResult:
    """``streams send``: what happened to the text in each stream (delivered, queued, held, ...)."""

    phase: str
    session: str
    text: str
    deliveries: list[Delivery]

    @property
    def delivered(self) -> list[str]:
        """Streams whose agent got the text (delivered, queued by a busy agent, or typed unconfirmed)."""
        return [d.stream for d in self.deliveries if d.status in {"delivered", "queued", "unconfirmed"}]

    @property
    def held(self) -> dict[str, str]:
        """Streams whose message waits in the store, and why."""
        return {d.stream: d.detail for d in self.deliveries if d.status == "held"}

    @property
    def skipped(self) -> dict[str, str]:
        """Streams that could not get it (no pane, exited), and why."""
        return {d.stream: d.detail for d in self.deliveries if d.status == "skipped"}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "phase": self.phase,
            "session": self.session,
            "text": self.text,
            "delivered": self.delivered,
            "held": self.held,
            "skipped": self.skipped,
            "deliveries": [d.to_json() for d in self.deliveries],
        }


@dataclass
class StopResult:
    """``streams stop``: the session ended (if it ran) and the worktrees removed (with --remove-worktrees)."""

    phase: str
    session: str
    socket: str | None
    killed: bool
    panes: int
    removed: list[Path]
    kept: list[WorktreeWork]
    dry_run: bool = False
    panes_unavailable: str | None = None  # why the session could not be read or ended (tmux missing)
    ignored: dict[Path, tuple[str, ...]] = field(default_factory=dict)  # removed worktree -> ignored files
    hosts: dict[str, str] = field(default_factory=dict)  # remote host -> stopped / not running / its error
    remote_removed: dict[str, list[str]] = field(default_factory=dict)  # host -> its worktrees removed

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "phase": self.phase,
            "session": self.session,
            "socket": self.socket,
            "killed": self.killed,
            "panes": self.panes,
            "removed_worktrees": [str(p) for p in self.removed],
            "removed_remote_worktrees": self.remote_removed,
            "ignored_files_removed": {str(p): list(files) for p, files in self.ignored.items() if files},
            "panes_unavailable": self.panes_unavailable,
            "worktrees_with_work": [w.to_json() for w in self.kept if not w.clean],
            "hosts": self.hosts,
            "dry_run": self.dry_run,
        }


# ----------------------------------------------------------------------------------------------- worktrees


def read_work(repo: str, path: Path, *, list_commits: bool = False) -> WorktreeWork:
    """Uncommitted changes and unpushed commits of the worktree at ``path`` (1-2 git processes).

    Unpushed means ahead of the upstream branch; a branch without upstream counts the commits on no other
    branch and no remote-tracking branch.
    """
    from coditect_cli.adapters import proc
    from coditect_cli.adapters.worktree_state import git_status

    if not (path / ".git").exists():
        return WorktreeWork(repo, path, exists=False)
    git = ["git", "-C", str(path)]
    state = git_status(path)
    branch, upstream = state.branch, state.upstream
    commits: tuple[str, ...] = ()
    fmt = "--format=%h %s"
    if upstream is not None:
        unpushed = state.ahead
        if list_commits and state.ahead:
            commits = tuple(proc.run([*git, "log", fmt, "@{upstream}..HEAD"]).stdout.splitlines())
    elif state.initial:
        unpushed = 0
    else:
        exclude = [f"--exclude={branch}"] if branch else []
        listed = proc.run([*git, "log", fmt, "HEAD", "--not", *exclude, "--branches", "--remotes"]).stdout
        commits = tuple(listed.splitlines())
        unpushed = len(commits)
        if not list_commits:
            commits = ()
    return WorktreeWork(repo, path, True, branch, upstream, state.changes, unpushed, commits)


def read_works(items: list[tuple[str, Path]], common: Path) -> list[WorktreeWork]:
    """:func:`read_work` (without the commit list) of many worktrees (repository id, path), in order, with
    git processes per repository, not per worktree: see :mod:`coditect_cli.adapters.worktree_state`. Each
    worktree's last ``git status`` is kept in ``common``'s status cache and reused while it provably holds."""
    from coditect_cli.adapters.worktree_state import read_many

    readings = read_many([path for _, path in items], status_cache_path(common))
    return [
        WorktreeWork(repo, r.path, r.exists, r.branch, r.upstream, r.changes, r.unpushed)
        for (repo, _), r in zip(items, readings, strict=True)
    ]


def _worktrees(project: Project, manifest: Manifest) -> dict[str, list[tuple[str, Path]]]:
    from coditect_cli.domain.manifest import worktree_path

    out: dict[str, list[tuple[str, Path]]] = {}
    for pair in manifest.pairs():
        out.setdefault(pair.stream.id, []).append((pair.repo.id, worktree_path(manifest, project.root, pair)))
    return out


def ignored_files(path: Path) -> tuple[str, ...]:
    """The git-ignored files and folders of the worktree at ``path`` (a folder wholly ignored is one
    entry, ``build/``): what removing the worktree deletes besides its tracked files."""
    from coditect_cli.adapters import proc

    listed = proc.run(
        [
            "git",
            "-C",
            str(path),
            "ls-files",
            "-z",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--directory",
        ]
    ).stdout
    return tuple(sorted(name for name in listed.split("\0") if name))


def _panes(tmux: Tmux, s: PhaseSession) -> tuple[PhaseSession, list[PaneState], str | None]:
    """The session as it runs (:meth:`PhaseSession.locate`) and its panes, or none and the reason when tmux
    itself is unavailable (not installed)."""
    try:
        found, rows = s.locate(tmux)
        return found, rows, None
    except UnavailableError as exc:
        return s, [], exc.message


# ----------------------------------------------------------------------------------------------- status, send, stop


def status(project: Project, phase: str | None, *, socket: str | None = None) -> StatusResult:
    """Every stream's agent (its state), pane (alive or dead, command, cwd, idle time) and worktrees (branch,
    uncommitted and unpushed counts). One ``list-panes -a`` call, one tmux process capturing every screen,
    and the worktrees read by :func:`read_works` (a few git processes per repository), beside the panes."""
    from concurrent.futures import ThreadPoolExecutor

    from coditect_cli.adapters.forked import beside
    from coditect_cli.adapters.tmux import Tmux
    from coditect_cli.services.agents import _held_counts, host_states, read_states

    s = phase_session(project, phase, socket)
    remote: dict[str, str | None] = {st.id: st.host for st in s.manifest.streams if st.host}
    streams = [st.id for st in ordered_streams(s.manifest)]
    worktrees = _worktrees(project, s.manifest)
    pairs = [(st, repo, path) for st in streams if st not in remote for repo, path in worktrees[st]]
    local = [st for st in streams if st not in remote]
    # The worktrees and the hosts (one SSH call each) are read while the local panes are: the worktrees in a
    # fork of this process (their kept statuses are Python work, an index and a directory walk each, which a
    # thread would only take turns with), the hosts in a thread (ssh waits).
    works = beside(read_works, [(r, p) for _, r, p in pairs], s.common)
    hosts_read = None
    if remote:
        from coditect_cli.services.hosts import host_panes

        pool = ThreadPoolExecutor(max_workers=1)
        hosts_read = pool.submit(host_panes, project, s.manifest, s.common)
        pool.shutdown(wait=False)
    try:
        tmux = Tmux(s.socket)
        s, panes, unavailable = _panes(tmux, s)
        rows = panes_by_stream(panes)
        held = _held_counts(s)
        states = read_states(s, tmux, rows, local, held) if rows else {}
        unreachable: dict[str, str] = {}  # remote stream -> why its host could not be read
        if hosts_read is not None:
            for entry in hosts_read.result():
                rows.update(entry.rows)
                if entry.unreachable:
                    unreachable.update(dict.fromkeys(entry.streams, entry.unreachable))
                elif entry.rows:
                    states.update(host_states(s, entry, held))
    except BaseException:
        works.discard()
        raise
    by_stream: dict[str, list[WorktreeWork]] = {}
    for (st, _, _), work in zip(pairs, works.result(), strict=True):
        by_stream.setdefault(st, []).append(work)
    now = time.time()
    out: list[StreamStatus] = []
    for st in streams:
        row = rows.get(st)
        log = log_path(s.common, s.manifest.phase, st)
        idle: float | None = None
        if row is not None:
            with contextlib.suppress(OSError):
                idle = max(0.0, now - log.stat().st_mtime)
        agent = states.get(st)
        out.append(
            StreamStatus(
                stream=st,
                state=(
                    "unreachable"
                    if st in unreachable
                    else "unavailable"
                    if unavailable and st not in remote
                    else "missing"
                    if row is None
                    else "dead"
                    if row.dead
                    else "running"
                ),
                pane_id=row.pane_id if row else None,
                window=row.window_name if row else None,
                exit_status=row.dead_status if row and row.dead else None,
                exit_signal=row.dead_signal if row and row.dead else None,
                command=row.command if row else None,
                cwd=(row.cwd or None) if row else None,
                idle_seconds=idle,
                last_line=agent.last_line if agent is not None else None,
                worktrees=by_stream.get(st, []),
                agent=agent,
                host=remote.get(st),
                host_error=unreachable.get(st),
            )
        )
    return StatusResult(s.manifest.phase, s.name, s.socket, bool(rows), out, unavailable)


def send(
    project: Project,
    phase: str | None,
    target: str,
    text: str,
    *,
    socket: str | None = None,
    force: bool = False,
) -> SendResult:
    """Deliver ``text`` to ``target``'s agent (a stream id, or ``all``); see
    :func:`coditect_cli.services.agents.deliver`. Nothing delivered nor held: :class:`UnavailableError`."""
    result = send_each(project, phase, {target: text}, socket=socket, force=force)
    if not result.delivered and not result.held:
        reasons = "; ".join(f"{k}: {v}" for k, v in result.skipped.items())
        raise UnavailableError(
            f"nothing to send to: {reasons}",
            hint=f"restart it with `coditect streams restart STREAM` or `coditect streams launch {result.phase}`",
        )
    return result


def send_each(
    project: Project,
    phase: str | None,
    texts: Mapping[str, str],
    *,
    socket: str | None = None,
    force: bool = False,
) -> SendResult:
    """Deliver each stream's own text to its agent (key ``all``: every stream), reading the panes once."""
    from coditect_cli.services.agents import deliver

    s, deliveries = deliver(project, phase, texts, socket=socket, force=force)
    values = set(texts.values())
    return SendResult(s.manifest.phase, s.name, next(iter(values)) if len(values) == 1 else "", deliveries)


def _refusal(dirty: list[WorktreeWork], remote: list[str] | None = None) -> RefusedError:
    lines: list[str] = []
    problems: list[Problem] = []
    for line in remote or []:  # "host HOST: STREAM REPO uncommitted|unpushed: ..."
        where, _, what = line.partition(": ")
        lines.append(f"  {line}")
        problems.append(Problem(what.split(": ", 1)[0].split()[-1], line, Location(where)))
    for w in dirty:
        lines.append(f"  {w.path} ({w.repo}, {w.branch or 'detached HEAD'}):")
        for change in w.changes:
            lines.append(f"    uncommitted: {change}")
            problems.append(Problem("uncommitted", f"uncommitted: {change}", Location(str(w.path))))
        for commit in w.commits:
            where = f"not on {w.upstream}" if w.upstream else "on no other branch or remote"
            lines.append(f"    unpushed ({where}): {commit}")
            problems.append(Problem("unpushed", f"unpushed: {commit}", Location(str(w.path))))
    count = len(dirty) + len({" ".join(line.split()[:4]) for line in remote or []})
    return RefusedError(
        f"{count} worktree(s) have work that removing them would put at risk; nothing was stopped "
        "or removed:\n" + "\n".join(lines),
        problems=tuple(problems),
        hint="commit and push (or discard) that work, or stop without --remove-worktrees",
    )


def stop(
    project: Project,
    phase: str | None,
    *,
    socket: str | None = None,
    remove_worktrees: bool = False,
    dry_run: bool = False,
) -> StopResult:
    """End the phase's session (every pane); worktrees stay unless ``remove_worktrees``.

    With ``remove_worktrees`` it first refuses (:class:`RefusedError`, exit 4, nothing stopped) while any
    worktree has uncommitted files or unpushed commits, listing every one; otherwise it ends the session
    and removes the worktrees with ``git worktree remove`` (which itself refuses a worktree that changed
    meanwhile) and ``git worktree prune``.
    """
    from coditect_cli.adapters import proc
    from coditect_cli.adapters.tmux import Tmux
    from coditect_cli.state.lock import phase_lock
    from coditect_cli.state.store import Store

    s = phase_session(project, phase, socket)
    tmux = Tmux(s.socket)
    s, rows, unavailable = _panes(tmux, s)
    works = [
        read_work(repo, path, list_commits=remove_worktrees)
        for entries in _worktrees(project, s.manifest).values()
        for repo, path in entries
    ]
    existing = [w for w in works if w.exists]
    dirty = [w for w in existing if not w.clean]
    remote = None
    if remove_worktrees and s.manifest.hosts:
        from coditect_cli.services.hosts import remote_worktrees

        remote = remote_worktrees(project, s.manifest, s.common)  # refuses when a host cannot be read
    if remove_worktrees and (dirty or (remote is not None and remote.pending)):
        raise _refusal(dirty, remote.pending if remote is not None else [])
    result = StopResult(
        s.manifest.phase,
        s.name,
        s.socket,
        bool(rows),
        len(rows),
        [],
        works,
        dry_run=dry_run,
        panes_unavailable=unavailable,
    )
    if remove_worktrees:
        # `git worktree remove` deletes ignored files (build output, node_modules...) with the worktree:
        # say which, before (dry run) and after.
        result.ignored = {w.path: ignored_files(w.path) for w in existing}
    if dry_run:
        result.removed = [w.path for w in existing] if remove_worktrees else []
        result.remote_removed = remote.existing if remote is not None else {}
        return result
    with phase_lock(s.common, s.manifest.phase, "coditect streams stop"):
        if rows:
            tmux.kill_session(s.name)
        if s.manifest.hosts:
            from coditect_cli.services.hosts import stop_hosts

            result.hosts = stop_hosts(project, s.manifest, s.common)
            if remote is not None:
                from coditect_cli.services.hosts import remove_remote_worktrees

                result.remote_removed = remove_remote_worktrees(
                    project, s.manifest, s.common, remote.existing
                )
        if remove_worktrees:
            repos = {r.id: (project.root / r.path).resolve() for r in s.manifest.repositories}
            for w in existing:
                proc.run(["git", "-C", str(repos[w.repo]), "worktree", "remove", str(w.path)])
                result.removed.append(w.path)
                _prune_empty_dirs(w.path.parent, stop_at=project.root)
            for repo in sorted({w.repo for w in existing}):
                proc.run(["git", "-C", str(repos[repo]), "worktree", "prune"])
        with Store.open(s.common) as store:
            store.record_event(
                None,
                "streams stop",
                "stop",
                phase=s.manifest.phase,
                detail={"session": s.name, "killed": bool(rows), "removed": [str(p) for p in result.removed]},
            )
    return result


def _prune_empty_dirs(directory: Path, *, stop_at: Path) -> None:
    """Remove ``directory`` and its parents while they are empty, never reaching ``stop_at``.

    Both are resolved first: a folder reached through a link that leaves ``stop_at`` is never removed.
    """
    current = directory.resolve()
    stop_at = stop_at.resolve()
    while current != stop_at and stop_at in current.parents:
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent


def wait_for_agents(
    project: Project,
    phase: str | None,
    timeout: float,
    *,
    socket: str | None = None,
    poll: float = 0.05,
    on_poll: Callable[[dict[str, PaneState]], None] | None = None,
) -> dict[str, int | None]:
    """Wait until every stream's pane is dead (its agent exited); return each stream's exit status.

    A pane killed by a signal or missing altogether gives None. Polls ``list-panes`` every ``poll``
    seconds (at most 0.1); raises :class:`CoditectError` naming the agents still running at ``timeout``.
    """
    from coditect_cli.adapters.tmux import Tmux

    s = phase_session(project, phase, socket)
    tmux = Tmux(s.socket)
    streams = [st.id for st in ordered_streams(s.manifest)]
    deadline = time.monotonic() + timeout
    interval = min(max(poll, 0.005), 0.1)
    unknown_since: dict[str, float] = {}
    while True:
        s, found = s.locate(tmux)
        rows = panes_by_stream(found)
        if on_poll is not None:
            on_poll(rows)
        now = time.monotonic()
        running: list[str] = []
        for st in streams:
            row = rows.get(st)
            if row is None or row.finished:
                continue
            if row.dead:
                # Dead without a status even after the adapter's reap: give tmux a moment, then accept it.
                if now - unknown_since.setdefault(st, now) < STATUS_GRACE:
                    running.append(st)
                continue
            running.append(st)
        if not running:
            return {st: (rows[st].dead_status if st in rows else None) for st in streams}
        if now >= deadline:
            raise CoditectError(
                f"agents still running after {timeout:g}s: {', '.join(running)}",
                hint=f"see them with `coditect streams status {s.manifest.phase}`",
            )
        time.sleep(interval)
