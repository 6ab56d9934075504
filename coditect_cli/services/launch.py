"""``streams launch|attach``: one tmux pane per stream, each running the stream's agent.

``launch`` sets the phase up when needed, writes each stream's prompt file, then creates the tmux session
(or adds the panes missing from it) in ONE tmux invocation; running agents are never restarted. Panes are
found by their ``@coditect_stream`` option. Where the session and its files are:
:mod:`coditect_cli.services.session`; what runs in it afterwards (status, send, stop):
:mod:`coditect_cli.services.streams`.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shlex
import shutil
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
    panes_by_stream,
    phase_day,
    render_prompt,
    resolve_agent,
    session_name,
    stream_worktrees,
)
from coditect_cli.domain.limits import MAX_DAY
from coditect_cli.domain.manifest import Manifest
from coditect_cli.errors import CoditectError, Problem, UnavailableError, UsageError
from coditect_cli.project import Project
from coditect_cli.services.session import (
    SOCKET_META,
    log_path,
    phase_session,
    project_name,
    prompt_path,
    resolve_socket,
)

if TYPE_CHECKING:
    from coditect_cli.services.setup import SetupResult


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


# ----------------------------------------------------------------------------------------------- launch


def _login_shell() -> str:
    shell = os.environ.get("SHELL")
    if shell:
        return shell
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
    except KeyError:
        return "/bin/sh"


@dataclass(frozen=True)
class _Prepared:
    manifest: Manifest
    common: Path
    spec: SessionSpec
    prompts: dict[str, tuple[Path, str]]  # stream -> (file, text)
    day: int


def check_agent_template(template: str) -> None:
    """Refuse an ``--agent`` template with unknown placeholders (the manifest's ``run`` rule)."""
    if template in {"shell", "claude", "anthropic"}:
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

    if day is not None and not 1 <= day <= MAX_DAY:
        raise UsageError(f"--day must be 1 to {MAX_DAY}, not {day}")
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
            phase=manifest.phase,
            root=project.root,
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
    existing = panes_by_stream(tmux.session_panes(spec.name))
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
        existing = panes_by_stream(tmux.session_panes(spec.name))
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
    result.panes = _launched(spec, panes_by_stream(rows), {p.stream for p in missing}, "started")
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
        log = pane.log or log_path(common, manifest.phase, pane.stream)
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


# ----------------------------------------------------------------------------------------------- attach


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


def attach_target(project: Project, phase: str | None, *, socket: str | None = None) -> dict[str, Any]:
    """The phase's live session and how to attach to it; :class:`UnavailableError` when it is not running."""
    from coditect_cli.adapters.tmux import Tmux

    s = phase_session(project, phase, socket)
    rows = Tmux(s.socket).session_panes(s.name)
    if not rows:
        raise s.not_running()
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
