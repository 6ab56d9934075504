"""Git plumbing through the one subprocess runner.

Read-only helpers read everything they need in one process per repository (one ``for-each-ref``, one
``ls-files``) so their cost does not grow with the number of branches.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from coditect_cli.adapters import proc
from coditect_cli.domain.repo import RepoState, TrackedFiles

GITLINK_MODE = "160000"


class Git:
    """A repository (or worktree) addressed by its path."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def run(self, *args: str, check: bool = True, input: str | None = None) -> proc.Completed:
        """Run ``git -C <path> args...``."""
        return proc.run(["git", "-C", str(self.path), *args], check=check, input=input)

    def out(self, *args: str) -> str:
        """Run git and return stdout without the trailing newline."""
        return self.run(*args).stdout.rstrip("\n")

    def tracked_files(self) -> TrackedFiles:
        """All paths in the index, gitlinks (submodules) separately, in one ``ls-files`` call."""
        raw = self.run("ls-files", "-z", "--stage").stdout
        files: list[str] = []
        links: list[str] = []
        for entry in raw.split("\0"):
            if not entry:
                continue
            meta, _, path = entry.partition("\t")
            (links if meta.startswith(GITLINK_MODE) else files).append(path)
        return TrackedFiles(tuple(files), tuple(links))

    def refs(self, *patterns: str) -> dict[str, str]:
        """Every ref matching ``patterns`` (default: all) mapped to its object id, in one call."""
        out = self.run("for-each-ref", "--format=%(objectname) %(refname)", *patterns).stdout
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition(" ")
            refs[name] = sha
        return refs


def is_work_tree(path: Path) -> bool:
    """True when ``path`` is the top of a git work tree (a repository, a submodule or a worktree).

    A ``.git`` entry (directory, or the file submodules and worktrees use) is the cheap test; an
    uninitialised submodule is an empty directory and fails it.
    """
    return (path / ".git").exists()


class GitReader:
    """The :class:`~coditect_cli.domain.repo.RepoReader` backed by real git."""

    def is_work_tree(self, path: Path) -> bool:
        return is_work_tree(path)

    def tracked_files(self, path: Path) -> TrackedFiles:
        return Git(path).tracked_files()


def _parse_worktrees(porcelain: str) -> tuple[dict[Path, str | None], tuple[Path, ...]]:
    """Live worktrees (path -> branch) and prunable ones (registered, directory gone)."""
    out: dict[Path, str | None] = {}
    prunable: list[Path] = []
    for block in porcelain.strip().split("\n\n"):
        path: Path | None = None
        branch: str | None = None
        gone = False
        for line in block.splitlines():
            if line.startswith("worktree "):
                path = Path(line[len("worktree ") :])
            elif line.startswith("branch "):
                branch = line[len("branch ") :].removeprefix("refs/heads/")
            elif line.startswith("prunable"):
                gone = True
        if path is not None:
            if gone:
                prunable.append(path)
            else:
                out[path] = branch
    return out, tuple(prunable)


def read_state(path: Path, blobs: Sequence[str] = ()) -> RepoState:
    """Branches, origin branches, worktrees, origin URL and info/exclude of the repository at ``path``.

    ``blobs`` are ``<rev>:<path>`` specs whose object ids are wanted (one extra process for all of them).
    Four or five git processes whatever the number of branches or worktrees.
    """
    g = Git(path)
    common = Path(g.out("rev-parse", "--git-common-dir"))
    if not common.is_absolute():
        common = (path / common).resolve()
    refs = g.refs("refs/heads", "refs/remotes/origin")
    local = {n.removeprefix("refs/heads/"): sha for n, sha in refs.items() if n.startswith("refs/heads/")}
    remote = {
        n.removeprefix("refs/remotes/origin/"): sha
        for n, sha in refs.items()
        if n.startswith("refs/remotes/origin/") and n != "refs/remotes/origin/HEAD"
    }
    worktrees, prunable = _parse_worktrees(g.out("worktree", "list", "--porcelain"))
    # A submodule's main worktree is listed by its git dir (.git/modules/...): name its checkout instead.
    main = next(iter(worktrees), None)
    if main is not None and not (main / ".git").exists() and main != path:
        worktrees = {(path if p == main else p): b for p, b in worktrees.items()}
    config = dict(
        line.split(" ", 1)
        for line in g.run(
            "config", "--get-regexp", r"^(remote\.origin\.url|core\.hookspath)$", check=False
        ).stdout.splitlines()
        if " " in line
    )
    origin = config.get("remote.origin.url") or None
    hooks_path = config.get("core.hookspath") or None
    exclude_file = common / "info" / "exclude"
    excluded = tuple(exclude_file.read_text().splitlines()) if exclude_file.is_file() else ()
    found: dict[str, str | None] = {}
    if blobs:
        out = g.run(
            "cat-file", "--batch-check=%(objectname) %(objecttype)", input="\n".join(blobs) + "\n"
        ).stdout
        for spec, line in zip(blobs, out.splitlines(), strict=True):
            found[spec] = line.split()[0] if line.endswith(" blob") else None
    return RepoState(path, common, local, remote, worktrees, origin, excluded, found, hooks_path, prunable)


def is_dirty(worktree: Path) -> list[str]:
    """The ``git status --porcelain`` lines of ``worktree`` (empty when clean; untracked files count)."""
    return [line for line in Git(worktree).out("status", "--porcelain").splitlines() if line]


def commit_file(repo: Path, branch: str, path: str, content: str, message: str) -> tuple[str, str]:
    """Commit ``content`` at ``path`` on ``branch`` without touching any work tree or index.

    Builds the tree in a temporary index (plumbing), commits it on top of the branch and moves the branch
    with a compare-and-swap ``update-ref``. Returns (old, new) commit ids.
    """
    import os
    import tempfile

    g = Git(repo)
    old = g.out("rev-parse", "--verify", f"refs/heads/{branch}^{{commit}}")
    blob = g.run("hash-object", "-w", "--stdin", input=content).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="coditect-index-") as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        base = ["git", "-C", str(repo)]
        proc.run([*base, "read-tree", old], env=env)
        proc.run([*base, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"], env=env)
        tree = proc.run([*base, "write-tree"], env=env).stdout.strip()
    new = g.out("commit-tree", tree, "-p", old, "-m", message)
    g.run("update-ref", "-m", f"coditect: {message}", f"refs/heads/{branch}", new, old)
    return old, new


def enable_worktree_config(repo: Path, common_dir: Path) -> None:
    """Turn on ``extensions.worktreeConfig`` so each worktree can have its own ``core.hooksPath``.

    A submodule's common config carries ``core.worktree``; once per-worktree config is on, linked worktrees
    would inherit it and see the submodule's main work tree instead of their own. git's documented remedy:
    move ``core.worktree`` into the main worktree's ``config.worktree`` first.
    """
    common_config = str(common_dir / "config")
    g = Git(repo)
    if (
        g.run(
            "config", "--file", common_config, "--get", "extensions.worktreeConfig", check=False
        ).stdout.strip()
        == "true"
    ):
        return
    worktree = g.run("config", "--file", common_config, "--get", "core.worktree", check=False).stdout.strip()
    if worktree:
        g.run("config", "--file", str(common_dir / "config.worktree"), "core.worktree", worktree)
        g.run("config", "--file", common_config, "--unset", "core.worktree")
    g.run("config", "--file", common_config, "extensions.worktreeConfig", "true")
