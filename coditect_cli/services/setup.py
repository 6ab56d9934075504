"""``streams setup``: compute the plan against the repositories as they are, then execute it step by step.

Idempotent by construction: the plan lists only what is missing, so a second run has nothing to do and a
run that stopped half-way plans (and does) the rest. Setup never rewrites a branch (it only creates
branches and adds one CODEOWNERS commit on the integration branch) and never touches a worktree with
uncommitted changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from coditect_cli.domain.codeowners import CodeownersFile, generate
from coditect_cli.domain.guard import CHAIN_RECORD, GUARD_SCRIPT, hook_files
from coditect_cli.domain.manifest import Manifest, RepoId, StreamId
from coditect_cli.domain.plan import (
    CODEOWNERS_PATH,
    AddWorktree,
    CreateBranch,
    ExcludePath,
    InstallGuard,
    Plan,
    Push,
    Step,
    SwitchWorktree,
    WriteCodeowners,
    build_plan,
    worktree_path,
)
from coditect_cli.domain.repo import RepoState
from coditect_cli.errors import (
    CoditectError,
    CommandFailed,
    Location,
    Problem,
    RefusedError,
    UnavailableError,
)
from coditect_cli.project import Project
from coditect_cli.services.manifest import Checked, load, load_valid, manifest_label

if TYPE_CHECKING:
    from coditect_cli.services.hosts import HostSetup

HOOKS_DIR = "coditect-hooks"
RefMove = Callable[[str, str, str | None, str | None], None]


@dataclass(frozen=True)
class Context:
    """Everything setup knows before it changes anything."""

    checked: Checked
    states: dict[RepoId, RepoState]
    codeowners: dict[RepoId, CodeownersFile]

    @property
    def manifest(self) -> Manifest:
        return self.checked.loaded.manifest

    @property
    def project(self) -> Project:
        return self.checked.project

    def repo_path(self, repo: RepoId) -> Path:
        return (self.project.root / self.manifest.repository(repo).path).resolve()


@dataclass
class SetupResult:
    """What a setup run planned and did."""

    plan: Plan
    done: list[Step] = field(default_factory=list)
    dry_run: bool = False
    hosts: list[HostSetup] = field(default_factory=list)  # the streams on remote hosts


def worktree_git_dir(worktree: Path) -> Path | None:
    """The private git dir of a linked worktree, read from its ``.git`` file (no git process)."""
    dot_git = worktree / ".git"
    if not dot_git.is_file():
        return None
    text = dot_git.read_text(encoding="utf-8").strip()
    if not text.startswith("gitdir:"):
        return None
    gitdir = Path(text.removeprefix("gitdir:").strip())
    return gitdir if gitdir.is_absolute() else (worktree / gitdir).resolve()


def chained_hooks_dir(state: RepoState) -> str:
    """The hooks directory the repository used before coditect, which the guard's scripts chain to.

    Its ``core.hooksPath`` when set (``~`` expanded; a relative one, husky-style, stays relative: git and the
    scripts resolve it in the worktree the hook runs in), else ``hooks/`` in the common dir. When that is
    already a coditect hooks directory, the directory it recorded: re-running setup never chains to itself.
    """
    if not state.hooks_path:
        return str(state.git_common_dir / "hooks")
    chain = os.path.expanduser(state.hooks_path)
    record = Path(chain) / CHAIN_RECORD
    if Path(chain).is_absolute() and (Path(chain) / GUARD_SCRIPT).is_file() and record.is_file():
        return record.read_text(encoding="utf-8").strip() or str(state.git_common_dir / "hooks")
    return chain


def expected_hooks(ctx: Context, stream: StreamId, repo: RepoId) -> dict[str, str]:
    """The files the guard's hooks directory of ``stream``'s worktree in ``repo`` should hold."""
    return hook_files(ctx.manifest, stream, repo, chained_hooks_dir(ctx.states[repo]))


def _guard_current(ctx: Context, stream: StreamId, repo: RepoId, worktree: Path) -> bool:
    gitdir = worktree_git_dir(worktree)
    if gitdir is None:
        return False
    hooks = os.path.join(gitdir, HOOKS_DIR)
    config = _file_bytes(os.path.join(gitdir, "config.worktree"))
    if config is None or hooks not in config.decode("utf-8", "replace"):
        return False
    # Plain reads (no pathlib, no text layer): this runs for every worktree before every launch, 25 files each.
    for name, text in expected_hooks(ctx, stream, repo).items():
        data = text.encode("utf-8")
        if _file_bytes(os.path.join(hooks, name), len(data) + 1) != data:
            return False
    return True


def _file_bytes(path: str, limit: int = 1 << 16) -> bytes | None:
    """The first ``limit`` bytes of the file at ``path``; None when it cannot be read (missing, a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO in its place does not block
    except OSError:
        return None
    try:
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_context(project: Project, phase: str | None) -> Context:
    """Validate the manifest and read every repository's state: a constant number of git calls each, the
    repositories side by side, started while the manifest is validated (and used only once it passed)."""
    from concurrent.futures import ThreadPoolExecutor

    from coditect_cli.adapters.git import GitReader, is_work_tree

    manifest = load(project, phase).manifest
    root = project.root.resolve()
    paths = {RepoId(repo.id): (project.root / repo.path).resolve() for repo in manifest.repositories}
    # Only work trees inside the project are read ahead (validation refuses the others).
    ahead = {r: p for r, p in paths.items() if (p == root or root in p.parents) and is_work_tree(p)}
    reader = GitReader()
    with ThreadPoolExecutor(max_workers=min(8, 2 * len(paths))) as pool:
        reader.prefetch(pool, ahead.values())
        pending = {repo: pool.submit(read_repo_state, path, manifest) for repo, path in ahead.items()}
        checked = load_valid(project, phase, reader=reader)
        states = {repo: pending[repo].result() for repo in paths}
    files = generate(manifest, manifest_label(checked))
    return Context(checked, states, files)


def read_repo_state(path: Path, manifest: Manifest) -> RepoState:
    """One repository's state, with the integration branch's CODEOWNERS blobs (local and origin) that the
    plan compares with the generated file."""
    from coditect_cli.adapters.git import read_state

    integration = manifest.integration_branch
    return read_state(path, [f"{integration}:{CODEOWNERS_PATH}", f"origin/{integration}:{CODEOWNERS_PATH}"])


def compute_plan(ctx: Context, *, push: bool = True) -> Plan:
    """The plan for ``ctx``: what is missing, in order."""
    current = frozenset(
        worktree_path(ctx.manifest, ctx.project.root, pair)
        for pair in ctx.manifest.pairs()
        if _guard_current(
            ctx,
            StreamId(pair.stream.id),
            RepoId(pair.repo.id),
            worktree_path(ctx.manifest, ctx.project.root, pair),
        )
    )
    return build_plan(
        ctx.manifest,
        ctx.project.root,
        ctx.states,
        push=push,
        codeowners=ctx.codeowners,
        guards_current=current,
    )


class Executor:
    """Runs plan steps against real repositories, reporting every ref it moves."""

    def __init__(self, ctx: Context, on_ref_move: RefMove):
        self.ctx = ctx
        self.on_ref_move = on_ref_move
        self._worktree_config_done: set[RepoId] = set()
        self._pruned: set[RepoId] = set()
        # Object ids of the refs this run knows, so creating a branch costs one git process.
        self._refs: dict[RepoId, dict[str, str]] = {
            repo: {**{f"origin/{b}": sha for b, sha in st.remote.items()}, **st.local}
            for repo, st in ctx.states.items()
        }

    def run(self, step: Step) -> None:
        """Execute one step."""
        handler = getattr(self, f"_do_{type(step).__name__}")
        handler(step)

    # -- steps -----------------------------------------------------------------------------------------
    def _do_CreateBranch(self, step: CreateBranch) -> None:
        from coditect_cli.adapters.git import Git

        g = Git(self.ctx.repo_path(step.repo))
        known = self._refs[step.repo]
        sha = known.get(step.start_point)
        if step.track or sha is None:
            g.run("branch", "--track" if step.track else "--no-track", step.branch, step.start_point)
            sha = g.out("rev-parse", f"refs/heads/{step.branch}")
        else:
            # Compare-and-swap against "must not exist" (the zero id): never moves an existing branch.
            g.run(
                "update-ref",
                "-m",
                "coditect: streams setup",
                f"refs/heads/{step.branch}",
                sha,
                "0" * len(sha),
            )
        known[step.branch] = sha
        self.on_ref_move(step.repo, f"refs/heads/{step.branch}", None, sha)

    def _do_WriteCodeowners(self, step: WriteCodeowners) -> None:
        from coditect_cli.adapters.git import Git, commit_file, is_dirty

        repo = self.ctx.repo_path(step.repo)
        text = self.ctx.codeowners[step.repo].text
        message = (
            f"chore(coditect): {'update' if step.update else 'add'} CODEOWNERS for {self.ctx.manifest.phase}"
        )
        checked_out = next(
            (p for p, b in self.ctx.states[step.repo].worktrees.items() if b == step.branch), None
        )
        if checked_out is None:
            old, new = commit_file(repo, step.branch, step.path, text, message)
        else:
            # The branch is someone's HEAD: commit there, the normal way, only when that worktree is clean.
            dirty = is_dirty(checked_out)
            if dirty:
                raise RefusedError(
                    f"{step.branch} is checked out in {checked_out} with uncommitted changes; "
                    "setup will not touch it",
                    hint="commit or stash there, then run `coditect streams setup` again:\n  "
                    + "\n  ".join(dirty),
                )
            g = Git(checked_out)
            old = g.out("rev-parse", "HEAD")
            target = checked_out / step.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            g.run("add", "--", step.path)
            g.run("commit", "-q", "-m", message, "--", step.path)
            new = g.out("rev-parse", "HEAD")
        self._refs[step.repo][step.branch] = new
        self.on_ref_move(step.repo, f"refs/heads/{step.branch}", old, new)

    def _do_ExcludePath(self, step: ExcludePath) -> None:
        exclude = self.ctx.states[step.repo].git_common_dir / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        existing = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
        if step.pattern in existing.splitlines():
            return
        sep = "" if not existing or existing.endswith("\n") else "\n"
        exclude.write_text(f"{existing}{sep}# coditect worktrees\n{step.pattern}\n", encoding="utf-8")

    def _do_AddWorktree(self, step: AddWorktree) -> None:
        from coditect_cli.adapters.git import Git

        if step.path.exists() and any(step.path.iterdir()):
            raise RefusedError(
                f"{step.path} exists and is not the worktree of {step.branch}; setup will not overwrite it",
                hint="move it away (or point `worktrees:` in the manifest elsewhere), then run setup again",
            )
        step.path.parent.mkdir(parents=True, exist_ok=True)
        repo = Git(self.ctx.repo_path(step.repo))
        state = self.ctx.states[step.repo]
        if state.prunable and step.repo not in self._pruned:
            # A worktree directory deleted by hand stays registered (and its branch "checked out") until pruned;
            # pruning forgets its HEAD: commits reachable only from a detached one would be left to the gc.
            if state.prunable_heads:
                lost = repo.out(
                    "log", "--format=%h %s", *state.prunable_heads, "--not", "--branches", "--remotes"
                )
                if lost:
                    gone = ", ".join(str(p) for p in state.prunable)
                    raise RefusedError(
                        f"worktree(s) {gone} were deleted but stay registered, on a detached HEAD with commits on "
                        "no branch and no remote; setup prunes them only once those are kept:\n  "
                        + "\n  ".join(lost.splitlines()),
                        hint=f"keep them on a branch (`git -C {repo.path} branch <name> <commit>`) or drop them "
                        f"on purpose (`git -C {repo.path} worktree prune`), then run setup again",
                    )
            repo.run("worktree", "prune")
            self._pruned.add(step.repo)
        repo.run("worktree", "add", "--quiet", str(step.path), step.branch)

    def _do_SwitchWorktree(self, step: SwitchWorktree) -> None:
        from coditect_cli.adapters.git import Git
        from coditect_cli.services.streams import read_work

        work = read_work(step.repo, step.path, list_commits=True)
        on = f"on {work.branch}" if work.branch else "on a detached HEAD"
        if work.changes:
            raise RefusedError(
                f"worktree {step.path} is {on} with uncommitted changes; "
                f"setup will not switch it to {step.branch}",
                hint="commit or stash there, then run setup again:\n  " + "\n  ".join(work.changes),
            )
        if work.branch is None and work.commits:
            # Switching away would leave these commits reachable from the reflog only.
            raise RefusedError(
                f"worktree {step.path} is {on} with {len(work.commits)} commit(s) on no branch and no "
                f"remote; setup will not switch it to {step.branch}:\n  " + "\n  ".join(work.commits),
                problems=tuple(
                    Problem("unreachable", f"on no branch: {commit}", Location(str(step.path)))
                    for commit in work.commits
                ),
                hint=f"keep them on a branch first (`git -C {step.path} branch <name>`, or cherry-pick them "
                f"onto {step.branch}), then run setup again",
            )
        Git(step.path).run("switch", "--quiet", step.branch)

    def _do_InstallGuard(self, step: InstallGuard) -> None:
        from coditect_cli.adapters.git import Git, enable_worktree_config

        state = self.ctx.states[step.repo]
        if step.repo not in self._worktree_config_done:
            enable_worktree_config(self.ctx.repo_path(step.repo), state.git_common_dir)
            self._worktree_config_done.add(step.repo)
        gitdir = worktree_git_dir(step.path)
        if gitdir is None:
            raise CoditectError(f"{step.path} is not a linked worktree; cannot install the ownership guard")
        hooks = gitdir / HOOKS_DIR
        hooks.mkdir(exist_ok=True)
        files = expected_hooks(self.ctx, step.stream, step.repo)
        if hooks.is_symlink() or not hooks.is_dir():
            raise RefusedError(
                f"{hooks} is not a directory: the ownership guard of {step.stream} in {step.repo} goes there",
                hint="move it away, then run setup again",
            )
        for name in files:
            path = hooks / name
            if path.is_dir() and not path.is_symlink():
                # Nothing coditect writes; whatever is in it is someone's, so it is not removed here.
                raise RefusedError(
                    f"{path} is a directory where the ownership guard's {name} hook goes "
                    f"(stream {step.stream}, repository {step.repo}); nothing was changed in it",
                    hint="move it away (it is not coditect's), then run setup again",
                )
        for name, text in files.items():
            path = hooks / name
            path.write_text(text, encoding="utf-8")
            path.chmod(0o644 if name == CHAIN_RECORD else 0o755)
        config = gitdir / "config.worktree"
        if config.exists():
            Git(step.path).run("config", "--worktree", "core.hooksPath", str(hooks))
        else:
            # A new worktree has no config of its own yet: writing it saves a git process per worktree.
            config.write_text(f"[core]\n\thooksPath = {_config_value(str(hooks))}\n", encoding="utf-8")

    def _do_Push(self, step: Push) -> None:
        from coditect_cli.adapters import proc

        repo = self.ctx.repo_path(step.repo)
        try:
            proc.run(["git", "-C", str(repo), "push", "--quiet", "-u", "origin", *step.branches], timeout=300)
        except CommandFailed as exc:
            url = self.ctx.states[step.repo].origin_url
            raise UnavailableError(
                f"could not push {', '.join(step.branches)} of repository {step.repo!r} to origin ({url}): "
                f"{git_reason(exc.stderr)}",
                hint="everything else was done locally; fix the origin (or use --no-push) and run setup again",
            ) from None


def git_reason(stderr: str) -> str:
    """The line of git's stderr that says why: the first ``fatal:``/``error:`` line, else the first line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line.split(":", 1)[1].strip()
    return lines[0] if lines else "failed"


def _config_value(value: str) -> str:
    """``value`` quoted for a git config file."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def execute(ctx: Context, plan: Plan, on_ref_move: RefMove) -> list[Step]:
    """Run every step of ``plan``; on failure re-raise with what was done so far (the rest is re-planned).

    A failed push does not stop the other pushes (they come last, after all local work): the failures
    are reported together at the end.
    """
    executor = Executor(ctx, on_ref_move)
    done: list[Step] = []
    failed_pushes: list[UnavailableError] = []
    for step in plan.steps:
        try:
            executor.run(step)
        except UnavailableError as exc:
            if isinstance(step, Push):
                failed_pushes.append(exc)
                continue
            raise _stopped(exc, step, done, plan) from None
        except CoditectError as exc:
            raise _stopped(exc, step, done, plan) from None
        done.append(step)
    if failed_pushes:
        local = sum(not isinstance(s, Push) for s in done)
        raise UnavailableError(
            "\n".join(e.message for e in failed_pushes)
            + f"\nall {local} local step(s) were done; only the push(es) above are missing",
            hint="fix the origin (or use --no-push), then run `coditect streams setup` again to push",
        )
    return done


def _stopped(exc: CoditectError, step: Step, done: list[Step], plan: Plan) -> CoditectError:
    summary = f"{len(done)} of {len(plan.steps)} step(s) done before it" if done else "nothing was changed"
    exc.message = f"{exc.message}\nsetup stopped at: {step.describe()} ({summary})"
    if exc.hint is None:
        exc.hint = "run `coditect streams setup` again to finish: it continues where this run stopped"
    return exc


def setup(project: Project, phase: str | None, *, push: bool = True, dry_run: bool = False) -> SetupResult:
    """Plan and (unless ``dry_run``) execute setup for ``phase`` under the phase lock, journaling ref moves."""
    ctx = read_context(project, phase)
    if dry_run:
        return SetupResult(compute_plan(ctx, push=push), dry_run=True)
    from coditect_cli.state.lock import phase_lock
    from coditect_cli.state.store import Store

    common = project_common_dir(project)
    phase_name = ctx.manifest.phase
    with phase_lock(common, phase_name, "coditect streams setup"):
        # Re-read under the lock: another process may have set things up meanwhile.
        ctx = read_context(project, phase)
        plan = compute_plan(ctx, push=push)
        if plan.empty:
            return _with_hosts(project, ctx, common, SetupResult(plan))
        with Store.open(common) as store:
            run_id = store.begin_run("streams setup", phase_name)

            def moved(repo: str, ref: str, old: str | None, new: str | None) -> None:
                store.record_ref_move(run_id, "streams setup", phase_name, repo, ref, old, new)

            try:
                done = execute(ctx, plan, moved)
            except BaseException:
                store.finish_run(run_id, "failed")
                raise
            store.finish_run(run_id, "ok")
    return _with_hosts(project, ctx, common, SetupResult(plan, done))


def _with_hosts(project: Project, ctx: Context, common: Path, result: SetupResult) -> SetupResult:
    """``result`` with the remote hosts' streams set up (after the branches they clone were pushed)."""
    if ctx.manifest.hosts:
        from coditect_cli.services.hosts import setup_hosts

        result.hosts = setup_hosts(project, ctx.manifest, common)
        failed = [h.error for h in result.hosts if h.error]
        if failed:
            raise UnavailableError(
                "\n".join(failed) + "\nthe local setup and the other hosts are done",
                hint="run `coditect streams setup` again once the host is back: it continues from there",
            )
    return result


def project_common_dir(project: Project) -> Path:
    """The git common dir of the project's superproject: where coditect keeps its state and locks."""
    from coditect_cli.adapters.git import common_dir

    return common_dir(project.root)
