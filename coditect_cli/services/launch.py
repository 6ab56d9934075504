"""``streams launch|attach``: one tmux pane per stream, each running the stream's agent.

``launch`` sets the phase up when needed, writes each stream's prompt file, then creates the tmux session
(or adds the panes missing from it) in ONE tmux invocation; running agents are never restarted. Panes are
found by their ``@coditect_stream`` option. Where the session and its files are:
:mod:`coditect_cli.services.session`; what runs in it afterwards (status, send, stop):
:mod:`coditect_cli.services.streams`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.domain.launch import (
    PLACEHOLDERS,
    PaneSpec,
    PaneState,
    SessionSpec,
    choose_layout,
    env_file_text,
    ordered_streams,
    pane_env,
    pane_title,
    panes_by_stream,
    phase_day,
    render_prompt,
    stream_worktrees,
)
from coditect_cli.domain.limits import day_problem
from coditect_cli.domain.manifest import AGENT_KINDS, Manifest, options_for_run
from coditect_cli.errors import CoditectError, Problem, RefusedError, UnavailableError, UsageError
from coditect_cli.project import Project
from coditect_cli.services.session import (
    SOCKET_META,
    agent_file,
    log_path,
    phase_session,
    phase_session_name,
    prompt_path,
    session_of,
)

if TYPE_CHECKING:
    from coditect_cli.services.hosts import HostLaunch
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
    trust: TrustResult | None = None
    hosts: list[HostLaunch] = field(default_factory=list)  # the streams on remote hosts

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
            "trust": self.trust.to_json() if self.trust is not None else None,
            "hosts": [h.to_json() for h in self.hosts],
        }


@dataclass(frozen=True)
class TrustResult:
    """Claude Code's trust of the project: the config file, the paths checked, what was (or would be) changed."""

    config: Path
    paths: tuple[str, ...]
    changed: tuple[str, ...]
    consent: str  # "--trust", "manifest", or "" (none given)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "config": str(self.config),
            "paths": list(self.paths),
            "changed": list(self.changed),
            "consent": self.consent or None,
            "dry_run": self.dry_run,
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
    files: dict[str, dict[Path, tuple[str, int]]] = field(
        default_factory=dict
    )  # stream -> {path: (text, mode)}
    kinds: dict[str, str] = field(default_factory=dict)  # stream -> agent kind


def check_agent_template(template: str) -> None:
    """Refuse an ``--agent`` template with unknown placeholders (the manifest's ``run`` rule)."""
    if template in AGENT_KINDS:
        return
    unknown = sorted(set(re.findall(r"\{([^{}]*)\}", template)) - set(PLACEHOLDERS))
    if unknown:
        raise UsageError(
            f"--agent: unknown placeholder {{{unknown[0]}}}; allowed: {', '.join(PLACEHOLDERS)}",
        )


def hook_argv(common: Path, phase: str, stream: str) -> tuple[str, ...]:
    """The command recording one agent event for ``stream`` (stdlib only: ``python3 -I -S events.py FILE``)."""
    from coditect_cli.agents import events

    return (
        sys.executable,
        "-I",
        "-S",
        str(Path(events.__file__).resolve()),
        str(agent_file(common, phase, stream)),
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
    environ: Mapping[str, str] | None = None,
    resume: frozenset[str] = frozenset(),
) -> _Prepared:
    """The session spec of ``manifest`` (every pane), each stream's prompt and agent files, computed without
    side effects. ``environ`` (default: this process's) gives the variables each agent kind asks for;
    streams in ``resume`` continue their agent's last session where the kind can."""
    from coditect_cli.agents import profile_for
    from coditect_cli.agents.base import AgentContext
    from coditect_cli.domain.plan import worktree_path

    problem = day_problem(day) if day is not None else None
    if problem:
        raise UsageError(problem)
    environ = os.environ if environ is None else environ
    the_day = day if day is not None else phase_day(manifest.schedule, today or _dt.date.today())
    paths = {pair.key: worktree_path(manifest, project.root, pair) for pair in manifest.pairs()}
    streams = [s for s in ordered_streams(manifest) if s.host is None]  # others: services.hosts
    shell = _login_shell()
    panes: list[PaneSpec] = []
    prompts: dict[str, tuple[Path, str]] = {}
    files: dict[str, dict[Path, tuple[str, int]]] = {}
    kinds: dict[str, str] = {}
    for stream in streams:
        worktrees = stream_worktrees(manifest, stream, paths)
        prompt_file = prompt_path(common, manifest.phase, stream.id)
        prompts[stream.id] = (prompt_file, render_prompt(manifest, stream, worktrees, the_day))
        profile = profile_for(options_for_run(agent) if agent is not None else stream.agent_options)
        ctx = AgentContext(
            stream=stream.id,
            prompt_file=prompt_file,
            worktrees=tuple(worktrees),
            gates=tuple(g.run for g in stream.gates),
            login_shell=shell,
            phase=manifest.phase,
            root=project.root,
            hook=hook_argv(common, manifest.phase, stream.id),
            settings_file=agent_file(common, manifest.phase, stream.id, ".settings.json"),
            resume=stream.id in resume,
        )
        command = profile.command(ctx)
        own = {p: (text, 0o644) for p, text in profile.files(ctx).items()}
        env = (
            *pane_env(manifest, stream, worktrees, prompt_file, path),
            # Where an agent without hooks of its own (the scripted one) reports its turns.
            ("CODITECT_EVENTS_FILE", str(agent_file(common, manifest.phase, stream.id))),
        )
        # The pane's variables, what the agent needs and what the manifest passes on purpose: through the
        # 0600 file only, never a command line (the tmux server, started on the allow-listed environment,
        # gives panes no credential of its own).
        wanted = (*profile.env_names, *manifest.pass_env, *stream.pass_env)
        needed = {k: environ[k] for k in wanted if environ.get(k) and k not in stream.env}
        env_file = agent_file(common, manifest.phase, stream.id, ".env")
        own[env_file] = (env_file_text({**dict(env), **needed}), 0o600)
        files[stream.id] = own
        kinds[stream.id] = profile.kind
        panes.append(
            PaneSpec(
                stream=stream.id,
                title=pane_title(stream, worktrees),
                cwd=worktrees[0].path,
                env=env,
                agent=command,
                log=log_path(common, manifest.phase, stream.id),
                env_file=env_file,
            )
        )
    spec = SessionSpec(
        name=phase_session_name(manifest, project),
        phase=manifest.phase,
        layout=choose_layout(manifest.layout, len(streams)),
        panes=tuple(panes),
    )
    return _Prepared(manifest, common, spec, prompts, the_day, files, kinds)


def write_agent_files(prepared: _Prepared, streams: list[str], flush: list[str] | None = None) -> None:
    """Write the prompt and agent files of ``streams`` and mark a new start in their events files.

    ``flush`` is the command (``streams flush``) an agent's hook starts when held messages wait for it.
    """
    from coditect_cli.agents.events import LAUNCH, append

    for stream in streams:
        prompt_file, text = prepared.prompts[stream]
        prompt_file.parent.mkdir(parents=True, exist_ok=True)
        prompt_file.write_text(text, encoding="utf-8")
        for file, (content, mode) in prepared.files.get(stream, {}).items():
            file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), mode)  # before writing: a file left wider by hand is narrowed first
                fh.write(content)
        events = agent_file(prepared.common, prepared.manifest.phase, stream)
        events.parent.mkdir(parents=True, exist_ok=True)
        append(events, {"t": round(time.time(), 3), "event": LAUNCH, "kind": prepared.kinds.get(stream, "")})
        if flush is not None:
            agent_file(prepared.common, prepared.manifest.phase, stream, ".flush").write_text(
                json.dumps([*flush, stream]), encoding="utf-8"
            )


def trust_paths(project: Project, manifest: Manifest, streams: list[str]) -> list[Path]:
    """The directories Claude Code must trust for ``streams``: the project root, every repository root and
    the streams' worktrees."""
    from coditect_cli.domain.plan import worktree_path

    out = [project.root.resolve()]
    out += [(project.root / r.path).resolve() for r in manifest.repositories]
    out += [worktree_path(manifest, project.root, p) for p in manifest.pairs() if p.stream.id in streams]
    return list(dict.fromkeys(out))


def ensure_trust(
    project: Project, prepared: _Prepared, streams: list[str], *, consent: bool, dry_run: bool = False
) -> TrustResult | None:
    """Make Claude Code start the ``streams``' panes without its trust and API-key dialogs.

    Only the streams running Claude Code count (None when there are none). When Claude Code would ask: with
    consent (``consent`` from ``--trust``, or the manifest's ``trust: true``) edit its configuration
    (:func:`coditect_cli.adapters.claude_config.grant_trust`; not on a dry run), else refuse
    (:class:`RefusedError`, exit 4) saying what to run. Claude Code that was never set up (its onboarding)
    cannot be started unattended: :class:`UnavailableError`.
    """
    from coditect_cli.adapters import claude_config

    claude = [s for s in streams if prepared.kinds.get(s) == "claude"]
    if not claude:
        return None
    manifest = prepared.manifest
    paths = trust_paths(project, manifest, claude)
    api_key = os.environ.get("ANTHROPIC_API_KEY")
    state = claude_config.trust_state(paths, api_key)
    given = "--trust" if consent else ("manifest" if manifest.trust else "")
    if not state.onboarded:
        raise UnavailableError(
            f"Claude Code has not been set up for this user ({state.path} has no completed onboarding): "
            f"its first-run screens would stop {len(claude)} pane(s)",
            hint="run `claude` once in a terminal (pick a theme, log in or accept the API key), then launch again",
        )
    would = [f"trust {p}" for p in state.untrusted]
    if state.key_approved is False:
        would.append("approve the ANTHROPIC_API_KEY in the environment (its last 20 characters)")
    if not would:
        return TrustResult(state.path, tuple(map(str, paths)), (), given, dry_run)
    if not given:
        raise RefusedError(
            f"Claude Code would stop {len(claude)} pane(s) ({', '.join(claude)}) at its workspace-trust or "
            f"API-key dialog; nothing was launched. coditect can add {project.root} (its repositories and "
            f"worktrees) to Claude Code's trusted projects in {state.path}, with your consent",
            problems=tuple(Problem("claude-trust", w) for w in would),
            hint=f"run `coditect streams launch {manifest.phase} --trust` (or set `trust: true` in the "
            "manifest); a backup of the file is kept next to it",
        )
    if dry_run:
        return TrustResult(state.path, tuple(map(str, paths)), tuple(would), given, True)
    config, changed = claude_config.grant_trust(paths, api_key)
    return TrustResult(config, tuple(map(str, paths)), tuple(changed), given)


def flush_command(project: Project, phase: str) -> list[str]:
    """The command an agent's hook starts to deliver the messages held for its stream (stream appended)."""
    return [
        sys.executable,
        "-m",
        "coditect_cli",
        "--root",
        str(project.root),
        "streams",
        "flush",
        "--phase",
        phase,
    ]


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
    trust: bool = False,
) -> LaunchResult:
    """Set the phase up if needed, then create (or complete) its tmux session; attach when ``attach``.

    Claude Code panes start only when Claude Code will not stop them at a dialog: with consent (``trust``,
    or ``trust: true`` in the manifest) the project is added to its trusted projects first
    (:func:`ensure_trust`), without it the launch is refused (exit 4) saying what to run.

    Idempotent: panes that exist (running or dead) are left alone; only missing ones are created. Every
    stream whose pane must be created has its agent program checked first; any missing one raises
    :class:`UnavailableError` before anything changes. With ``attach`` in a terminal (outside tmux) this
    replaces the process with ``tmux attach`` and does not return; inside tmux it switches the client.
    """
    from coditect_cli import handoff
    from coditect_cli.adapters.tmux import Tmux, add_pane_commands, session_commands
    from coditect_cli.services.setup import compute_plan, project_common_dir, read_context, setup

    if agent is not None:
        check_agent_template(agent)
    ctx = read_context(project, phase)
    manifest = ctx.manifest
    common = project_common_dir(project)
    session = session_of(project, manifest, common, socket)
    sock = session.socket
    prepared = prepare(
        project, manifest, common, agent=agent, day=day, today=today, path=os.environ.get("PATH")
    )
    tmux = Tmux(sock)
    # This checkout's session: its own name, or the legacy one it was launched under before an upgrade.
    session, rows = session.locate(tmux) if prepared.spec.panes else (session, [])
    spec = dataclasses.replace(prepared.spec, name=session.name)
    existing = panes_by_stream(rows)
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
        result.trust = ensure_trust(
            project, prepared, [p.stream for p in missing], consent=trust, dry_run=True
        )
        return result

    if (push and not plan.empty) or manifest.hosts:
        # Pushing to origin, and reaching the hosts over ssh, may ask for a password or a passphrase: in the
        # process the user started, which has the terminal (a warm server's worker has none).
        handoff.need_terminal("setting up with a push, or reaching remote hosts, may prompt")
    if not plan.empty:
        result.setup = setup(project, manifest.phase, push=push)
    if manifest.hosts:
        from coditect_cli.services.hosts import launch_hosts

        result.hosts = launch_hosts(project, manifest, common, day=prepared.day, agent=agent)
    if not spec.panes:  # every stream runs on a remote host
        return result

    from coditect_cli.state.lock import phase_lock
    from coditect_cli.state.store import Store

    with phase_lock(common, manifest.phase, "coditect streams launch"):
        for prompt_file, text in prepared.prompts.values():
            prompt_file.parent.mkdir(parents=True, exist_ok=True)
            prompt_file.write_text(text, encoding="utf-8")
        # Look again under the lock: another launch may have created panes meanwhile.
        session, rows = session.locate(tmux)
        spec = dataclasses.replace(spec, name=session.name)
        result.session = spec.name
        existing = panes_by_stream(rows)
        missing = [p for p in spec.panes if p.stream not in existing]
        _check_programs(missing)  # a pane may have been killed since the first look
        result.created = not existing
        if missing:
            result.trust = ensure_trust(project, prepared, [p.stream for p in missing], consent=trust)
            write_agent_files(prepared, [p.stream for p in missing], flush_command(project, manifest.phase))
            for pane in missing:
                if pane.log is not None:
                    pane.log.parent.mkdir(parents=True, exist_ok=True)
            with Store.open(common) as store, store.track_run("streams launch", manifest.phase) as run_id:
                if result.trust is not None and result.trust.changed:
                    store.record_event(
                        run_id,
                        "streams launch",
                        "trust",
                        phase=manifest.phase,
                        detail={"config": str(result.trust.config), "changes": result.trust.changed},
                    )
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


@dataclass(frozen=True)
class RestartResult:
    """``streams restart``: the stream's agent started again, resuming its conversation or fresh."""

    phase: str
    stream: str
    pane_id: str
    kind: str
    resumed: bool
    command: str
    note: str
    trust: TrustResult | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "phase": self.phase,
            "stream": self.stream,
            "pane_id": self.pane_id,
            "kind": self.kind,
            "resumed": self.resumed,
            "command": self.command,
            "note": self.note,
            "trust": self.trust.to_json() if self.trust is not None else None,
        }


def restartable(
    row: PaneState | None, stream: str, session: str, phase: str, force: bool, where: str = ""
) -> PaneState:
    """``stream``'s pane ``row`` if its agent may be restarted: :class:`UnavailableError` without a pane,
    :class:`RefusedError` (exit 4) while the agent runs, unless ``force`` (``where``: " on host H")."""
    if row is None:
        raise UnavailableError(
            f"stream {stream} has no pane in {session}{where}",
            hint=f"start it with `coditect streams launch {phase}`",
        )
    if not row.dead and not force:
        raise RefusedError(
            f"the agent of stream {stream} is still running{where} ({row.command}); restarting would end it",
            hint="let it finish (or exit it), or pass --force to end it and restart",
        )
    return row


def restart(
    project: Project,
    phase: str | None,
    stream: str,
    *,
    socket: str | None = None,
    force: bool = False,
    trust: bool = False,
) -> RestartResult:
    """Start ``stream``'s agent again in its pane, continuing its last conversation where the kind can
    (``claude --continue``, ``codex resume --last``) and one was recorded, else fresh with its prompt.

    A pane whose agent still runs is refused (:class:`RefusedError`, exit 4) unless ``force`` (which ends it).
    """
    from coditect_cli.adapters.tmux import Tmux
    from coditect_cli.agents.events import read_events
    from coditect_cli.services.session import phase_session

    s = phase_session(project, phase, socket)
    streams = [st.id for st in ordered_streams(s.manifest)]
    if stream not in streams:
        raise UsageError(f"no stream {stream!r} in phase {s.manifest.phase} (streams: {', '.join(streams)})")
    if s.manifest.stream(stream).host is not None:
        from coditect_cli.services.hosts import restart_remote

        remote: RestartResult = restart_remote(project, s, s.manifest.stream(stream), force=force)
        return remote
    tmux = Tmux(s.socket)
    s, found = s.locate(tmux)
    row = restartable(panes_by_stream(found).get(stream), stream, s.name, s.manifest.phase, force)
    had_session = any(e.session for e in read_events(agent_file(s.common, s.manifest.phase, stream)))
    resume = frozenset({stream}) if had_session else frozenset()
    prepared = prepare(project, s.manifest, s.common, path=os.environ.get("PATH"), resume=resume)
    pane = next(p for p in prepared.spec.panes if p.stream == stream)
    _check_programs([pane])
    from coditect_cli.agents import profile_for

    profile = profile_for(s.manifest.stream(stream).agent_options)
    resumed = had_session and profile.can_resume
    from coditect_cli.state.lock import phase_lock

    with phase_lock(s.common, s.manifest.phase, "coditect streams restart"):
        granted = ensure_trust(project, prepared, [stream], consent=trust)
        write_agent_files(prepared, [stream], flush_command(project, s.manifest.phase))
        tmux.respawn(row.pane_id, pane)
    if resumed:
        note = f"resumed the last conversation ({pane.agent.display.split(' ', 1)[0]} continues it)"
    elif profile.can_resume:
        note = "started fresh with the prompt: no earlier conversation was recorded"
    else:
        note = f"started fresh with the prompt: {profile.kind} cannot resume a conversation"
    return RestartResult(
        s.manifest.phase, stream, row.pane_id, profile.kind, resumed, pane.agent.display, note, granted
    )


def run_headless(
    project: Project, phase: str | None, *, agent: str, day: int | None = None, timeout: float = 120
) -> dict[str, int | None]:
    """Without tmux: set the phase up if needed, then run each stream's agent to completion in its worktree,
    with the same prompt file and environment a pane would have; its output goes to the pane log.

    What the sandbox demo does on a machine with no tmux. Returns each stream's exit status.
    """
    import subprocess

    from coditect_cli.adapters.proc import child_env
    from coditect_cli.domain.launch import pane_argv
    from coditect_cli.services.setup import compute_plan, project_common_dir, read_context, setup

    check_agent_template(agent)
    ctx = read_context(project, phase)
    manifest = ctx.manifest
    common = project_common_dir(project)
    prepared = prepare(project, manifest, common, agent=agent, day=day, path=os.environ.get("PATH"))
    _check_programs(list(prepared.spec.panes))
    if not compute_plan(ctx).empty:
        setup(project, manifest.phase)
    write_agent_files(prepared, [p.stream for p in prepared.spec.panes])
    codes: dict[str, int | None] = {}
    for pane in prepared.spec.panes:
        log = pane.log or log_path(common, manifest.phase, pane.stream)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("w", encoding="utf-8") as out:
            try:
                done = subprocess.run(
                    list(pane_argv(pane)),  # sources the pane's 0600 environment file, as a pane does
                    cwd=pane.cwd,
                    env=child_env(),  # the allow-list, as the tmux server's
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
    s, rows = s.locate(Tmux(s.socket))
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
