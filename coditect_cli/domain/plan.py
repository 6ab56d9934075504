"""Plan, then execute: the steps ``streams setup`` takes, as typed values.

``build_plan`` compares the manifest with each repository's current state and lists only what is missing,
so a second run plans nothing and a run that stopped half-way plans the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from coditect_cli.domain.codeowners import CodeownersFile
from coditect_cli.domain.manifest import Manifest, RepoId, StreamId
from coditect_cli.domain.manifest import worktree_path as worktree_path  # its home before; kept for importers
from coditect_cli.domain.repo import RepoState

CODEOWNERS_PATH = ".github/CODEOWNERS"


def blob_id(content: bytes) -> str:
    """The object id git gives ``content`` as a blob (SHA-1 repositories)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class Step:
    """One action of a plan. Subclasses name their kind and describe themselves in one line."""

    repo: RepoId

    @property
    def kind(self) -> str:
        return type(self).__name__

    def describe(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"kind": self.kind}
        for key, value in asdict(self).items():
            data[key] = str(value) if isinstance(value, Path) else value
        data["description"] = self.describe()
        return data


@dataclass(frozen=True)
class CreateBranch(Step):
    """Create ``branch`` at ``start_point`` (a local branch or ``origin/<name>``)."""

    branch: str
    start_point: str
    track: bool = False

    def describe(self) -> str:
        how = "tracking" if self.track else "from"
        return f"create branch {self.branch} {how} {self.start_point}"


@dataclass(frozen=True)
class WriteCodeowners(Step):
    """Write ``.github/CODEOWNERS`` for this repository and commit it on ``branch``."""

    branch: str
    path: str = CODEOWNERS_PATH
    rules: int = 0
    update: bool = False

    def describe(self) -> str:
        verb = "update" if self.update else "write"
        return f"{verb} {self.path} ({self.rules} rules) and commit it on {self.branch}"


@dataclass(frozen=True)
class ExcludePath(Step):
    """Add ``pattern`` to the repository's ``info/exclude`` so worktrees stay out of ``git status``."""

    pattern: str

    def describe(self) -> str:
        return f"add {self.pattern} to info/exclude"


@dataclass(frozen=True)
class AddWorktree(Step):
    """Check ``branch`` out in a new worktree at ``path`` for ``stream``."""

    stream: StreamId
    branch: str
    path: Path
    shown: str = ""

    def describe(self) -> str:
        return f"add worktree {self.shown or self.path} on {self.branch} for stream {self.stream}"


@dataclass(frozen=True)
class SwitchWorktree(Step):
    """Move the existing worktree at ``path`` from ``current`` to ``branch`` (refused when it is dirty)."""

    stream: StreamId
    branch: str
    path: Path
    current: str | None
    shown: str = ""

    def describe(self) -> str:
        return f"switch worktree {self.shown or self.path} from {self.current or 'a detached HEAD'} to {self.branch}"


@dataclass(frozen=True)
class InstallGuard(Step):
    """Install the ownership pre-commit hook in ``stream``'s worktree at ``path``."""

    stream: StreamId
    path: Path
    shown: str = ""

    def describe(self) -> str:
        return f"install the ownership guard for stream {self.stream} in {self.shown or self.path}"


@dataclass(frozen=True)
class Push(Step):
    """Push ``branches`` to origin, setting upstream tracking."""

    branches: tuple[str, ...]

    def describe(self) -> str:
        return f"push {', '.join(self.branches)} to origin with upstream tracking"


@dataclass(frozen=True)
class Plan:
    """The steps of one setup run, in order, plus what already exists."""

    phase: str
    steps: tuple[Step, ...]
    present: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.steps

    def by_repo(self) -> dict[str, list[Step]]:
        return steps_by_repo(self.steps)


def steps_by_repo(steps: Iterable[Step]) -> dict[str, list[Step]]:
    """``steps`` grouped by repository id, in first-seen order (each group keeps the steps' order)."""
    out: dict[str, list[Step]] = {}
    for step in steps:
        out.setdefault(step.repo, []).append(step)
    return out


def build_plan(
    manifest: Manifest,
    root: Path,
    states: dict[RepoId, RepoState],
    *,
    push: bool = True,
    codeowners: dict[RepoId, CodeownersFile] | None = None,
    guards_current: frozenset[Path] = frozenset(),
) -> Plan:
    """Every step needed to bring the repositories in ``states`` to the manifest's layout.

    ``codeowners`` are the files to commit on each integration branch (compared by blob id with what is
    there); ``guards_current`` are the worktrees whose ownership hook is already up to date.
    """
    steps: list[Step] = []
    pushes: list[Step] = []  # after every local step of every repository: a bad origin blocks nothing local
    present: list[str] = []
    develop = manifest.branches.develop
    base = manifest.branches.base
    integration = manifest.integration_branch
    pairs = manifest.pairs()
    root_repo = next((r.id for r in manifest.repositories if Path(r.path) == Path(".")), None)
    exclude_pattern = "/" + manifest.worktrees.strip("/") + "/"

    for repo in manifest.repositories:
        rid = RepoId(repo.id)
        state = states[rid]
        to_push: list[str] = []

        def ensure(
            branch: str,
            parent: str,
            *,
            rid: RepoId = rid,
            state: RepoState = state,
            to_push: list[str] = to_push,
        ) -> None:
            if branch in state.local:
                present.append(f"{rid}: branch {branch}")
                if state.origin_url and branch not in state.remote:
                    to_push.append(branch)
                return
            if branch in state.remote:
                steps.append(CreateBranch(rid, branch, f"origin/{branch}", track=True))
                return
            start = state.start_point(parent) or parent
            steps.append(CreateBranch(rid, branch, start))
            if state.origin_url:
                to_push.append(branch)

        ensure(develop, base)
        ensure(integration, develop)
        wanted = (codeowners or {}).get(rid)
        if wanted is not None:
            start = state.start_point(integration)
            current = state.blobs.get(f"{start}:{CODEOWNERS_PATH}") if start else None
            if current != blob_id(wanted.text.encode()):
                steps.append(
                    WriteCodeowners(rid, integration, rules=wanted.rules, update=current is not None)
                )
            else:
                present.append(f"{rid}: {CODEOWNERS_PATH} on {integration}")
        if rid == root_repo and exclude_pattern not in state.excluded:
            steps.append(ExcludePath(rid, exclude_pattern))
        checked_out = {b: p for p, b in state.worktrees.items() if b}
        for pair in (p for p in pairs if p.repo.id == repo.id):
            ensure(pair.branch, integration)
            if pair.stream.host is not None:
                continue  # its worktree is on its host (coditect_cli.services.hosts); here only the branch
            path = worktree_path(manifest, root, pair)
            shown = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            if checked_out.get(pair.branch) == path:
                present.append(f"{rid}: worktree {path}")
                if path in guards_current:
                    present.append(f"{rid}: ownership guard in {path}")
                else:
                    steps.append(InstallGuard(rid, StreamId(pair.stream.id), path, shown))
            elif path in state.worktrees:
                steps.append(
                    SwitchWorktree(rid, StreamId(pair.stream.id), pair.branch, path, state.worktrees[path])
                )
                steps.append(InstallGuard(rid, StreamId(pair.stream.id), path, shown))
            else:
                steps.append(AddWorktree(rid, StreamId(pair.stream.id), pair.branch, path, shown))
                steps.append(InstallGuard(rid, StreamId(pair.stream.id), path, shown))
        if push and to_push:
            pushes.append(Push(rid, tuple(to_push)))
    return Plan(manifest.phase, tuple(steps + pushes), tuple(present))
