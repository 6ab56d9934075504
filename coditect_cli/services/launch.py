"""``streams launch|status|attach|send|stop``: one tmux pane per stream, and what happens in it.

``launch`` sets the phase up when needed, writes each stream's prompt file, then creates the tmux session
(or adds the panes missing from it) in ONE tmux invocation; running agents are never restarted. Panes are
found by their ``@coditect_stream`` option. The socket a phase was launched on is kept in the state store's
``meta`` table (``tmux.socket:<phase>``, empty for the default server) so the other commands find it.

Files under ``<git-common-dir>/coditect/`` (shared by every worktree of the project):

- ``prompts/<phase>/<stream>.md``: the prompt each agent reads;
- ``panes/<phase>/<stream>.log``: everything the pane printed (``pipe-pane``); its modification time is the
  pane's last output, which tmux 3.3 does not report per pane.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shlex
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.domain.launch import (
    PLACEHOLDERS,
    PaneSpec,
    PaneState,
    SessionSpec,
    choose_layout,
    ordered_streams,
    pane_env,
    pane_title,
    phase_day,
    render_prompt,
    resolve_agent,
    session_name,
    stream_worktrees,
)
from coditect_cli.domain.manifest import Manifest
from coditect_cli.errors import CoditectError, Location, Problem, RefusedError, UnavailableError, UsageError
from coditect_cli.project import Project

if TYPE_CHECKING:
    from coditect_cli.services.setup import SetupResult

PROMPTS_DIR = "prompts"
LOGS_DIR = "panes"
SOCKET_META = "tmux.socket:{phase}"
STATUS_GRACE = 2.0  # seconds a dead pane may lack its exit status before wait_for_agents reports None
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]|\r")


# ----------------------------------------------------------------------------------------------- results


@dataclass
class LaunchedPane:
    """One stream's pane after a launch."""

    stream: str
    title: str
    cwd: Path
    command: str
    prompt_file: Path
    state: str  # "started" (created by this launch), "running", "dead" (kept as it is) or "planned" (dry run)
    pane_id: str | None = None
    window: str | None = None
    exit_status: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "stream": self.stream,
            "state": self.state,
            "pane_id": self.pane_id,
            "window": self.window,
            "cwd": str(self.cwd),
            "title": self.title,
            "command": self.command,
            "prompt_file": str(self.prompt_file),
            "exit_status": self.exit_status,
        }


@dataclass
class LaunchResult:
    """What ``streams launch`` did (or, with ``dry_run``, would do)."""

    phase: str
    session: str
    socket: str | None
    layout: str
    day: int
    created: bool
    panes: list[LaunchedPane]
    setup: SetupResult | None = None
    dry_run: bool = False
    attached: bool = False
    attach_note: str = ""
    commands: list[str] = field(default_factory=list)
    tmux_invocations: int = 0

    @property
    def added(self) -> list[str]:
        """Streams whose pane this launch created."""
        return [p.stream for p in self.panes if p.state in {"started", "planned"}]

    @property
    def attach_command(self) -> str:
        """The command that attaches a terminal to the session."""
        sock = f"-L {self.socket} " if self.socket else ""
        return f"tmux {sock}attach -t ={self.session}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``data`` of the envelope)."""
        return {
            "phase": self.phase,
            "session": self.session,
            "socket": self.socket,
            "layout": self.layout,
            "day": self.day,
            "created": self.created,
            "added": self.added,
            "dry_run": self.dry_run,
            "attached": self.attached,
            "attach_command": self.attach_command,
            "attach_note": self.attach_note,
            "setup_steps": [s.to_json() for s in self.setup.done] if self.setup and not self.dry_run else [],
            "setup_plan": [s.to_json() for s in self.setup.plan.steps] if self.setup else [],
            "panes": [p.to_json() for p in self.panes],
            "tmux_commands": self.commands,
            "tmux_invocations": self.tmux_invocations,
        }


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
    state: str  # "running", "dead" or "missing"
    pane_id: str | None
    window: str | None
    exit_status: int | None
    exit_signal: int | None
    command: str | None
    cwd: str | None
    idle_seconds: float | None
    last_line: str | None
    worktrees: list[WorktreeWork]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "stream": self.stream,
            "state": self.state,
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

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "phase": self.phase,
            "session": self.session,
            "socket": self.socket,
            "exists": self.exists,
            "streams": [s.to_json() for s in self.streams],
        }


@dataclass
class SendResult:
    """``streams send``: which panes got the text and which were skipped (and why)."""

    phase: str
    session: str
    text: str
    delivered: list[str]
    skipped: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "phase": self.phase,
            "session": self.session,
            "text": self.text,
            "delivered": self.delivered,
            "skipped": self.skipped,
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

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "phase": self.phase,
            "session": self.session,
            "socket": self.socket,
            "killed": self.killed,
            "panes": self.panes,
            "removed_worktrees": [str(p) for p in self.removed],
            "worktrees_with_work": [w.to_json() for w in self.kept if not w.clean],
            "dry_run": self.dry_run,
        }


# ----------------------------------------------------------------------------------------------- locations


def prompt_path(common: Path, phase: str, stream: str) -> Path:
    """Where ``stream``'s prompt file is written."""
    return common / "coditect" / PROMPTS_DIR / phase / f"{stream}.md"


def log_path(common: Path, phase: str, stream: str) -> Path:
    """Where ``stream``'s pane output is logged (``pipe-pane``)."""
    return common / "coditect" / LOGS_DIR / phase / f"{stream}.log"


def project_name(manifest: Manifest, project: Project) -> str:
    """The project's name: the manifest's ``project``, else the root directory's name."""
    return manifest.project or project.root.name


def _store_path(common: Path) -> Path:
    from coditect_cli.state.store import DB_NAME, STATE_DIR

    return common / STATE_DIR / DB_NAME


def resolve_socket(common: Path, phase: str, socket: str | None) -> str | None:
    """The tmux socket name for ``phase``: ``socket``, else ``$CODITECT_TMUX_SOCKET``, else the one the
    phase was launched on (from the store), else None (the default server)."""
    from coditect_cli.adapters.tmux import SOCKET_ENV

    if socket is not None:
        return socket or None
    if SOCKET_ENV in os.environ:
        return os.environ[SOCKET_ENV] or None
    if not _store_path(common).is_file():
        return None
    from coditect_cli.state.store import Store

    with Store.open(common) as store:
        return store.get_meta(SOCKET_META.format(phase=phase)) or None


def _login_shell() -> str:
    shell = os.environ.get("SHELL")
    if shell:
        return shell
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
    except KeyError:
        return "/bin/sh"


# ----------------------------------------------------------------------------------------------- launch


@dataclass(frozen=True)
class _Prepared:
    manifest: Manifest
    common: Path
    spec: SessionSpec
    prompts: dict[str, tuple[Path, str]]  # stream -> (file, text)
    day: int


def check_agent_template(template: str) -> None:
    """Refuse an ``--agent`` template with unknown placeholders (the manifest's ``run`` rule)."""
    if template in {"shell", "claude"}:
        return
    unknown = sorted(set(re.findall(r"\{([^{}]*)\}", template)) - set(PLACEHOLDERS))
    if unknown:
        raise UsageError(
            f"--agent: unknown placeholder {{{unknown[0]}}}; allowed: {', '.join(PLACEHOLDERS)}",
        )


def prepare(
    project: Project,
    manifest: Manifest,
    common: Path,
    *,
    agent: str | None = None,
    day: int | None = None,
    today: _dt.date | None = None,
    path: str | None = None,
) -> _Prepared:
    """The session spec of ``manifest`` (every pane) and each stream's prompt, computed without side effects."""
    from coditect_cli.domain.plan import worktree_path

    if day is not None and day < 1:
        raise UsageError(f"--day must be 1 or more, not {day}")
    the_day = day if day is not None else phase_day(manifest.schedule, today or _dt.date.today())
    paths = {pair.key: worktree_path(manifest, project.root, pair) for pair in manifest.pairs()}
    streams = ordered_streams(manifest)
    shell = _login_shell()
    panes: list[PaneSpec] = []
    prompts: dict[str, tuple[Path, str]] = {}
    for stream in streams:
        worktrees = stream_worktrees(manifest, stream, paths)
        prompt_file = prompt_path(common, manifest.phase, stream.id)
        prompts[stream.id] = (prompt_file, render_prompt(manifest, stream, worktrees, the_day))
        command = resolve_agent(
            agent or stream.run,
            prompt_file=prompt_file,
            stream=stream.id,
            worktree=worktrees[0].path,
            login_shell=shell,
        )
        panes.append(
            PaneSpec(
                stream=stream.id,
                title=pane_title(stream, worktrees),
                cwd=worktrees[0].path,
                env=pane_env(manifest, stream, worktrees, prompt_file, path),
                agent=command,
                log=log_path(common, manifest.phase, stream.id),
            )
        )
    spec = SessionSpec(
        name=session_name(project_name(manifest, project), manifest.phase),
        phase=manifest.phase,
        layout=choose_layout(manifest.layout, len(streams)),
        panes=tuple(panes),
    )
    return _Prepared(manifest, common, spec, prompts, the_day)


def missing_programs(panes: list[PaneSpec]) -> list[tuple[str, str]]:
    """(stream, program) for every pane whose agent program cannot be found, in pane order."""
    missing: list[tuple[str, str]] = []
    for pane in panes:
        program = pane.agent.program
        if program is None:
            continue
        env = dict(pane.env)
        if "/" in program:
            candidate = Path(program) if os.path.isabs(program) else pane.cwd / program
            found = candidate.is_file() and os.access(candidate, os.X_OK)
        else:
            found = shutil.which(program, path=env.get("PATH", os.environ.get("PATH"))) is not None
        if not found:
            missing.append((pane.stream, program))
    return missing


def _check_programs(panes: list[PaneSpec]) -> None:
    missing = missing_programs(panes)
    if not missing:
        return
    problems = tuple(
        Problem("agent-missing", f"stream {stream}: `{program}` is not installed or not on PATH")
        for stream, program in missing
    )
    raise UnavailableError(
        f"{len(missing)} stream(s) cannot start their agent; nothing was launched",
        problems=problems,
        hint="install the programs (or put them on PATH), change the streams' `run:`, "
        "or launch with --agent TEMPLATE",
    )


def _launched(
    spec: SessionSpec, live: dict[str, PaneState], started: set[str], state: str
) -> list[LaunchedPane]:
    out: list[LaunchedPane] = []
    for pane in spec.panes:
        row = live.get(pane.stream)
        if row is None:
            pane_state = state if pane.stream in started else "missing"
        elif pane.stream in started:
            pane_state = "started"
        else:
            pane_state = "dead" if row.dead else "running"
        out.append(
            LaunchedPane(
                stream=pane.stream,
                title=pane.title,
                cwd=pane.cwd,
                # A pane this launch did not start runs what it ran before (maybe another --agent).
                command=row.command if row is not None and pane.stream not in started else pane.agent.display,
                prompt_file=Path(dict(pane.env)["CODITECT_PROMPT_FILE"]),
                state=pane_state,
                pane_id=row.pane_id if row else None,
                window=row.window_name if row else None,
                exit_status=row.dead_status if row and row.dead else None,
            )
        )
    return out


def _by_stream(rows: list[PaneState]) -> dict[str, PaneState]:
    """The first pane of each stream (a stream has one pane; a duplicate made by hand is ignored)."""
    out: dict[str, PaneState] = {}
    for row in rows:
        if row.stream and row.stream not in out:
            out[row.stream] = row
    return out


def launch(
    project: Project,
    phase: str | None,
    *,
    attach: bool,
    agent: str | None,
    socket: str | None,
    day: int | None,
    push: bool = True,
    dry_run: bool = False,
    today: _dt.date | None = None,
) -> LaunchResult:
    """Set the phase up if needed, then create (or complete) its tmux session; attach when ``attach``.

    Idempotent: panes that exist (running or dead) are left alone; only missing ones are created. Every
    stream whose pane must be created has its agent program checked first; any missing one raises
    :class:`UnavailableError` before anything changes. With ``attach`` in a terminal (outside tmux) this
    replaces the process with ``tmux attach`` and does not return; inside tmux it switches the client.
    """
    from coditect_cli.adapters.tmux import Tmux, add_pane_commands, session_commands
    from coditect_cli.services.setup import compute_plan, project_common_dir, read_context, setup

    if agent is not None:
        check_agent_template(agent)
    ctx = read_context(project, phase)
    manifest = ctx.manifest
    common = project_common_dir(project)
    sock = resolve_socket(common, manifest.phase, socket)
    prepared = prepare(
        project, manifest, common, agent=agent, day=day, today=today, path=os.environ.get("PATH")
    )
    spec = prepared.spec
    tmux = Tmux(sock)
    existing = _by_stream(tmux.session_panes(spec.name))
    missing = [p for p in spec.panes if p.stream not in existing]
    _check_programs(missing)

    plan = compute_plan(ctx, push=push)
    result = LaunchResult(
        phase=manifest.phase,
        session=spec.name,
        socket=sock,
        layout=spec.layout,
        day=prepared.day,
        created=not existing,
        panes=[],
        dry_run=dry_run,
    )
    if dry_run:
        from coditect_cli.services.setup import SetupResult

        result.setup = SetupResult(plan, dry_run=True) if not plan.empty else None
        commands = session_commands(spec) if not existing else add_pane_commands(spec, missing, existing)
        result.commands = [shlex.join(c) for c in commands] if missing else []
        result.panes = _launched(spec, existing, {p.stream for p in missing}, "planned")
        return result

    if not plan.empty:
        result.setup = setup(project, manifest.phase, push=push)

    from coditect_cli.state.lock import phase_lock
    from coditect_cli.state.store import Store

    with phase_lock(common, manifest.phase, "coditect streams launch"):
        for prompt_file, text in prepared.prompts.values():
            prompt_file.parent.mkdir(parents=True, exist_ok=True)
            prompt_file.write_text(text, encoding="utf-8")
        # Look again under the lock: another launch may have created panes meanwhile.
        existing = _by_stream(tmux.session_panes(spec.name))
        missing = [p for p in spec.panes if p.stream not in existing]
        _check_programs(missing)  # a pane may have been killed since the first look
        result.created = not existing
        if missing:
            for pane in missing:
                if pane.log is not None:
                    pane.log.parent.mkdir(parents=True, exist_ok=True)
            with Store.open(common) as store, store.track_run("streams launch", manifest.phase) as run_id:
                if existing:
                    commands = add_pane_commands(spec, missing, existing)
                    tmux.add_panes(spec, missing, existing)
                else:
                    commands = session_commands(spec)
                    tmux.create_session(spec)
                store.set_meta(SOCKET_META.format(phase=manifest.phase), sock or "")
                store.record_event(
                    run_id,
                    "streams launch",
                    "launch",
                    phase=manifest.phase,
                    detail={
                        "session": spec.name,
                        "socket": sock,
                        "created": result.created,
                        "added": [p.stream for p in missing],
                    },
                )
            result.commands = [shlex.join(c) for c in commands]
        rows = tmux.session_panes(spec.name)
    result.panes = _launched(spec, _by_stream(rows), {p.stream for p in missing}, "started")
    result.tmux_invocations = tmux.invocations
    if attach:
        attach_session(sock, spec.name, result)
    return result


def run_headless(
    project: Project, phase: str | None, *, agent: str, day: int | None = None, timeout: float = 120
) -> dict[str, int | None]:
    """Without tmux: set the phase up if needed, then run each stream's agent to completion in its worktree,
    with the same prompt file and environment a pane would have; its output goes to the pane log.

    What the sandbox demo does on a machine with no tmux. Returns each stream's exit status.
    """
    import subprocess

    from coditect_cli.services.setup import compute_plan, project_common_dir, read_context, setup

    check_agent_template(agent)
    ctx = read_context(project, phase)
    manifest = ctx.manifest
    common = project_common_dir(project)
    prepared = prepare(project, manifest, common, agent=agent, day=day, path=os.environ.get("PATH"))
    _check_programs(list(prepared.spec.panes))
    if not compute_plan(ctx).empty:
        setup(project, manifest.phase)
    for prompt_file, text in prepared.prompts.values():
        prompt_file.parent.mkdir(parents=True, exist_ok=True)
        prompt_file.write_text(text, encoding="utf-8")
    codes: dict[str, int | None] = {}
    for pane in prepared.spec.panes:
        log = pane.log or (common / "coditect" / "panes" / manifest.phase / f"{pane.stream}.log")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w", encoding="utf-8") as out:
            try:
                done = subprocess.run(
                    list(pane.agent.argv),
                    cwd=pane.cwd,
                    env={**os.environ, **dict(pane.env)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
                codes[pane.stream] = done.returncode
            except (OSError, subprocess.TimeoutExpired) as exc:
                out.write(f"\ncoditect: {exc}\n")
                codes[pane.stream] = None
    return codes


def attach_session(socket: str | None, session: str, result: LaunchResult | None = None) -> bool:
    """Bring ``session`` to the user's terminal.

    Inside tmux on the same server: ``switch-client`` (returns True). Outside tmux: ``exec tmux attach``
    (does not return). Inside another tmux server it refuses to nest: with ``result`` it notes why in
    ``result.attach_note`` and returns False, without it raises :class:`CoditectError`.
    """
    from coditect_cli.adapters.tmux import Tmux

    tmux = Tmux(socket)
    inside = _inside_socket()
    if inside is not None:
        rows = tmux.session_panes(session)
        ours = rows[0].socket_path if rows else ""
        if ours and os.path.realpath(ours) == os.path.realpath(inside):
            tmux.switch_client(session)
            if result is not None:
                result.attached = True
            return True
        note = (
            "inside another tmux server: not nesting; detach and run "
            f"`tmux {'-L ' + socket + ' ' if socket else ''}attach -t ={session}`"
        )
        if result is not None:
            result.attach_note = note
            return False
        raise CoditectError(f"cannot attach to {session}: {note}")
    tmux.exec_attach(session)
    return True  # pragma: no cover - exec does not return


def inside_tmux() -> bool:
    """Whether this process runs inside a tmux client (``$TMUX`` set)."""
    return _inside_socket() is not None


def _inside_socket() -> str | None:
    from coditect_cli.adapters.tmux import inside_tmux_socket

    return inside_tmux_socket()


# ----------------------------------------------------------------------------------------------- the other commands


@dataclass(frozen=True)
class _Session:
    manifest: Manifest
    common: Path
    name: str
    socket: str | None


def _session(project: Project, phase: str | None, socket: str | None) -> _Session:
    from coditect_cli.services.manifest import load
    from coditect_cli.services.setup import project_common_dir

    manifest = load(project, phase).manifest
    common = project_common_dir(project)
    sock = resolve_socket(common, manifest.phase, socket)
    return _Session(manifest, common, session_name(project_name(manifest, project), manifest.phase), sock)


def _no_session(s: _Session) -> UnavailableError:
    where = f" on tmux socket {s.socket!r}" if s.socket else " on the default tmux server"
    return UnavailableError(
        f"no tmux session {s.name}{where}",
        hint=f"start it with `coditect streams launch {s.manifest.phase}`"
        + ("" if s.socket else " (or pass --socket NAME if it runs on another server)"),
    )


def read_work(repo: str, path: Path, *, list_commits: bool = False) -> WorktreeWork:
    """Uncommitted changes and unpushed commits of the worktree at ``path`` (1-2 git processes).

    Unpushed means ahead of the upstream branch; a branch without upstream counts the commits on no other
    branch and no remote-tracking branch.
    """
    from coditect_cli.adapters import proc

    if not (path / ".git").exists():
        return WorktreeWork(repo, path, exists=False)
    git = ["git", "-C", str(path)]
    out = proc.run([*git, "status", "--porcelain=v2", "--branch", "--untracked-files=all"]).stdout
    branch: str | None = None
    upstream: str | None = None
    ahead = 0
    changes: list[str] = []
    for line in out.splitlines():
        if line.startswith("# branch.head "):
            head = line.removeprefix("# branch.head ")
            branch = None if head == "(detached)" else head
        elif line.startswith("# branch.upstream "):
            upstream = line.removeprefix("# branch.upstream ")
        elif line.startswith("# branch.ab "):
            ahead = int(line.split()[2].lstrip("+"))
        elif line.startswith("? "):
            changes.append(f"?? {line[2:]}")
        elif line[:2] in {"1 ", "2 ", "u "}:
            parts = line.split(" ", {"1": 8, "2": 9, "u": 10}[line[0]])
            changes.append(f"{parts[1].replace('.', ' ')} {parts[-1].split(chr(9))[0]}")
    commits: tuple[str, ...] = ()
    fmt = "--format=%h %s"
    if upstream is not None:
        unpushed = ahead
        if list_commits and ahead:
            commits = tuple(proc.run([*git, "log", fmt, "@{upstream}..HEAD"]).stdout.splitlines())
    elif "# branch.oid (initial)" in out:
        unpushed = 0
    else:
        exclude = [f"--exclude={branch}"] if branch else []
        listed = proc.run([*git, "log", fmt, "HEAD", "--not", *exclude, "--branches", "--remotes"]).stdout
        commits = tuple(listed.splitlines())
        unpushed = len(commits)
        if not list_commits:
            commits = ()
    return WorktreeWork(repo, path, True, branch, upstream, tuple(changes), unpushed, commits)


def _worktrees(project: Project, manifest: Manifest) -> dict[str, list[tuple[str, Path]]]:
    from coditect_cli.domain.plan import worktree_path

    out: dict[str, list[tuple[str, Path]]] = {}
    for pair in manifest.pairs():
        out.setdefault(pair.stream.id, []).append((pair.repo.id, worktree_path(manifest, project.root, pair)))
    return out


def _last_line(log: Path) -> str | None:
    try:
        with log.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 4096))
            tail = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    lines = [_ANSI.sub("", line).strip() for line in tail.splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:200] if lines else None


def status(project: Project, phase: str | None, *, socket: str | None = None) -> StatusResult:
    """Every stream's pane (alive or dead, current command, cwd, idle time) and worktrees (branch,
    uncommitted and unpushed counts). One ``list-panes -a`` call for all panes."""
    from coditect_cli.adapters.tmux import Tmux

    s = _session(project, phase, socket)
    rows = _by_stream(Tmux(s.socket).session_panes(s.name))
    worktrees = _worktrees(project, s.manifest)
    now = time.time()
    out: list[StreamStatus] = []
    for stream in ordered_streams(s.manifest):
        row = rows.get(stream.id)
        log = log_path(s.common, s.manifest.phase, stream.id)
        idle: float | None = None
        last: str | None = None
        if row is not None and log.is_file():
            idle = max(0.0, now - log.stat().st_mtime)
            last = _last_line(log)
        out.append(
            StreamStatus(
                stream=stream.id,
                state="missing" if row is None else "dead" if row.dead else "running",
                pane_id=row.pane_id if row else None,
                window=row.window_name if row else None,
                exit_status=row.dead_status if row and row.dead else None,
                exit_signal=row.dead_signal if row and row.dead else None,
                command=row.command if row else None,
                cwd=(row.cwd or None) if row else None,
                idle_seconds=idle,
                last_line=last,
                worktrees=[read_work(repo, path) for repo, path in worktrees[stream.id]],
            )
        )
    return StatusResult(s.manifest.phase, s.name, s.socket, bool(rows), out)


def attach_target(project: Project, phase: str | None, *, socket: str | None = None) -> dict[str, Any]:
    """The phase's live session and how to attach to it; :class:`UnavailableError` when it is not running."""
    from coditect_cli.adapters.tmux import Tmux

    s = _session(project, phase, socket)
    rows = Tmux(s.socket).session_panes(s.name)
    if not rows:
        raise _no_session(s)
    sock = f"-L {s.socket} " if s.socket else ""
    return {
        "phase": s.manifest.phase,
        "session": s.name,
        "socket": s.socket,
        "socket_path": rows[0].socket_path,
        "panes": len(rows),
        "attach_command": f"tmux {sock}attach -t ={s.name}",
        "inside_tmux": inside_tmux(),
    }


def attach(project: Project, phase: str | None, *, socket: str | None = None) -> None:
    """Attach the terminal to the phase's session (``switch-client`` inside tmux on the same server)."""
    target = attach_target(project, phase, socket=socket)
    attach_session(target["socket"], target["session"])


def send(
    project: Project, phase: str | None, target: str, text: str, *, socket: str | None = None
) -> SendResult:
    """Type ``text`` literally into ``target``'s pane (a stream id, or ``all``), then press Enter."""
    result = send_each(project, phase, {target: text}, socket=socket)
    if not result.delivered:
        reasons = "; ".join(f"{k}: {v}" for k, v in result.skipped.items())
        raise UnavailableError(
            f"nothing to send to: {reasons}",
            hint=f"relaunch with `coditect streams launch {result.phase}`",
        )
    return result


def send_each(
    project: Project, phase: str | None, texts: Mapping[str, str], *, socket: str | None = None
) -> SendResult:
    """Type each stream's own text into its pane (key ``all``: every stream), reading the panes once.

    Streams whose pane is missing or dead are skipped, with the reason.
    """
    from coditect_cli.adapters.tmux import Tmux

    s = _session(project, phase, socket)
    streams = [st.id for st in ordered_streams(s.manifest)]
    unknown = [t for t in texts if t != "all" and t not in streams]
    if unknown:
        raise UsageError(
            f"no stream {unknown[0]!r} in phase {s.manifest.phase} (streams: {', '.join(streams)}, or all)"
        )
    tmux = Tmux(s.socket)
    rows = _by_stream(tmux.session_panes(s.name))
    if not rows:
        raise _no_session(s)
    wanted = {st: texts["all"] for st in streams} if "all" in texts else dict(texts)
    delivered: list[str] = []
    skipped: dict[str, str] = {}
    for stream in (st for st in streams if st in wanted):
        row = rows.get(stream)
        if row is None:
            skipped[stream] = "no pane"
        elif row.dead:
            skipped[stream] = (
                f"the agent exited ({row.dead_status if row.dead_status is not None else 'signal'})"
            )
        else:
            delivered.append(stream)
    same = len(set(wanted.values())) == 1
    if delivered and same:
        tmux.send([rows[st].pane_id for st in delivered], next(iter(wanted.values())))
    else:
        for stream in delivered:
            tmux.send([rows[stream].pane_id], wanted[stream])
    text = next(iter(wanted.values())) if same and wanted else ""
    return SendResult(s.manifest.phase, s.name, text, delivered, skipped)


def _refusal(dirty: list[WorktreeWork]) -> RefusedError:
    lines: list[str] = []
    problems: list[Problem] = []
    for w in dirty:
        lines.append(f"  {w.path} ({w.repo}, {w.branch or 'detached HEAD'}):")
        for change in w.changes:
            lines.append(f"    uncommitted: {change}")
            problems.append(Problem("uncommitted", f"uncommitted: {change}", Location(str(w.path))))
        for commit in w.commits:
            where = f"not on {w.upstream}" if w.upstream else "on no other branch or remote"
            lines.append(f"    unpushed ({where}): {commit}")
            problems.append(Problem("unpushed", f"unpushed: {commit}", Location(str(w.path))))
    return RefusedError(
        f"{len(dirty)} worktree(s) have work that removing them would put at risk; nothing was stopped "
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

    s = _session(project, phase, socket)
    tmux = Tmux(s.socket)
    rows = tmux.session_panes(s.name)
    works = [
        read_work(repo, path, list_commits=remove_worktrees)
        for entries in _worktrees(project, s.manifest).values()
        for repo, path in entries
    ]
    existing = [w for w in works if w.exists]
    dirty = [w for w in existing if not w.clean]
    if remove_worktrees and dirty:
        raise _refusal(dirty)
    result = StopResult(s.manifest.phase, s.name, s.socket, bool(rows), len(rows), [], works, dry_run=dry_run)
    if dry_run:
        result.removed = [w.path for w in existing] if remove_worktrees else []
        return result
    with phase_lock(s.common, s.manifest.phase, "coditect streams stop"):
        if rows:
            tmux.kill_session(s.name)
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
    """Remove ``directory`` and its parents while they are empty, never reaching ``stop_at``."""
    current = directory
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

    s = _session(project, phase, socket)
    tmux = Tmux(s.socket)
    streams = [st.id for st in ordered_streams(s.manifest)]
    deadline = time.monotonic() + timeout
    interval = min(max(poll, 0.005), 0.1)
    unknown_since: dict[str, float] = {}
    while True:
        rows = _by_stream(tmux.session_panes(s.name))
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
