"""``coditect doctor``: is this machine and this project ready for coditect? Read-only, fast, offline.

Every check is a :class:`Check` with a status: ``ok``; ``warn`` (works, but something is missing or will
surprise you); ``fail`` (a command will not work until it is fixed); ``skip`` (not checkable here: outside a
project, or something it needs failed first). A check that is not ok says what to do in ``hint``.

Nothing here changes anything: git is only asked to read (the process runner pins ``GIT_OPTIONAL_LOCKS=0``),
nothing is fetched or contacted over the network, the state store is opened read-only (``immutable`` when no
writer has it open, so not even its ``-wal``/``-shm`` files appear), and the phase lock is only probed with a
shared ``flock`` released at once. The checks reuse what the commands themselves run: the manifest
service's validation, setup's own plan, ``forge: auto``'s choice, the launch's agent resolution.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from coditect_cli.errors import CoditectError, Problem
from coditect_cli.project import WORKSTREAMS, Project

if TYPE_CHECKING:
    from coditect_cli.domain.loader import Loaded
    from coditect_cli.domain.manifest import Manifest, Pair, RepoId
    from coditect_cli.domain.plan import Plan
    from coditect_cli.domain.repo import RepoState
    from coditect_cli.domain.validate import ValidationReport
    from coditect_cli.forge.base import BranchRules
    from coditect_cli.forge.select import Token

Status = Literal["ok", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail", "skip")

MIN_PYTHON = (3, 10)
MIN_GIT = (2, 38)  # `git merge-tree --write-tree`: conflicts, checkpoints, the local forge's merges
BATCH_GIT = (2, 39)  # `git merge-tree --stdin`: conflicts runs all the merges of a repository in one process

MACHINE = "machine"
PROJECT = "project"

# What git leaves in a worktree's git dir while an operation waits for the user.
_IN_PROGRESS = (
    ("MERGE_HEAD", "a merge"),
    ("rebase-merge", "a rebase"),
    ("rebase-apply", "a rebase or `git am`"),
    ("CHERRY_PICK_HEAD", "a cherry-pick"),
    ("REVERT_HEAD", "a revert"),
    ("BISECT_LOG", "a bisect"),
)


@dataclass(frozen=True)
class Check:
    """One finding of doctor: what was checked (``check``, ``subject``), its status and a one-line detail."""

    check: str  # the kind, stable: python, git, tmux, manifest, repository, origin, worktree, ...
    subject: str  # what it is about: a program, a file, a phase, ``phase/repo``, ``phase/stream/repo``
    status: Status
    detail: str
    hint: str | None = None  # what to do, when not ok
    group: str = MACHINE  # MACHINE, PROJECT or the phase
    problems: tuple[Problem, ...] = ()  # findings with their file:line (a manifest's validation)

    def envelope_problems(self) -> tuple[Problem, ...]:
        """The envelope's problems for this check: its own findings, else one line when it is not ok."""
        if self.problems:
            return self.problems
        if self.status not in ("warn", "fail"):
            return ()
        message = f"{self.subject}: {self.detail}" + (f" ({self.hint})" if self.hint else "")
        return (
            Problem(
                f"doctor.{self.check}", message, severity="error" if self.status == "fail" else "warning"
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "subject": self.subject,
            "group": self.group,
            "status": self.status,
            "detail": self.detail,
            "hint": self.hint,
            "problems": [p.to_json() for p in self.problems],
        }


@dataclass(frozen=True)
class _Row:
    """Builds the checks of one kind about one subject: ``row("warn", detail, hint)``."""

    check: str
    subject: str
    group: str = MACHINE

    def __call__(
        self, status: Status, detail: str, hint: str | None = None, problems: tuple[Problem, ...] = ()
    ) -> Check:
        return Check(self.check, self.subject, status, detail, hint, self.group, problems)


@dataclass(frozen=True)
class DoctorReport:
    """Every check doctor ran, in order: the machine, the project, then each phase."""

    project: Path | None
    phases: tuple[str, ...]
    checks: tuple[Check, ...]

    @property
    def failed(self) -> bool:
        return any(c.status == "fail" for c in self.checks)

    def counts(self) -> dict[str, int]:
        found = Counter(c.status for c in self.checks)
        return {status: found.get(status, 0) for status in STATUSES}

    def problems(self) -> tuple[Problem, ...]:
        return tuple(p for c in self.checks for p in c.envelope_problems())

    def to_json(self) -> dict[str, Any]:
        return {
            "project": str(self.project) if self.project is not None else None,
            "phases": list(self.phases),
            "summary": self.counts(),
            "checks": [c.to_json() for c in self.checks],
        }


# ------------------------------------------------------------------------------------------------ machine


def parse_version(text: str) -> tuple[int, ...] | None:
    """The first ``X.Y[.Z]`` in ``text`` (``git version 2.39.5`` → (2, 39, 5)); None when there is none."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(part) for part in match.groups() if part is not None) if match else None


def _dotted(version: Sequence[int]) -> str:
    return ".".join(str(v) for v in version)


def _version_output(program: str, *args: str) -> str | None:
    """What ``program args`` printed, or None when it cannot be run or fails."""
    from coditect_cli.adapters import proc

    try:
        done = proc.run([program, *args], check=False, timeout=10)
    except CoditectError:
        return None
    return (done.stdout.strip() or done.stderr.strip()) if done.returncode == 0 else None


def python_check(version: Sequence[int] | None = None) -> Check:
    """The running Python: 3.10 or newer."""
    row = _Row("python", "python")
    found = tuple(version or sys.version_info[:3])
    shown = f"Python {_dotted(found)} ({sys.executable})"
    if found[:2] < MIN_PYTHON:
        return row(
            "fail",
            f"{shown}; coditect needs {_dotted(MIN_PYTHON)} or newer",
            f"reinstall coditect with Python {_dotted(MIN_PYTHON)} or newer",
        )
    return row("ok", shown)


def git_check() -> Check:
    """git on PATH, at least 2.38 (``merge-tree --write-tree``); below 2.39 a warning (no ``--stdin``)."""
    row = _Row("git", "git")
    path = shutil.which("git")
    if path is None:
        return row("fail", "git is not installed or not on PATH", "install git 2.39 or newer")
    out = _version_output("git", "--version")
    version = parse_version(out or "")
    if version is None:
        return row(
            "warn",
            f"{path}: cannot read its version ({out or '`git --version` failed'})",
            "check `git --version`",
        )
    shown = f"git {_dotted(version)} ({path})"
    if version[:2] < MIN_GIT:
        return row(
            "fail",
            f"{shown}: `git merge-tree --write-tree` needs git {_dotted(MIN_GIT)} or newer",
            "upgrade git: conflicts, checkpoints and PR merges depend on it",
        )
    if version[:2] < BATCH_GIT:
        return row(
            "warn",
            f"{shown}: `git merge-tree --stdin` needs git {_dotted(BATCH_GIT)}",
            "upgrade git: `coditect conflicts` batches its merges with --stdin",
        )
    return row("ok", shown)


def tmux_check() -> Check:
    """tmux on PATH: ``streams launch`` needs it; without it only the demo runs (its agents headless)."""
    row = _Row("tmux", "tmux")
    path = shutil.which("tmux")
    if path is None:
        return row(
            "warn",
            "tmux is not installed: `streams launch` cannot open panes (`coditect demo` runs its agents headless)",
            "install tmux 3.x for one pane per stream",
        )
    out = _version_output("tmux", "-V")
    if out is None:
        return row("warn", f"{path}: `tmux -V` failed", "check that tmux runs on this machine")
    return row("ok", f"{out} ({path})")


TokenFor = Callable[[str], "Token | None"]


def token_finder() -> TokenFor:
    """:func:`~coditect_cli.forge.select.find_token`, looked up once per host for the whole run."""
    from coditect_cli.forge.select import find_token

    found: dict[str, Token | None] = {}

    def token_for(host: str) -> Token | None:
        if host not in found:
            found[host] = find_token(host)
        return found[host]

    return token_for


def token_check(token_for: TokenFor) -> Check:
    """Whether a GitHub token is found and where (a variable's name, or ``gh auth token``): never its value."""
    from coditect_cli.forge.select import GITHUB_HOST, TOKEN_VARIABLES

    row = _Row("github-token", GITHUB_HOST)
    token = token_for(GITHUB_HOST)
    if token is None:
        return row(
            "ok",
            f"no token ({', '.join(TOKEN_VARIABLES)} unset, no `gh auth token`): needed only for the GitHub forge",
        )
    return row("ok", f"token found in {token.source} (value not shown)")


# ------------------------------------------------------------------------------------------------ project


def is_project(root: Path) -> bool:
    """Whether ``root`` looks like a project: it has ``workstreams/`` or is a git work tree."""
    return (root / WORKSTREAMS).is_dir() or (root / ".git").exists()


def store_check(common: Path, display: Callable[[Path], str] = str) -> Check:
    """The state store opens (read-only) and its schema is the one this coditect writes."""
    import sqlite3

    from coditect_cli.state.store import DB_NAME, MIGRATIONS, STATE_DIR

    path = common / STATE_DIR / DB_NAME
    row = _Row("store", display(path), PROJECT)
    current = len(MIGRATIONS)
    if not path.exists():
        return row("ok", "not created yet: the first command that changes anything creates it")
    # No -wal file: nobody has it open for writing, and `immutable` reads it without creating the -wal and
    # -shm files a read-only connection to a WAL database leaves behind.
    live = path.with_name(path.name + "-wal").exists()
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?{'mode=ro' if live else 'immutable=1'}", uri=True, timeout=2)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = int(
                conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            )
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return row(
            "fail",
            f"cannot read the state store: {exc}",
            "move it aside; a new one is created (the local forge's PRs and reviews, and the journal, are in it)",
        )
    if version > current:
        return row(
            "fail",
            f"schema version {version}, but this coditect knows {current}: a newer coditect wrote it",
            "upgrade coditect",
        )
    if version < current:
        return row("warn", f"schema version {version} of {current}: the next command that writes migrates it")
    return row("ok", f"schema version {version} (current), {tables} tables")


def lock_check(common: Path, phase: str) -> Check:
    """The phase lock: free, held by a running command, or a holder record a dead command left behind."""
    from coditect_cli.state.lock import holder_path, lock_held, lock_path, read_holder

    row = _Row("lock", phase, phase)
    lock_file = lock_path(common, phase)
    holder = read_holder(common, phase)
    held = lock_held(lock_file) if lock_file.exists() else False
    find_it = f"find the process with `fuser -v {lock_file}`"
    if holder is None:
        return (
            row("warn", "locked by a process that did not record itself", find_it)
            if held
            else row("ok", "not locked")
        )
    if held and holder.is_alive() is not False:
        return row(
            "warn", f"locked by {holder.describe()}: commands that change this phase wait", "let it finish"
        )
    if held:
        return row(
            "warn", f"locked, but its recorded holder {holder.describe()} is no longer running", find_it
        )
    return row(
        "warn",
        f"stale lock: {holder.describe()} is gone and left its record (harmless: the lock is free)",
        f"remove {holder_path(common, phase)} to silence this",
    )


def run_check(common: Path, phase: str) -> Check:
    """An interrupted ``checkpoint`` or ``merge-phase`` (an open journal; read-only), with its resume command."""
    import json
    import sqlite3

    from coditect_cli.services.journal import interrupted_text
    from coditect_cli.state.journal_records import JournalInfo
    from coditect_cli.state.lock import lock_held, lock_path
    from coditect_cli.state.store import DB_NAME, STATE_DIR

    row = _Row("run", phase, phase)
    path = common / STATE_DIR / DB_NAME
    ok = row("ok", "no interrupted checkpoint or merge-phase")
    if not path.exists():
        return ok
    live = path.with_name(path.name + "-wal").exists()
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?{'mode=ro' if live else 'immutable=1'}", uri=True, timeout=2)
        try:
            rows = conn.execute(
                "SELECT id, run_id, command, phase, subject, args, state, started, finished FROM journals "
                "WHERE phase = ? AND state = 'open'",
                [phase],
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return ok  # no journal table yet (an older store), or unreadable: the store check says which
    if not rows:
        return ok
    r = rows[0]
    info = JournalInfo(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8])
    running = lock_held(lock_path(common, phase))
    message, hint = interrupted_text(info, running)
    return row("ok" if running else "warn", message, hint)


def _manifest_check(
    project: Project, phase: str, fallback: str
) -> tuple[Loaded | None, ValidationReport | None, Check]:
    """Load and validate one manifest: errors fail, warnings warn; every finding keeps its file:line."""
    from coditect_cli.services import manifest as manifest_svc

    try:
        loaded = manifest_svc.load(project, phase)
    except CoditectError as exc:
        first = f"; first: {exc.problems[0].render()}" if exc.problems else ""
        hint = exc.hint or "fix the manifest (`coditect validate` lists every problem)"
        row = _Row("manifest", fallback, fallback)
        return None, None, row("fail", exc.message.splitlines()[0] + first, hint, exc.problems)
    name = loaded.manifest.phase
    row = _Row("manifest", name, name)
    report = manifest_svc.check(project, str(loaded.source.path))
    if report.errors:
        detail = f"{report.manifest}: {len(report.errors)} error(s); first: {report.errors[0].render()}"
        hint = f"fix them (`coditect validate {name}` lists every problem)"
        return loaded, report, row("fail", detail, hint, report.problems)
    valid = f"{report.manifest}: valid ({report.streams} streams, {report.pairs} stream/repository pairs)"
    if report.warnings:
        detail = f"{valid}, {len(report.warnings)} warning(s)"
        return loaded, report, row("warn", detail, f"see `coditect validate {name}`", report.warnings)
    return loaded, report, row("ok", valid)


def _local_origin(url: str, repo: Path) -> Path | None:
    """The directory a remote URL names when it is a path on this machine (None for a network URL)."""
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    if "://" in url or re.match(r"^[^/]+:", url):
        return None
    path = Path(os.path.expanduser(url))
    return path if path.is_absolute() else repo / path


def _origin_check(phase: str, repo_id: str, state: RepoState) -> Check:
    """origin is configured, and when it is a path on this machine, that it exists. Never contacted."""
    from coditect_cli.adapters.proc import redact

    row = _Row("origin", f"{phase}/{repo_id}", phase)
    url = state.origin_url
    if url is None:
        return row(
            "warn",
            "no `origin` remote: setup cannot push, and PRs use the local forge",
            f"`git -C {state.path} remote add origin URL`",
        )
    local = _local_origin(url, state.path)
    if local is not None and not local.exists():
        return row(
            "fail",
            f"origin {redact(url)} does not exist on this machine",
            f"`git -C {state.path} remote set-url origin URL`",
        )
    return row("ok", f"origin {redact(url)} ({'on this machine' if local is not None else 'not contacted'})")


def _branches_check(manifest: Manifest, repo_id: str, state: RepoState) -> Check:
    """develop and the integration branch exist (locally, or on origin for setup to track)."""
    phase = manifest.phase
    row = _Row("branches", f"{phase}/{repo_id}", phase)
    develop, base = manifest.branches.develop, manifest.branches.base
    wanted = (develop, manifest.integration_branch)
    missing = [b for b in wanted if not state.has_branch(b)]
    remote_only = [b for b in wanted if b not in state.local and b in state.remote]
    setup = f"run `coditect streams setup {phase}`"
    if develop in missing and not state.has_branch(base):
        return row(
            "fail",
            f"neither {develop} nor its base {base} exists: setup has nothing to start from",
            f"create {base} (or set `branches.base` in the manifest)",
        )
    if missing:
        return row("warn", f"missing: {', '.join(missing)}", setup)
    if remote_only:
        return row(
            "warn",
            f"only on origin: {', '.join(remote_only)}",
            f"{setup} (it creates local tracking branches)",
        )
    unpushed = [b for b in wanted if b not in state.remote] if state.origin_url else []
    return row(
        "ok",
        f"{', '.join(wanted)} present" + (f" (not on origin yet: {', '.join(unpushed)})" if unpushed else ""),
    )


def _setup_check(phase: str, plan: Plan | None, why_not: str | None) -> Check:
    """What ``streams setup`` would still do (setup's own plan): nothing means the phase is set up."""
    row = _Row("setup", phase, phase)
    if plan is None:
        return row("skip", f"not checked: {why_not}")
    if plan.empty:
        return row("ok", "set up: branches, CODEOWNERS, worktrees, guards and pushes are all done")
    kinds = ", ".join(f"{n} {kind}" for kind, n in Counter(step.kind for step in plan.steps).items())
    return row(
        "warn",
        f"setup incomplete: {len(plan.steps)} step(s) pending ({kinds})",
        f"run `coditect streams setup {phase}` (`coditect plan {phase}` lists the steps)",
    )


def _worktree_checks(
    manifest: Manifest, root: Path, states: dict[RepoId, RepoState], plan: Plan | None
) -> list[Check]:
    """Each stream's worktree: present, on its branch, not mid-operation, its ownership guard installed."""
    from coditect_cli.domain.manifest import RepoId
    from coditect_cli.domain.plan import InstallGuard, worktree_path

    phase = manifest.phase
    pairs = [p for p in manifest.pairs() if RepoId(p.repo.id) in states]
    paths = {p.key: worktree_path(manifest, root, p) for p in pairs}
    known = [p for p in pairs if paths[p.key] in states[RepoId(p.repo.id)].worktrees or paths[p.key].exists()]
    if pairs and not known:
        row = _Row("worktree", phase, phase)
        return [
            row(
                "warn",
                f"none of the {len(pairs)} worktrees exists yet",
                f"run `coditect streams setup {phase}`",
            )
        ]
    stale_guards = {s.path for s in plan.steps if isinstance(s, InstallGuard)} if plan is not None else set()
    return [
        _worktree_check(
            phase, pair, paths[pair.key], states[RepoId(pair.repo.id)], stale_guards, plan is not None
        )
        for pair in pairs
    ]


def _worktree_check(
    phase: str, pair: Pair, path: Path, state: RepoState, stale_guards: set[Path], compared: bool
) -> Check:
    from coditect_cli.domain.guard import GUARD_SCRIPT, HOOK_MARKER
    from coditect_cli.services.setup import HOOKS_DIR, worktree_git_dir

    row = _Row("worktree", f"{phase}/{pair.stream.id}/{pair.repo.id}", phase)
    setup = f"run `coditect streams setup {phase}`"
    if path in state.prunable:
        return row("warn", f"{path} is registered, but its directory is gone", f"{setup} (adds it again)")
    if not path.exists():
        return row("warn", f"{path} does not exist", setup)
    gitdir = worktree_git_dir(path)
    if path not in state.worktrees:
        if gitdir is not None and not gitdir.is_dir():
            return row(
                "fail",
                f"{path} is broken: its git dir {gitdir} is gone",
                f"move it away (keep any work), then {setup}",
            )
        return row(
            "fail",
            f"{path} is not a worktree of {state.path}: setup will not overwrite it",
            f"move it away, then {setup}",
        )
    busy = next((what for marker, what in _IN_PROGRESS if gitdir and (gitdir / marker).exists()), None)
    if busy is not None:
        return row(
            "warn", f"{busy} is in progress in {path}", f"finish or abort it there (`git -C {path} status`)"
        )
    branch = state.worktrees[path]
    if branch != pair.branch:
        on = f"on {branch}" if branch else "on a detached HEAD"
        return row("warn", f"{on}, not {pair.branch}", f"{setup} (switches it when it is clean)")
    hooks = gitdir / HOOKS_DIR if gitdir is not None else None
    missing = [
        name
        for name in (GUARD_SCRIPT, "pre-commit", "reference-transaction")
        if hooks is None
        or not (hooks / name).is_file()
        or HOOK_MARKER not in (hooks / name).read_text(encoding="utf-8")
    ]
    if missing:
        detail = "is not installed" if len(missing) == 3 else f"is incomplete ({', '.join(missing)} missing)"
        return row("warn", f"on {branch}; the ownership guard {detail}", setup)
    if path in stale_guards:
        return row("warn", f"on {branch}; the ownership guard is out of date", setup)
    return row("ok", f"on {branch}, ownership guard installed" + ("" if compared else " (not compared)"))


def _forge_check(manifest: Manifest, states: dict[RepoId, RepoState], token_for: TokenFor) -> Check:
    """The forge each repository uses under the manifest's ``forge`` setting, and why (no network call)."""
    from coditect_cli.forge.select import choose

    phase = manifest.phase
    row = _Row("forge", phase, phase)
    uses: dict[str, list[str]] = {}
    for repo_id, state in states.items():
        try:
            choice = choose(manifest.forge, manifest.forge_url, state.origin_url, token_for, repo=repo_id)
        except CoditectError as exc:
            return row("fail", exc.message, exc.hint)
        if choice.kind == "github" and choice.token is not None:
            how = f"GitHub {choice.api_url} (token from {choice.token.source})"
        else:
            how = f"local forge ({choice.reason or f'forge: {manifest.forge}'})"
        uses.setdefault(how, []).append(repo_id)
    detail = f"forge: {manifest.forge} → " + "; ".join(
        f"{how} for {', '.join(ids)}" for how, ids in uses.items()
    )
    if any("no token found" in how for how in uses):
        return row("warn", detail, "set GH_TOKEN or GITHUB_TOKEN, or run `gh auth login`, to use GitHub")
    return row("ok", detail)


def _github_rules_checks(
    manifest: Manifest, states: dict[RepoId, RepoState], token_for: TokenFor
) -> list[Check]:
    """On GitHub: the protection and rulesets of each repository's integration and target branches (read once
    each), and a warning where the manifest's merge strategy is not allowed there."""
    from dataclasses import replace

    from coditect_cli.forge.base import ForgeRepo
    from coditect_cli.forge.github import GitHubForge, GitHubOptions
    from coditect_cli.forge.select import choose

    out: list[Check] = []
    clients: dict[str, GitHubForge] = {}
    strategy = manifest.merge.strategy
    try:
        for repo_id, state in states.items():
            try:
                choice = choose(manifest.forge, manifest.forge_url, state.origin_url, token_for, repo=repo_id)
            except CoditectError:
                continue  # the forge check reports it
            if (
                choice.kind != "github"
                or choice.token is None
                or choice.remote is None
                or choice.api_url is None
            ):
                continue
            if choice.api_url not in clients:
                # A health check, not a command: one attempt of at most 5 s per request.
                quick = replace(GitHubOptions.from_env(), retries=0, timeout=5)
                clients[choice.api_url] = GitHubForge(choice.api_url, choice.token.secret, quick)
            forge = clients[choice.api_url]
            fr = ForgeRepo(repo_id, Path("."), state.origin_url, choice.remote.slug)
            for branch in dict.fromkeys((manifest.integration_branch, manifest.merge.target)):
                row = _Row("github-rules", f"{repo_id} {branch}", manifest.phase)
                try:
                    rules = forge.branch_rules(fr, branch)
                except CoditectError as exc:
                    out.append(row("warn", f"cannot read the rules of {branch}: {exc.message}", exc.hint))
                    continue
                out.append(_rules_row(row, rules, strategy))
    finally:
        for client in clients.values():
            client.close()
    return out


def _rules_row(row: _Row, rules: BranchRules, strategy: str) -> Check:
    parts: list[str] = []
    if not rules.known:
        parts.append("no protection or rulesets could be read")
    if rules.required_checks:
        strict = " (branch must be up to date)" if rules.strict else ""
        parts.append(f"required checks: {', '.join(rules.required_checks)}{strict}")
    if rules.required_approvals or rules.code_owner_reviews:
        owners = " incl. code owners" if rules.code_owner_reviews else ""
        parts.append(f"{rules.required_approvals} approving review(s){owners}")
    if rules.merge_queue:
        parts.append("merge queue (merges are enqueued)")
    if rules.linear_history:
        parts.append("linear history")
    if rules.merge_methods is not None:
        parts.append(f"merge methods: {', '.join(rules.merge_methods) or 'none'}")
    detail = "; ".join(parts) or "not protected"
    detail += f" [read: {', '.join(rules.read) or 'nothing'}]"
    hint = "; ".join(rules.notes) or None
    if strategy in ("squash", "merge", "rebase") and not rules.allows(strategy):  # type: ignore[arg-type]
        return row(
            "warn",
            f"the manifest's merge strategy {strategy!r} is not allowed on {rules.branch}: {detail}",
            "change `merge.strategy` in the manifest to an allowed method, or the repository's settings",
        )
    return row("warn" if rules.notes else "ok", detail, hint)


def _agents_check(project: Project, manifest: Manifest, common: Path | None) -> Check:
    """Every stream's agent program (streams running ``shell`` aside) is on PATH, as ``streams launch`` sees it."""
    from coditect_cli.services.launch import missing_programs, prepare

    phase = manifest.phase
    row = _Row("agents", phase, phase)
    try:
        prepared = prepare(project, manifest, common or project.root / ".git")
    except CoditectError as exc:
        return row("fail", exc.message, exc.hint)
    panes = [p for p in prepared.spec.panes if p.agent.kind != "shell"]
    if not panes:
        return row("ok", "every stream runs a shell")
    missing: dict[str, list[str]] = {}
    for stream, program in missing_programs(panes):
        missing.setdefault(program, []).append(stream)
    if missing:
        listed = "; ".join(f"`{program}` (streams {', '.join(ids)})" for program, ids in missing.items())
        return row(
            "warn",
            f"not on PATH: {listed}; `streams launch` refuses to start them",
            "install them, change the streams' `run:`, or launch with --agent TEMPLATE",
        )
    programs = sorted({p.agent.program for p in panes if p.agent.program})
    unknown = [p.stream for p in panes if p.agent.program is None]
    note = f"; not checkable (a shell builtin or variable first): {', '.join(unknown)}" if unknown else ""
    return row("ok", f"found on PATH: {', '.join(programs) or 'none'}{note}")


def _claude_trust_check(project: Project, manifest: Manifest, common: Path | None) -> Check | None:
    """Whether Claude Code would stop this phase's Claude Code panes at a dialog (trust, the API key, its first
    run): read-only, from its user configuration. None when no stream runs Claude Code."""
    from coditect_cli.adapters import claude_config
    from coditect_cli.services.launch import prepare, trust_paths

    row = _Row("agent-trust", f"{manifest.phase}/claude", manifest.phase)
    try:
        prepared = prepare(project, manifest, common or project.root / ".git")
    except CoditectError:
        return None  # the agents check reports it
    claude = [s for s, kind in prepared.kinds.items() if kind == "claude"]
    if not claude:
        return None
    try:
        state = claude_config.trust_state(
            trust_paths(project, manifest, claude), os.environ.get("ANTHROPIC_API_KEY")
        )
    except CoditectError as exc:
        return row("fail", exc.message, exc.hint)
    if not state.onboarded:
        return row("warn", f"Claude Code was never set up by this user ({state.path})", "run `claude` once")
    missing = []
    if not state.trusted:
        missing.append(f"{len(state.untrusted)} folder(s) not trusted (e.g. {state.untrusted[0]})")
    if state.key_approved is False:
        missing.append("ANTHROPIC_API_KEY not approved")
    if missing:
        return row(
            "warn",
            f"Claude Code would ask before working: {'; '.join(missing)} ({state.path})",
            f"launch with `coditect streams launch {manifest.phase} --trust` or set `trust: true`",
        )
    key = "; ANTHROPIC_API_KEY approved" if state.key_approved else ""
    return row("ok", f"project trusted in {state.path}{key}")


@dataclass
class _PhaseChecks:
    """The checks of the phases of one project, appended to ``checks`` in order."""

    project: Project
    common: Path | None
    token_for: TokenFor
    checks: list[Check] = field(default_factory=list)

    def run(self, phase: str, fallback: str) -> str:
        """Every check of one phase (a name or a manifest's path); returns the phase's name."""
        loaded, report, manifest_check = _manifest_check(self.project, phase, fallback)
        self.checks.append(manifest_check)
        if loaded is None:
            return fallback
        manifest = loaded.manifest
        states = self._repositories(loaded)
        plan, why_not = self._plan(loaded, report, states)
        self.checks.extend(_branches_check(manifest, repo_id, state) for repo_id, state in states.items())
        self.checks.append(_setup_check(manifest.phase, plan, why_not))
        self.checks.extend(_worktree_checks(manifest, self.project.root, states, plan))
        if self.common is not None:
            self.checks.append(lock_check(self.common, manifest.phase))
            self.checks.append(run_check(self.common, manifest.phase))
        self.checks.append(_forge_check(manifest, states, self.token_for))
        self.checks.extend(_github_rules_checks(manifest, states, self.token_for))
        self.checks.append(_agents_check(self.project, manifest, self.common))
        if manifest.hosts and self.common is not None:
            from coditect_cli.services.hosts import doctor_checks

            self.checks.extend(doctor_checks(self.project, manifest, self.common))
        trust = _claude_trust_check(self.project, manifest, self.common)
        if trust is not None:
            self.checks.append(trust)
        return manifest.phase

    def _repositories(self, loaded: Loaded) -> dict[RepoId, RepoState]:
        """Each repository exists and is a git repository: read its state (a few git calls each)."""
        from coditect_cli.adapters.git import is_work_tree
        from coditect_cli.domain.manifest import RepoId
        from coditect_cli.services.setup import read_repo_state

        manifest = loaded.manifest
        phase = manifest.phase
        states: dict[RepoId, RepoState] = {}
        for i, repo in enumerate(manifest.repositories):
            row = _Row("repository", f"{phase}/{repo.id}", phase)
            where = loaded.source.locate("repositories", i, "path")
            path = (self.project.root / repo.path).resolve()
            shown = self.project.display(path)
            init = "`git submodule update --init --recursive` for a submodule"
            if not path.is_dir():
                self.checks.append(row("fail", f"{shown} does not exist ({where})", f"restore it, or {init}"))
                continue
            if not is_work_tree(path):
                self.checks.append(row("fail", f"{shown} is not a git repository ({where})", init))
                continue
            try:
                state = read_repo_state(path, manifest)
            except CoditectError as exc:
                self.checks.append(
                    row("fail", f"cannot read {shown}: {exc.message}", f"`git -C {path} status`")
                )
                continue
            states[RepoId(repo.id)] = state
            self.checks.append(row("ok", f"{shown} is a git repository"))
            self.checks.append(_origin_check(phase, repo.id, state))
        return states

    def _plan(
        self, loaded: Loaded, report: ValidationReport | None, states: dict[RepoId, RepoState]
    ) -> tuple[Plan | None, str | None]:
        """Setup's own plan against the states just read (the manifest valid, every repository read)."""
        from coditect_cli.domain.codeowners import generate
        from coditect_cli.services.manifest import Checked, manifest_label
        from coditect_cli.services.setup import Context, compute_plan

        if report is None or report.errors:
            return None, "the manifest has errors"
        if len(states) != len(loaded.manifest.repositories):
            return None, "a repository is missing or unreadable"
        checked = Checked(loaded, report, self.project)
        ctx = Context(checked, states, generate(loaded.manifest, manifest_label(checked)))
        try:
            return compute_plan(ctx), None
        except CoditectError as exc:
            return None, exc.message


def _project_checks(
    project: Project, phase: str | None, token_for: TokenFor
) -> tuple[list[Check], list[str]]:
    """The project root, the state store, then each phase: ``phase``, or every manifest in ``workstreams/``."""
    root = project.root
    shown = project.display(root)
    row = _Row("project", shown, PROJECT)
    if not (root / ".git").exists():
        return [
            row(
                "fail",
                f"{root} has {WORKSTREAMS}/ but is not the top of a git repository (no .git)",
                f"`git init` in {shown}",
            )
        ], []
    from coditect_cli.services.setup import project_common_dir

    checks = [
        row("ok", f"{root}" + ("" if project.workstreams.is_dir() else f" (no {WORKSTREAMS}/ folder yet)"))
    ]
    common: Path | None = None
    try:
        common = project_common_dir(project)
    except CoditectError as exc:
        checks.append(_Row("store", shown, PROJECT)("fail", exc.message))
    else:
        checks.append(store_check(common, project.display))
    phases = _PhaseChecks(project, common, token_for, checks)
    if phase is not None:
        return phases.checks, [phases.run(phase, phase)]
    manifests = project.manifests()
    if not manifests:
        none = _Row("manifest", f"{project.display(project.workstreams)}/", PROJECT)
        checks.append(none("warn", "no manifest: no phase to check", "create one with `coditect init PHASE`"))
        return checks, []
    return phases.checks, [phases.run(str(path), path.stem) for path in manifests]


def diagnose(project: Project, phase: str | None = None) -> DoctorReport:
    """Every check, in order: the machine (Python, git, tmux, GitHub token), the project, then each phase.

    Without ``phase`` every manifest in ``workstreams/`` is checked. Outside a project (no ``workstreams/``
    and no git repository at the root) the project checks are skipped, or fail when ``phase`` was asked for.
    """
    token_for = token_finder()
    git = git_check()
    checks = [python_check(), git, tmux_check(), token_check(token_for)]
    row = _Row("project", project.display(project.root), PROJECT)
    if shutil.which("git") is None:
        checks.append(row("skip", "not checked: git is missing"))
        return DoctorReport(None, (), tuple(checks))
    if not is_project(project.root):
        # Asked about a phase, doctor must not pass: `coditect doctor PHASE && ...` would go on.
        where = f"not inside a project (no {WORKSTREAMS}/ folder, no git repository at {project.root})"
        hint = "run doctor in a project, or pass --root DIR"
        if phase is None:
            checks.append(row("skip", f"{where}: project checks skipped", hint))
        else:
            checks.append(row("fail", f"{where}: phase {phase} cannot be checked", hint))
        return DoctorReport(None, (), tuple(checks))
    found, phases = _project_checks(project, phase, token_for)
    return DoctorReport(project.root, tuple(phases), tuple(checks + found))
