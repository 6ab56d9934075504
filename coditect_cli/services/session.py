"""Where a phase's tmux session lives: its name, its socket, and the files its panes read and write.

The socket a phase was launched on is kept in the state store's ``meta`` table (``tmux.socket:<phase>``,
empty for the default server) so the commands run after ``streams launch`` find it.

Files under ``<git-common-dir>/coditect/`` (shared by every worktree of the project):

- ``prompts/<phase>/<stream>.md``: the prompt each agent reads;
- ``panes/<phase>/<stream>.log``: everything the pane printed (``pipe-pane``); its modification time is the
  pane's last output, which tmux 3.3 does not report per pane;
- ``agents/<phase>/<stream>.events``: what the agent reported about itself (hooks, notify; see
  :mod:`coditect_cli.agents.events`), with ``.held`` (messages wait for it), ``.flush`` (the command
  delivering them), ``.settings.json`` (Claude Code's ``--settings``) and ``.env`` (0600: the pane's whole
  environment, its stream's ``env:`` and what the agent needs from the launching environment included; the
  pane's command sources it, so no value is on a command line) next to it;
- ``cache/worktree-status.json``: each worktree's last ``git status`` and the digest of the state it held for
  (see :mod:`coditect_cli.adapters.worktree_state`); deleting it only costs time.

The session is named ``coditect-<project>-<phase>-<hash>``, the hash being that of the project root's
resolved path: two checkouts (clones, copies) of one project never share a session, so one checkout's
``launch``, ``send`` or ``stop`` never reaches the other's agents. A session of the name used before
(``coditect-<project>-<phase>``, no hash) is still found when its panes started inside this checkout
(:func:`find_session`); one started by another checkout is never touched.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from coditect_cli.domain.launch import PaneState, legacy_session_name, session_name
from coditect_cli.domain.manifest import Manifest
from coditect_cli.errors import UnavailableError
from coditect_cli.project import Project

if TYPE_CHECKING:
    from coditect_cli.adapters.tmux import Tmux

PROMPTS_DIR = "prompts"
LOGS_DIR = "panes"
AGENTS_DIR = "agents"
SOCKET_META = "tmux.socket:{phase}"


def prompt_path(common: Path, phase: str, stream: str) -> Path:
    """Where ``stream``'s prompt file is written."""
    return common / "coditect" / PROMPTS_DIR / phase / f"{stream}.md"


def log_path(common: Path, phase: str, stream: str) -> Path:
    """Where ``stream``'s pane output is logged (``pipe-pane``)."""
    return common / "coditect" / LOGS_DIR / phase / f"{stream}.log"


def agent_file(common: Path, phase: str, stream: str, suffix: str = ".events") -> Path:
    """``stream``'s agent files: ``.events`` (default), ``.held``, ``.flush``, ``.settings.json``, ``.env``."""
    return common / "coditect" / AGENTS_DIR / phase / f"{stream}{suffix}"


def status_cache_path(common: Path) -> Path:
    """Where the worktrees' last ``git status`` results are kept (:func:`coditect_cli.services.streams.read_works`)."""
    return common / "coditect" / "cache" / "worktree-status.json"


def project_name(manifest: Manifest, project: Project) -> str:
    """The project's name: the manifest's ``project``, else the root directory's name."""
    return manifest.project or project.root.name


def project_root_key(project: Project) -> str:
    """The project root as the session name hashes it: resolved (symlinks followed), so every way of
    reaching one checkout gives one name."""
    return str(project.root.resolve())


def phase_session_name(manifest: Manifest, project: Project) -> str:
    """The tmux session of ``manifest``'s phase in this checkout of the project (see the module docstring)."""
    return session_name(project_name(manifest, project), manifest.phase, project_root_key(project))


def find_session(
    rows: Sequence[PaneState], name: str, legacy: str, root: str, *, local: bool = True
) -> tuple[str, list[PaneState]]:
    """The session of a phase among every pane of a tmux server (``rows``) and its panes.

    The session ``name`` when it runs; else a session named ``legacy`` (from before names carried the
    root's hash) when one of its stream panes started inside ``root`` (or, with a tmux that does not report
    where a pane started, works there); else ``name`` with no panes. ``local``: the paths are on this
    machine (symlinks resolved), else on a remote host (compared as written).
    """
    mine = [r for r in rows if r.session == name]
    if mine or legacy == name:
        return name, mine
    old = [r for r in rows if r.session == legacy]
    if any(r.stream and _inside(r.start_path or r.cwd, root, local) for r in old):
        return legacy, old
    return name, []


def _inside(path: str, root: str, local: bool) -> bool:
    """Whether ``path`` is ``root`` or below it."""
    if not path or not root:
        return False
    if local:
        path, root = os.path.realpath(path), os.path.realpath(root)
    else:
        path, root = posixpath.normpath(path), posixpath.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


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


@dataclass(frozen=True)
class PhaseSession:
    """The tmux session of a phase: the manifest it runs, the project's common dir, its name and socket."""

    manifest: Manifest
    common: Path
    name: str
    socket: str | None
    root: str = ""  # the project root (resolved): a legacy-named session is used when it started there
    legacy: str = ""  # the name before it carried the root's hash

    def locate(self, tmux: Tmux) -> tuple[PhaseSession, list[PaneState]]:
        """This session as it runs (under its legacy name when that is the one of this checkout that runs)
        and its panes, in one ``list-panes`` (:func:`find_session`)."""
        name, rows = find_session(tmux.panes(), self.name, self.legacy or self.name, self.root)
        return dataclasses.replace(self, name=name), rows

    def not_running(self) -> UnavailableError:
        """The error for "this session does not run", saying where it was looked for."""
        where = f" on tmux socket {self.socket!r}" if self.socket else " on the default tmux server"
        return UnavailableError(
            f"no tmux session {self.name}{where}",
            hint=f"start it with `coditect streams launch {self.manifest.phase}`"
            + ("" if self.socket else " (or pass --socket NAME if it runs on another server)"),
        )


def phase_session(project: Project, phase: str | None, socket: str | None) -> PhaseSession:
    """The session of ``phase`` (loads its manifest; ``socket`` as for :func:`resolve_socket`)."""
    from coditect_cli.adapters.git import common_dir
    from coditect_cli.services.manifest import load

    manifest = load(project, phase).manifest
    common = common_dir(project.root)  # services.setup's project_common_dir, without importing setup
    return session_of(project, manifest, common, socket)


def session_of(project: Project, manifest: Manifest, common: Path, socket: str | None) -> PhaseSession:
    """The session of ``manifest``'s phase (``socket`` as for :func:`resolve_socket`)."""
    return PhaseSession(
        manifest,
        common,
        phase_session_name(manifest, project),
        resolve_socket(common, manifest.phase, socket),
        project_root_key(project),
        legacy_session_name(project_name(manifest, project), manifest.phase),
    )
