"""Streams on remote hosts (``hosts:`` in the manifest, ``host:`` per stream), over SSH.

On a host coditect uses only what is there: ssh, git, tmux and the agent's CLI (the ownership guard's hook
is a Python script, so ``python3`` too). Everything goes over one multiplexed connection per host
(:mod:`coditect_cli.adapters.ssh`): a whole setup or launch of a host's streams is one shell script sent on
stdin, and reading every pane of a host is one ``tmux list-panes``. Work reaches the integration side only
through origin (the stream pushes its branch), so checkpoints, PRs and conflicts work unchanged.

Layout under the host's ``workdir`` (``<project>`` is the project's name)::

    <workdir>/<project>/repos/<repo>                      a clone of the repository's origin (no checkout)
    <workdir>/<project>/worktrees/<phase>/<stream>/<repo>  the stream's worktree, guard hooks installed
    <workdir>/<project>/prompts/<phase>/<stream>.md        its prompt
    <workdir>/<project>/panes/<phase>/<stream>.log         its pane's output
    <workdir>/<project>/agents/<phase>/<stream>.env        its pane's environment (0600, sourced by the pane)

Each host runs the phase's session on a tmux server of its own (``tmux -L coditect-<hash>``), under the
same name as on this machine (``coditect-<project>-<phase>-<hash of the project root>``). A session of the
name used before (no hash) is still found when its panes started in the project's directory on the host
(which every checkout of a project named alike shares: the host's directories are named by the project).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import hashlib
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.adapters.ssh import SshHost
from coditect_cli.adapters.tmux import Tmux, Unit, respawn_commands, sequence
from coditect_cli.agents.events import AgentEvent
from coditect_cli.domain.launch import (
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
from coditect_cli.domain.manifest import Host, Manifest, Stream
from coditect_cli.errors import CommandFailed, Location, Problem, RefusedError, UnavailableError, UsageError
from coditect_cli.project import Project

if TYPE_CHECKING:
    from coditect_cli.adapters import proc

REMOTE_SHELL = "/bin/sh"  # what a `run: shell` stream gets on a host (its login shell is not known here)

_connections: dict[tuple[Path, str], SshHost] = {}


def connection(common: Path, host: Host) -> SshHost:
    """The (per-process, shared) SSH handle of ``host``."""
    key = (common, host.name)
    found = _connections.get(key)
    if found is None or found.destination != host.ssh or found.port != host.port:
        found = SshHost(host.name, host.ssh, host.port, common)
        _connections[key] = found
    return found


class RemoteTmux(Tmux):
    """A tmux server on a host: the same commands as :class:`Tmux`, run over the host's SSH connection."""

    def __init__(self, host: SshHost, socket: str, layout: RemoteLayout | None = None) -> None:
        super().__init__(socket)
        self.host = host
        self.layout = layout

    def events_file(self, phase: str, stream: str) -> RemoteEvents:
        """``stream``'s agent events file on the host."""
        assert self.layout is not None
        return RemoteEvents(self.host, self.layout.events(phase, stream))

    def argv(self, commands: Sequence[Sequence[str]]) -> list[str]:
        """The command line on the host: ``-u`` because an SSH session often has no UTF-8 locale, and
        without one tmux prints the list-panes field separator (and every non-ASCII title) as ``_``."""
        return ["tmux", "-u", "-L", self.socket or "default", *sequence(commands)]

    def run(self, *commands: Sequence[str], check: bool = True) -> proc.Completed:
        """Run ``commands`` in ONE tmux process on the host."""
        self.invocations += 1
        done = self.host.run(self.argv(commands), check=False, timeout=60)
        if check and done.returncode != 0:
            raise CommandFailed([f"ssh {self.host.name}", *done.argv[-1:]], done.returncode, done.stderr)
        return done

    def paste(self, pane_id: str, text: str) -> None:
        """Put ``text`` into the pane's input through a tmux buffer on the host (the text goes over the
        connection's stdin, never on a command line)."""
        buffer = f"coditect-{os.getpid()}-{pane_id.lstrip('%')}"
        self.invocations += 1
        self.host.run(self.argv([["load-buffer", "-b", buffer, "-"]]), input=text, timeout=60)
        self.run(["paste-buffer", "-d", "-p", "-r", "-b", buffer, "-t", pane_id])


@dataclass(frozen=True)
class RemoteEvents:
    """A stream's agent events file on its host, read and appended over the host's connection."""

    host: SshHost
    path: str

    def read(self) -> list[AgentEvent]:
        """The events since the pane's last start (the file's tail), one SSH call."""
        from coditect_cli.agents.events import TAIL_BYTES, parse_events

        q = shlex.quote(self.path)
        done = self.host.run_shell(f"wc -c 2>/dev/null < {q} && tail -c {TAIL_BYTES} {q}", check=False)
        size, _, tail = done.stdout.partition("\n")
        return parse_events(tail, cut=size.strip().isdigit() and int(size) > TAIL_BYTES)

    def append(self, line: dict[str, object]) -> None:
        """Append one event line, one SSH call."""
        import json

        text = json.dumps(line, separators=(",", ":"))
        self.host.run_shell(f"printf '%s\\n' {shlex.quote(text)} >> {shlex.quote(self.path)}")


# ----------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class RemoteLayout:
    """Where a project's files are on one host."""

    host: Host
    project: str

    @property
    def base(self) -> str:
        return f"{self.host.workdir}/{self.project}"

    @property
    def socket(self) -> str:
        """The tmux socket name (``tmux -L``) of this project's sessions on the host."""
        return "coditect-" + hashlib.sha256(self.base.encode()).hexdigest()[:10]

    def clone(self, repo: str) -> str:
        return f"{self.base}/repos/{repo}"

    def worktree(self, phase: str, stream: str, repo: str) -> str:
        return f"{self.base}/worktrees/{phase}/{stream}/{repo}"

    def prompt(self, phase: str, stream: str) -> str:
        return f"{self.base}/prompts/{phase}/{stream}.md"

    def log(self, phase: str, stream: str) -> str:
        return f"{self.base}/panes/{phase}/{stream}.log"

    def env(self, phase: str, stream: str) -> str:
        """The stream's pane environment file on the host (0600; its pane sources it)."""
        return f"{self.base}/agents/{phase}/{stream}.env"

    def events(self, phase: str, stream: str) -> str:
        """The stream's agent events file on the host (written by its agent's hooks)."""
        return f"{self.base}/agents/{phase}/{stream}.events"

    @property
    def events_script(self) -> str:
        """coditect's stdlib-only event recorder, copied to the host."""
        return f"{self.base}/bin/events.py"


def remote_streams(manifest: Manifest) -> dict[str, list[Stream]]:
    """The streams of each host that has any, in terminal order."""
    out: dict[str, list[Stream]] = {}
    for stream in ordered_streams(manifest):
        if stream.host is not None:
            out.setdefault(stream.host, []).append(stream)
    return out


def _project_name(manifest: Manifest, project: Project) -> str:
    from coditect_cli.services.session import project_name

    return project_name(manifest, project)


def _names(project: Project, manifest: Manifest) -> tuple[str, str]:
    """The phase's session name and the name it had before it carried the root's hash."""
    from coditect_cli.domain.launch import legacy_session_name
    from coditect_cli.services.session import phase_session_name

    return phase_session_name(manifest, project), legacy_session_name(
        _project_name(manifest, project), manifest.phase
    )


def _find(
    rows: Sequence[PaneState], project: Project, manifest: Manifest, lay: RemoteLayout
) -> tuple[str, list[PaneState]]:
    """The phase's session on the host of ``lay`` among its panes ``rows``, and the session's panes (see
    :func:`coditect_cli.services.session.find_session`: a legacy-named one counts when it started in the
    project's directory on the host)."""
    from coditect_cli.services.session import find_session

    name, legacy = _names(project, manifest)
    return find_session(rows, name, legacy, lay.base, local=False)


def layout(manifest: Manifest, project: Project, host_name: str) -> RemoteLayout:
    """The layout of ``host_name`` (a manifest error when it is not in ``hosts:``)."""
    try:
        host = manifest.host(host_name)
    except KeyError:
        known = ", ".join(h.name for h in manifest.hosts) or "none"
        raise UsageError(f"unknown host {host_name!r} (hosts: {known})") from None
    return RemoteLayout(host, _project_name(manifest, project))


def server(common: Path, lay: RemoteLayout) -> RemoteTmux:
    """The tmux server of the project on the host of ``lay``."""
    return RemoteTmux(connection(common, lay.host), lay.socket, lay)


# ----------------------------------------------------------------------------------------------- setup

_SETUP_FUNCTIONS = r"""set -eu
umask 022
command -v git >/dev/null 2>&1 || { echo "coditect: git is not installed on this host" >&2; exit 3; }
clone() {  # URL DIR
  if [ ! -d "$2/.git" ]; then
    mkdir -p "$(dirname "$2")"
    git clone --quiet --no-checkout "$1" "$2"
    echo "cloned $2"
  fi
  git -C "$2" fetch --quiet --prune origin
  git -C "$2" config extensions.worktreeConfig true
}
worktree() {  # CLONE DIR BRANCH
  if [ ! -e "$2/.git" ]; then
    mkdir -p "$(dirname "$2")"
    if git -C "$1" show-ref --verify --quiet "refs/heads/$3"; then
      git -C "$1" worktree add --quiet "$2" "$3"
    else
      git -C "$1" worktree add --quiet --track -b "$3" "$2" "origin/$3"
    fi
    echo "worktree $2"
  fi
}
"""


_WRITER = r"""import base64, json, os, subprocess, sys
spec = json.loads(base64.b64decode(sys.stdin.readline()))
def write(path, mode, text):
    data = text.encode()
    try:
        with open(path, "rb") as fh:
            if fh.read() == data and os.stat(path).st_mode & 0o777 == mode:
                return False
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path + ".tmp"):
        os.unlink(path + ".tmp")
    with os.fdopen(os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as fh:
        fh.write(data)
    os.chmod(path + ".tmp", mode)
    os.replace(path + ".tmp", path)
    return True
for path, (mode, text) in spec["files"].items():
    write(path, mode, text)
for folder in spec["dirs"]:
    os.makedirs(folder, exist_ok=True)
for tree, files in spec["hooks"].items():
    with open(os.path.join(tree, ".git")) as fh:
        gitdir = os.path.join(tree, fh.read().split(":", 1)[1].strip())
    hooks = os.path.join(gitdir, spec["hooks_dir"])
    changed = [write(os.path.join(hooks, name), mode, text) for name, (mode, text) in files.items()]
    try:
        with open(os.path.join(gitdir, "config.worktree")) as fh:
            known = ("hookspath = " + hooks).lower() in fh.read().lower()
    except OSError:
        known = False
    if any(changed) or not known:
        subprocess.run(["git", "-C", tree, "config", "--worktree", "core.hooksPath", hooks], check=True)
"""


def _write_lines(
    files: dict[str, tuple[int, str]] | None = None,
    dirs: Sequence[str] = (),
    hooks: dict[str, dict[str, tuple[int, str]]] | None = None,
) -> list[str]:
    """Shell lines writing ``files`` (path -> mode, text), making ``dirs`` and installing each worktree's guard
    ``hooks`` (worktree -> name -> mode, text; core.hooksPath set) with ONE ``python3`` on the host: a file
    whose content and mode are right already is left alone, so a second setup writes nothing."""
    import json

    from coditect_cli.services.setup import HOOKS_DIR

    spec = {"files": files or {}, "dirs": list(dirs), "hooks": hooks or {}, "hooks_dir": HOOKS_DIR}
    payload = base64.b64encode(json.dumps(spec).encode()).decode()
    program = base64.b64encode(_WRITER.encode()).decode()
    # The data (env files hold secrets) reaches python's stdin through the shell's built-in printf: it is on no
    # process's command line and has no size limit. The program itself is small and holds nothing secret.
    return [
        f"printf '%s\\n' {payload} | python3 -I -S -c \"import base64; exec(base64.b64decode('{program}'))\""
    ]


def _origin_urls(project: Project, manifest: Manifest) -> dict[str, str]:
    from coditect_cli.adapters import proc

    urls: dict[str, str] = {}
    for repo in manifest.repositories:
        path = (project.root / repo.path).resolve()
        done = proc.run(["git", "-C", str(path), "remote", "get-url", "origin"], check=False)
        url = done.stdout.strip()
        if done.returncode != 0 or not url:
            raise UnavailableError(
                f"repository {repo.id!r} has no origin: remote hosts get their work only through origin",
                hint=f"add one: git -C {path} remote add origin URL",
            )
        if "://" not in url and ":" not in url.split("/")[0] and not url.startswith("/"):
            url = str((path / url).resolve())  # a relative path: the host needs it absolute
        urls[repo.id] = url
    return urls


@dataclass
class HostSetup:
    """What setting up one host did: the lines its script printed (clones and worktrees created)."""

    host: str
    streams: list[str]
    done: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"host": self.host, "streams": self.streams, "done": self.done, "error": self.error}


def setup_script(project: Project, manifest: Manifest, lay: RemoteLayout, streams: Sequence[Stream]) -> str:
    """The shell script (run by ``sh -s`` on the host) cloning, creating the worktrees and their guards."""
    from coditect_cli.domain.guard import CHAIN_RECORD, hook_files
    from coditect_cli.domain.manifest import RepoId, StreamId

    urls = _origin_urls(project, manifest)
    lines = [_SETUP_FUNCTIONS]
    repos = sorted({w.repo for s in streams for w in s.work})
    for repo in repos:
        lines.append(f"clone {shlex.quote(urls[repo])} {shlex.quote(lay.clone(repo))}")
    hooks: dict[str, dict[str, tuple[int, str]]] = {}
    for stream in streams:
        for work in stream.work:
            clone = lay.clone(work.repo)
            path = lay.worktree(manifest.phase, stream.id, work.repo)
            branch = manifest.feature_branch(stream, work)
            lines.append(f"worktree {shlex.quote(clone)} {shlex.quote(path)} {shlex.quote(branch)}")
            files = hook_files(manifest, StreamId(stream.id), RepoId(work.repo), f"{clone}/.git/hooks")
            hooks[path] = {n: (0o644 if n == CHAIN_RECORD else 0o755, t) for n, t in files.items()}
    lines += _write_lines(hooks=hooks)
    return "\n".join(lines) + "\n"


def setup_hosts(project: Project, manifest: Manifest, common: Path) -> list[HostSetup]:
    """Set up every host's streams (clone or reuse, worktrees, guards): one SSH call per host.

    A host that cannot be reached is reported (``error``), the others are still set up.
    """
    out: list[HostSetup] = []
    for name, streams in remote_streams(manifest).items():
        lay = layout(manifest, project, name)
        result = HostSetup(name, [s.id for s in streams])
        try:
            done = connection(common, lay.host).run(
                ["sh", "-s"], input=setup_script(project, manifest, lay, streams), timeout=600
            )
            result.done = done.stdout.splitlines()
        except UnavailableError as exc:
            result.error = exc.message
        except CommandFailed as exc:
            result.error = f"setup failed on host {name}: {exc.stderr.strip()}"
        out.append(result)
    return out


# ----------------------------------------------------------------------------------------------- launch


@dataclass
class HostPanes:
    """The panes of one host's streams, their screens and their agents' events, or why they could not be
    read."""

    host: str
    streams: list[str]
    tmux: RemoteTmux
    rows: dict[str, PaneState] = field(default_factory=dict)
    unreachable: str | None = None
    screens: dict[str, str] = field(default_factory=dict)  # pane id -> its screen
    events: dict[str, list[AgentEvent]] = field(default_factory=dict)  # stream -> its agent's events


_MARK = "\x1fcoditect-remote "
"""The line starting each section of :func:`snapshot_script`'s output."""

_SNAPSHOT_SCRIPT = r"""T() {{ tmux -u -L {socket} "$@"; }}
M={mark}
command -v tmux >/dev/null 2>&1 || {{ echo "coditect: tmux is not installed on this host" >&2; exit 3; }}
listing=$(T run-shell true \; list-panes -a -F {format} 2>&1); rc=$?
printf '%s\n' "${{M}}panes $rc" "$listing"
set --
for row in $(T list-panes -s -t ={session} -F '#{{pane_id}},#{{pane_dead}}' 2>/dev/null ||
             T list-panes -s -t ={legacy} -F '#{{pane_id}},#{{pane_dead}}' 2>/dev/null); do
  [ $# -gt 0 ] && set -- "$@" \;
  if [ "${{row#*,}}" = 1 ]; then set -- "$@" capture-pane -p -S -50 -t "${{row%,*}}"
  else set -- "$@" capture-pane -p -t "${{row%,*}}"; fi
  set -- "$@" \; display-message -p -t "${{row%,*}}" {capture_mark}'#{{pane_id}}'
done
printf '%s\n' "${{M}}screens"
[ $# -eq 0 ] || T "$@" 2>/dev/null
printf '%s\n' "${{M}}events"
tail -c {tail} {events} /dev/null 2>/dev/null
exit 0
"""


def snapshot_script(lay: RemoteLayout, phase: str, names: tuple[str, str], streams: Sequence[str]) -> str:
    """The shell script reading, in one SSH call, the host's panes (``list-panes -a``), the screens of the
    session's panes (``names``: the session's name and its legacy one, used when the first does not run; one
    tmux process) and the tail of each stream's agent events file."""
    from coditect_cli.adapters.tmux import CAPTURE_MARK, PANE_FORMAT
    from coditect_cli.agents.events import TAIL_BYTES

    return _SNAPSHOT_SCRIPT.format(
        socket=shlex.quote(lay.socket),
        mark=shlex.quote(_MARK),
        format=shlex.quote(PANE_FORMAT),
        session=shlex.quote(names[0]),
        legacy=shlex.quote(names[1]),
        capture_mark=shlex.quote(CAPTURE_MARK),
        tail=TAIL_BYTES,
        # One tail for every file (with /dev/null there are always two: each gets its "==> FILE <==" header).
        events=" ".join(shlex.quote(lay.events(phase, st)) for st in streams),
    )


def parse_snapshot(
    entry: HostPanes,
    lay: RemoteLayout,
    phase: str,
    output: str,
    find: Callable[[list[PaneState]], tuple[str, list[PaneState]]],
) -> None:
    """Fill ``entry`` from :func:`snapshot_script`'s ``output``; ``find`` picks the session's panes."""
    from coditect_cli.adapters.tmux import CAPTURE_MARK, NO_SERVER, parse_panes
    from coditect_cli.agents.events import TAIL_BYTES, parse_events

    sections: list[tuple[str, list[str]]] = []
    for line in output.split("\n"):
        if line.startswith(_MARK):
            sections.append((line.removeprefix(_MARK), []))
        elif sections:
            sections[-1][1].append(line)
    for head, lines in sections:
        kind, _, rest = head.partition(" ")
        if kind == "panes":
            text = "\n".join(lines)
            if rest != "0":
                if any(marker in text for marker in NO_SERVER):
                    continue
                entry.unreachable = f"tmux failed on host {entry.host}: {text.strip()}"
                return
            entry.rows = panes_by_stream(find(parse_panes(text))[1])
        elif kind == "screens":
            current: list[str] = []
            for line in lines:
                if line.startswith(CAPTURE_MARK):
                    entry.screens[line.removeprefix(CAPTURE_MARK)] = "\n".join(current)
                    current = []
                else:
                    current.append(line)
        elif kind == "events":
            files = {f"==> {lay.events(phase, st)} <==": st for st in entry.streams}
            stream: str | None = None
            tails: dict[str, list[str]] = {}
            for line in lines:
                if line.startswith("==> ") and line.endswith(" <=="):
                    stream = files.get(line)
                    if stream is not None:
                        tails[stream] = []
                elif stream is not None:
                    tails[stream].append(line)
            for stream_id, tail in tails.items():
                text = "\n".join(tail)
                # A tail as long as tail's limit started inside the file: its first line may be cut (the
                # recorder writes ASCII JSON, so characters are bytes).
                entry.events[stream_id] = parse_events(text, cut=len(text.rstrip("\n")) + 1 >= TAIL_BYTES)


def read_host(
    project: Project, manifest: Manifest, common: Path, name: str, streams: Sequence[str]
) -> HostPanes:
    """Host ``name``'s panes of the phase's session, their screens and ``streams``' agent events, in ONE SSH
    call (one shell script, :func:`snapshot_script`); ``unreachable`` says why they could not be read."""
    lay = layout(manifest, project, name)
    entry = HostPanes(name, list(streams), server(common, lay))
    try:
        entry.tmux.invocations += 1
        done = entry.tmux.host.run(
            ["sh", "-s"],
            input=snapshot_script(lay, manifest.phase, _names(project, manifest), streams),
            check=False,
            timeout=60,
        )
    except UnavailableError as exc:
        entry.unreachable = exc.message
        return entry
    if done.returncode != 0:
        entry.unreachable = f"cannot read host {name}: {done.stderr.strip()}"
        return entry
    parse_snapshot(entry, lay, manifest.phase, done.stdout, lambda rows: _find(rows, project, manifest, lay))
    return entry


def host_panes(project: Project, manifest: Manifest, common: Path) -> list[HostPanes]:
    """Every host's panes of the phase's session, their screens and their streams' agent events: ONE SSH call
    per host (:func:`read_host`), the hosts read in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    by_host = [(name, [s.id for s in streams]) for name, streams in remote_streams(manifest).items()]

    def read(item: tuple[str, list[str]]) -> HostPanes:
        return read_host(project, manifest, common, item[0], item[1])

    if len(by_host) > 1:
        with ThreadPoolExecutor(max_workers=min(8, len(by_host))) as pool:
            return list(pool.map(read, by_host))
    return [read(item) for item in by_host]


def remote_spec(
    project: Project,
    manifest: Manifest,
    lay: RemoteLayout,
    streams: Sequence[Stream],
    session: str,
    day: int,
    *,
    agent: str | None = None,
    resume: frozenset[str] = frozenset(),
) -> tuple[SessionSpec, dict[str, tuple[str, str]]]:
    """The host's session (its streams' panes, with the host's paths) and each stream's prompt (``agent``:
    the ``--agent`` template every pane runs instead of its stream's agent)."""
    from coditect_cli.agents import profile_for
    from coditect_cli.agents.base import AgentContext
    from coditect_cli.domain.manifest import options_for_run

    phase = manifest.phase
    paths = {f"{s.id}@{w.repo}": Path(lay.worktree(phase, s.id, w.repo)) for s in streams for w in s.work}
    panes: list[PaneSpec] = []
    prompts: dict[str, tuple[str, str]] = {}  # stream (or stream:file) -> (path on the host, text)
    for stream in streams:
        worktrees = stream_worktrees(manifest, stream, paths)
        prompt = lay.prompt(phase, stream.id)
        prompts[stream.id] = (prompt, render_prompt(manifest, stream, worktrees, day))
        profile = profile_for(options_for_run(agent) if agent is not None else stream.agent_options)
        ctx = AgentContext(
            stream=stream.id,
            prompt_file=Path(prompt),
            worktrees=tuple(worktrees),
            gates=tuple(g.run for g in stream.gates),
            login_shell=REMOTE_SHELL,
            phase=phase,
            root=None,
            hook=("python3", "-I", "-S", lay.events_script, lay.events(phase, stream.id)),
            settings_file=Path(f"{lay.base}/agents/{phase}/{stream.id}.settings.json"),
            resume=stream.id in resume,
        )
        for path, text in profile.files(ctx).items():
            prompts[f"{stream.id}:{path}"] = (str(path), text)
        panes.append(
            PaneSpec(
                stream=stream.id,
                title=pane_title(stream, worktrees),
                cwd=worktrees[0].path,
                env=(
                    *pane_env(manifest, stream, worktrees, Path(prompt), None),
                    # Where an agent without hooks of its own (the scripted one) reports its turns.
                    ("CODITECT_EVENTS_FILE", lay.events(phase, stream.id)),
                ),
                agent=profile.command(ctx),
                log=Path(lay.log(phase, stream.id)),
                env_file=Path(lay.env(phase, stream.id)),
            )
        )
    layout_kind = choose_layout(manifest.layout, len(panes))
    return SessionSpec(session, phase, layout_kind, tuple(panes)), prompts


@dataclass
class HostLaunch:
    """What launching one host's streams did."""

    host: str
    started: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    error: str | None = None
    tmux_invocations: int = 0
    ssh_calls: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "host": self.host,
            "started": self.started,
            "running": self.running,
            "error": self.error,
            "tmux_invocations": self.tmux_invocations,
            "ssh_calls": self.ssh_calls,
        }


def _prepare_lines(lay: RemoteLayout, spec: SessionSpec, prompts: dict[str, tuple[str, str]]) -> list[str]:
    """Write the prompts, the panes' environment files and the event recorder, make the log folders, name the
    agent programs missing on the host, then list the host's panes (after a marker line). Everything travels
    in the script on the connection's stdin: no value is on a command line, here or on the host."""
    from coditect_cli.adapters.tmux import PANE_FORMAT
    from coditect_cli.agents import events

    files = {path: (0o644, text) for path, text in prompts.values()}
    for pane in spec.panes:
        if pane.env_file is not None:  # created 0600 from the start, never readable by others
            files[str(pane.env_file)] = (0o600, env_file_text(dict(pane.env)))
    files[lay.events_script] = (0o644, Path(events.__file__).read_text(encoding="utf-8"))
    dirs = [f"{lay.base}/agents/{spec.phase}", *(str(p.log.parent) for p in spec.panes if p.log is not None)]
    lines = _write_lines(files, sorted(set(dirs)))
    for pane in spec.panes:
        program = pane.agent.program
        if program is not None:
            q = shlex.quote(program)
            lines.append(f"command -v {q} >/dev/null 2>&1 || echo missing {pane.stream} {q}")
    listing = shlex.join(["tmux", "-u", "-L", lay.socket, "list-panes", "-a", "-F", PANE_FORMAT])
    lines.append("command -v tmux >/dev/null 2>&1 || { echo missing - tmux; exit 0; }")
    lines.append(f"printf '%s\\n' {shlex.quote(_MARK + 'panes')}")
    lines.append(f"{listing} 2>/dev/null || true")
    return lines


def _start_script(tmux: RemoteTmux, units: Sequence[Unit], starts: dict[str, tuple[str, str]]) -> str:
    """Mark a new start in each started stream's events file (``starts``: stream -> agent kind), then run
    the tmux commands creating its pane (in as few tmux processes as tmux's message size allows)."""
    import json
    import time

    from coditect_cli.adapters.tmux import pack
    from coditect_cli.agents.events import LAUNCH

    lines = ["set -eu"]
    now = round(time.time(), 3)
    for events, kind in starts.values():
        line = json.dumps({"t": now, "event": LAUNCH, "kind": kind}, separators=(",", ":"))
        lines.append(f"printf '%s\\n' {shlex.quote(line)} >> {shlex.quote(events)}")
    lines += [shlex.join(tmux.argv(group)) for group in pack(units)]
    return "\n".join(lines) + "\n"


def _launch_host(
    project: Project,
    manifest: Manifest,
    common: Path,
    name: str,
    streams: Sequence[Stream],
    day: int,
    agent: str | None,
) -> HostLaunch:
    """Set up (idempotent) and start one host's missing panes: two SSH calls (the setup with the prompts
    and the pane listing; the panes' creation), one when nothing is missing."""
    from coditect_cli.adapters.tmux import add_pane_units, parse_panes, session_units
    from coditect_cli.agents import profile_for
    from coditect_cli.domain.manifest import options_for_run

    lay = layout(manifest, project, name)
    result = HostLaunch(name)
    ssh = connection(common, lay.host)
    spec, prompts = remote_spec(
        project, manifest, lay, streams, _names(project, manifest)[0], day, agent=agent
    )
    tmux = RemoteTmux(ssh, lay.socket, lay)
    before = ssh.calls
    script = (
        setup_script(project, manifest, lay, streams) + "\n".join(_prepare_lines(lay, spec, prompts)) + "\n"
    )
    try:
        done = ssh.run(["sh", "-s"], input=script, timeout=600)
        head, _, listing = done.stdout.partition(_MARK + "panes\n")
        checked = head.splitlines()
        missing_programs = [line.split(" ", 2)[1:] for line in checked if line.startswith("missing ")]
        if missing_programs:
            result.error = "not installed on host {}: {}".format(
                name,
                ", ".join(f"{prog} (stream {st})" if st != "-" else prog for st, prog in missing_programs),
            )
            return result
        session, rows = _find(parse_panes(listing), project, manifest, lay)
        spec = dataclasses.replace(spec, name=session)  # the legacy name when that one runs there
        existing = panes_by_stream(rows)
        missing = [p for p in spec.panes if p.stream not in existing]
        if missing:
            units = add_pane_units(spec, missing, existing) if existing else session_units(spec)
            kinds = {
                s.id: profile_for(options_for_run(agent) if agent is not None else s.agent_options).kind
                for s in streams
            }
            starts = {p.stream: (lay.events(manifest.phase, p.stream), kinds[p.stream]) for p in missing}
            tmux.invocations += 1
            ssh.run(["sh", "-s"], input=_start_script(tmux, units, starts), timeout=120)
        result.started = [p.stream for p in missing]
        result.running = [s for s in existing if not existing[s].dead]
    except UnavailableError as exc:
        result.error = exc.message
    except CommandFailed as exc:
        result.error = f"launch failed on host {name}: {exc.stderr.strip()}"
    finally:
        result.tmux_invocations = tmux.invocations
        result.ssh_calls = ssh.calls - before
    return result


def launch_hosts(
    project: Project,
    manifest: Manifest,
    common: Path,
    *,
    day: int | None = None,
    agent: str | None = None,
) -> list[HostLaunch]:
    """Set up (idempotent) and start every host's missing panes; running panes are left alone. The hosts are
    launched in parallel, each with two SSH calls (:func:`_launch_host`). An unreachable host or a missing
    program is reported for that host only."""
    from concurrent.futures import ThreadPoolExecutor

    the_day = day if day is not None else phase_day(manifest.schedule, _dt.date.today())
    by_host = remote_streams(manifest)
    if not by_host:
        return []

    def one(item: tuple[str, list[Stream]]) -> HostLaunch:
        return _launch_host(project, manifest, common, item[0], item[1], the_day, agent)

    with ThreadPoolExecutor(max_workers=min(8, len(by_host))) as pool:
        return list(pool.map(one, by_host.items()))


def stop_hosts(project: Project, manifest: Manifest, common: Path) -> dict[str, str]:
    """End the session on every host; each host's outcome (``stopped``, ``not running`` or the error)."""
    out: dict[str, str] = {}
    for name in remote_streams(manifest):
        lay = layout(manifest, project, name)
        tmux = server(common, lay)
        try:
            session, rows = _find(tmux.panes(), project, manifest, lay)
            if rows:
                tmux.kill_session(session)
                out[name] = "stopped"
            else:
                out[name] = "not running"
        except (UnavailableError, CommandFailed) as exc:
            out[name] = exc.message
    return out


def servers_of(project: Project, manifest: Manifest, common: Path) -> dict[str, RemoteTmux]:
    """Each remote stream's tmux server."""
    out: dict[str, RemoteTmux] = {}
    for name, streams in remote_streams(manifest).items():
        tmux = server(common, layout(manifest, project, name))
        for stream in streams:
            out[stream.id] = tmux
    return out


# ----------------------------------------------------------------------------------------------- move


def _work_checks(lay: RemoteLayout, manifest: Manifest, stream: Stream, prefix: str, *, fetch: bool) -> str:
    """Shell lines printing what ``stream``'s worktrees on the host hold that origin does not: ``PREFIX
    REPO uncommitted: ...`` and ``PREFIX REPO unpushed: ...`` (``exists PREFIX REPO PATH`` for each)."""
    lines = []
    for work in stream.work:
        path = lay.worktree(manifest.phase, stream.id, work.repo)
        q, tag = shlex.quote(path), shlex.quote(f"{prefix}{work.repo}")
        log = f"--format={prefix}{work.repo} unpushed: %h %s"
        lines.append(
            f"if [ -e {q}/.git ]; then "
            f"printf 'exists %s %s\\n' {tag} {q}; "
            + (f"git -C {q} fetch --quiet origin || true; " if fetch else "")
            + f"git -C {q} status --porcelain --untracked-files=all | while IFS= read -r l; do "
            f"printf '%s uncommitted: %s\\n' {tag} \"$l\"; done; "
            f"git -C {q} log {shlex.quote(log)} '@{{upstream}}..HEAD' 2>/dev/null "
            f"|| git -C {q} log {shlex.quote(log)} HEAD --not --remotes; fi"
        )
    return "\n".join(lines)


def remote_work(project: Project, manifest: Manifest, common: Path, stream: Stream) -> list[str]:
    """What the stream's worktrees on its host hold that origin does not (uncommitted or unpushed).

    Raises :class:`RefusedError` when the host cannot be read (its work cannot be known to be pushed).
    """
    assert stream.host is not None
    lay = layout(manifest, project, stream.host)
    try:
        done = connection(common, lay.host).run(
            ["sh", "-c", _work_checks(lay, manifest, stream, "", fetch=True)]
        )
    except (UnavailableError, CommandFailed) as exc:
        raise RefusedError(
            f"cannot read stream {stream.id}'s worktrees on host {stream.host} ({exc.message}); not moved: "
            "unpushed commits there would be lost",
            hint="bring the host back (or recover its work) and try again",
        ) from None
    return [line for line in done.stdout.splitlines() if not line.startswith("exists ")]


@dataclass(frozen=True)
class RemoteWorktrees:
    """The remote streams' worktrees that exist (host -> paths) and their work origin lacks."""

    existing: dict[str, list[str]]
    pending: list[str]  # "host HOST: STREAM REPO uncommitted|unpushed: ..."


def remote_worktrees(project: Project, manifest: Manifest, common: Path) -> RemoteWorktrees:
    """Every host's worktrees of the phase and what they hold that origin does not: one SSH call per host.

    Raises :class:`RefusedError` (exit 4) when a host cannot be read: its worktrees' work is unknown.
    """
    existing: dict[str, list[str]] = {}
    pending: list[str] = []
    for name, streams in remote_streams(manifest).items():
        lay = layout(manifest, project, name)
        script = "\n".join(_work_checks(lay, manifest, st, f"{st.id} ", fetch=False) for st in streams)
        try:
            done = connection(common, lay.host).run(["sh", "-c", script])
        except (UnavailableError, CommandFailed) as exc:
            raise RefusedError(
                f"cannot read the worktrees on host {name} ({exc.message}); nothing was stopped or removed: "
                "work there that is not on origin would be lost",
                hint="bring the host back and try again, or stop without --remove-worktrees",
            ) from None
        for line in done.stdout.splitlines():
            if line.startswith("exists "):
                existing.setdefault(name, []).append(line.split(" ", 3)[3])
            elif line.strip():
                pending.append(f"host {name}: {line}")
    return RemoteWorktrees(existing, pending)


def remove_remote_worktrees(
    project: Project, manifest: Manifest, common: Path, existing: dict[str, list[str]]
) -> dict[str, list[str]]:
    """Remove the worktrees ``existing`` names on each host (``git worktree remove``, which refuses one that
    changed meanwhile, then ``prune``): one SSH call per host. The paths removed, by host."""
    by_path = {
        lay_path: (name, lay.clone(work.repo))
        for name, streams in remote_streams(manifest).items()
        for lay in [layout(manifest, project, name)]
        for st in streams
        for work in st.work
        for lay_path in [lay.worktree(manifest.phase, st.id, work.repo)]
    }
    removed: dict[str, list[str]] = {}
    for name, paths in existing.items():
        lines = ["set -e"]
        clones = sorted({by_path[p][1] for p in paths})
        for path in paths:
            lines.append(f"git -C {shlex.quote(by_path[path][1])} worktree remove {shlex.quote(path)}")
        lines += [f"git -C {shlex.quote(c)} worktree prune" for c in clones]
        host = layout(manifest, project, name).host
        connection(common, host).run(["sh", "-c", "\n".join(lines)])
        removed[name] = list(paths)
    return removed


def restart_remote(project: Project, s: Any, stream: Stream, *, force: bool) -> Any:
    """``streams restart`` of a stream on a host: its pane there started again (resuming the agent's last
    conversation where the kind can and one was recorded). Three SSH calls: read, prepare, respawn."""
    from coditect_cli.agents import profile_for
    from coditect_cli.services.launch import RestartResult, restartable

    assert stream.host is not None
    manifest: Manifest = s.manifest
    entry = read_host(project, manifest, s.common, stream.host, [stream.id])
    if entry.unreachable is not None:
        raise UnavailableError(f"stream {stream.id}: {entry.unreachable}")
    where = f" on host {stream.host}"
    row = restartable(entry.rows.get(stream.id), stream.id, s.name, manifest.phase, force, where)
    had_session = any(e.session for e in entry.events.get(stream.id, []))
    lay = layout(manifest, project, stream.host)
    day = phase_day(manifest.schedule, _dt.date.today())
    resume = frozenset({stream.id}) if had_session else frozenset()
    spec, prompts = remote_spec(project, manifest, lay, [stream], s.name, day, resume=resume)
    pane = spec.panes[0]
    profile = profile_for(stream.agent_options)
    common: Path = s.common
    checked = connection(common, lay.host).run(
        ["sh", "-s"], input=_SETUP_FUNCTIONS + "\n".join(_prepare_lines(lay, spec, prompts)) + "\n"
    )
    head = checked.stdout.partition(_MARK + "panes\n")[0]
    missing = [line.split(" ", 2)[2] for line in head.splitlines() if line.startswith("missing ")]
    if missing:
        raise UnavailableError(f"not installed on host {stream.host}: {', '.join(missing)}")
    starts = {stream.id: (lay.events(manifest.phase, stream.id), profile.kind)}
    tmux = server(common, lay)
    connection(common, lay.host).run(
        ["sh", "-s"], input=_start_script(tmux, [respawn_commands(row.pane_id, pane)], starts)
    )
    resumed = had_session and profile.can_resume
    if resumed:
        note = f"resumed the last conversation on host {stream.host}"
    elif profile.can_resume:
        note = f"started fresh with the prompt on host {stream.host}: no earlier conversation was recorded"
    else:
        note = f"started fresh with the prompt on host {stream.host}: {profile.kind} cannot resume a conversation"
    return RestartResult(
        manifest.phase, stream.id, row.pane_id, profile.kind, resumed, pane.agent.display, note
    )


@dataclass
class MoveResult:
    """``streams move``: the stream, where it was and where it goes."""

    phase: str
    stream: str
    source: str
    target: str
    manifest: str
    stopped: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "phase": self.phase,
            "stream": self.stream,
            "from": self.source,
            "to": self.target,
            "manifest": self.manifest,
            "stopped": self.stopped,
        }


LOCAL = "local"


def move(project: Project, phase: str | None, stream_id: str, target: str) -> MoveResult:
    """Move ``stream_id`` to host ``target`` (``local``: this machine) once its work is all on origin.

    Refuses (:class:`RefusedError`, exit 4) while its worktrees on its current host hold uncommitted or
    unpushed work, or cannot be read. Then ends its pane there and rewrites ``host:`` in the manifest; the
    next ``streams launch`` sets it up on the target from its branch on origin.
    """
    from coditect_cli.services.manifest import load
    from coditect_cli.services.setup import project_common_dir
    from coditect_cli.services.streams import read_work

    loaded = load(project, phase)
    manifest = loaded.manifest
    common = project_common_dir(project)
    try:
        stream = manifest.stream(stream_id)
    except KeyError:
        raise UsageError(f"no stream {stream_id!r} in phase {manifest.phase}") from None
    if target != LOCAL:
        layout(manifest, project, target)  # unknown host: usage error
    source = stream.host or LOCAL
    if source == target:
        raise UsageError(f"stream {stream_id} already runs on {target}")
    if stream.host is not None:
        pending = remote_work(project, manifest, common, stream)
    else:
        from coditect_cli.domain.plan import worktree_path

        pending = []
        for pair in (p for p in manifest.pairs() if p.stream.id == stream_id):
            w = read_work(pair.repo.id, worktree_path(manifest, project.root, pair), list_commits=True)
            pending += [f"{w.repo} uncommitted: {c}" for c in w.changes]
            pending += [f"{w.repo} unpushed: {c}" for c in w.commits]
    if pending:
        raise RefusedError(
            f"stream {stream_id} has work on {source} that is not on origin; not moved:\n  "
            + "\n  ".join(pending),
            problems=tuple(Problem("unpushed", line, Location(source)) for line in pending),
            hint="commit and push it from there, then move again",
        )
    stopped = False
    from coditect_cli.services.session import phase_session

    if stream.host is not None:
        lay = layout(manifest, project, stream.host)
        tmux: Tmux = server(common, lay)
        found = _find(tmux.panes(), project, manifest, lay)[1]
    else:
        s = phase_session(project, manifest.phase, None)
        tmux = Tmux(s.socket)
        found = s.locate(tmux)[1]
    rows = panes_by_stream(found)
    if stream_id in rows:
        tmux.run(["kill-pane", "-t", rows[stream_id].pane_id])
        stopped = True
    manifest_file = loaded.source.path
    _rewrite_host(manifest_file, loaded, manifest.streams.index(stream), None if target == LOCAL else target)
    return MoveResult(manifest.phase, stream_id, source, target, str(manifest_file), stopped)


def _rewrite_host(file: Path, loaded: Any, index: int, host: str | None) -> None:
    """Set (or remove) ``host:`` of the stream at ``index`` in the manifest file, keeping everything else."""
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    stream = loaded.manifest.streams[index]
    if stream.host is not None:
        loc = loaded.source.locate("streams", index, "host")
        i = loc.line - 1
        if host is None:
            del lines[i]
        else:
            head = lines[i].split(":", 1)[0]
            lines[i] = f"{head}: {host}\n"
    elif host is not None:
        loc = loaded.source.locate("streams", index, "id")
        i = loc.line - 1
        indent = len(lines[i]) - len(lines[i].lstrip(" -"))
        lines.insert(i + 1, " " * indent + f"host: {host}\n")
    file.write_text("".join(lines), encoding="utf-8")


# ----------------------------------------------------------------------------------------------- doctor

MIN_FREE_KB = 2 * 1024 * 1024  # below 2 GiB free in the work directory: a warning

_DOCTOR_SCRIPT = r"""
echo "git=$(git --version 2>/dev/null)"
echo "tmux=$(tmux -V 2>/dev/null)"
echo "python3=$(python3 --version 2>&1 | grep -i python)"
d={workdir}
while [ ! -d "$d" ]; do d=$(dirname "$d"); done
echo "disk=$(df -Pk "$d" | tail -1 | awk '{{print $4}}')"
for p in {programs}; do command -v "$p" >/dev/null 2>&1 && echo "agent=$p ok" || echo "agent=$p missing"; done
"""


def doctor_checks(project: Project, manifest: Manifest, common: Path) -> list[Any]:
    """One ``doctor`` check per host of the phase: reachable, git and tmux versions, python3 (the guard),
    the agent programs of its streams, free disk in its work directory. One SSH call per host."""
    from coditect_cli.services.doctor import MIN_GIT, Check, parse_version

    out: list[Check] = []
    phase = manifest.phase
    by_host = remote_streams(manifest)
    for host in manifest.hosts:
        subject = f"{phase}/host {host.name}"
        lay = RemoteLayout(host, _project_name(manifest, project))
        streams = by_host.get(host.name, [])
        spec, _ = remote_spec(project, manifest, lay, streams, "doctor", 1)
        programs = sorted({p.agent.program for p in spec.panes if p.agent.program})
        script = _DOCTOR_SCRIPT.format(
            workdir=shlex.quote(host.workdir), programs=" ".join(shlex.quote(p) for p in programs)
        )
        try:
            done = connection(common, host).run(["sh", "-c", script], check=False, timeout=60)
        except UnavailableError as exc:
            out.append(Check("host", subject, "fail", exc.message, exc.hint, phase))
            continue
        facts: dict[str, str] = {}
        missing: list[str] = []
        for line in done.stdout.splitlines():
            key, _, value = line.partition("=")
            if key == "agent" and value.endswith(" missing"):
                missing.append(value.removesuffix(" missing"))
            elif key != "agent":
                facts[key] = value.strip()
        problems: list[str] = []
        status = "ok"
        git = parse_version(facts.get("git", ""))
        if git is None:
            problems.append("git is not installed")
            status = "fail"
        elif git[:2] < MIN_GIT:
            problems.append(f"git {'.'.join(map(str, git))} is older than {'.'.join(map(str, MIN_GIT))}")
            status = "fail"
        if not facts.get("tmux"):
            problems.append("tmux is not installed")
            status = "fail"
        if not facts.get("python3"):
            problems.append("python3 is missing (the ownership guard's hook needs it)")
            status = "fail" if status == "fail" else "warn"
        if missing:
            problems.append(f"agent programs not found: {', '.join(missing)}")
            status = "fail" if status == "fail" else "warn"
        free = int(facts["disk"]) if facts.get("disk", "").isdigit() else None
        if free is not None and free < MIN_FREE_KB:
            problems.append(f"only {free // 1024} MiB free in {host.workdir}")
            status = "fail" if status == "fail" else "warn"
        shown = f"{host.ssh}: {facts.get('git') or 'no git'}, {facts.get('tmux') or 'no tmux'}"
        if free is not None:
            shown += f", {free / 1024 / 1024:.1f} GiB free"
        detail = shown + ("; " + "; ".join(problems) if problems else "")
        hint = "install what is missing on the host" if problems else None
        out.append(Check("host", subject, status, detail, hint, phase))  # type: ignore[arg-type]
    return out
