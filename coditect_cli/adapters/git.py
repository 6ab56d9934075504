"""Git plumbing through the one subprocess runner.

Read-only helpers read everything they need in one process per repository (one ``for-each-ref``, one
``ls-files``) so their cost does not grow with the number of branches.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, Future
from pathlib import Path

from coditect_cli.adapters import proc
from coditect_cli.adapters.scratch import scratch_dir
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
        """Every ref matching ``patterns`` (default: all) mapped to its object id: read from the repository's
        files when they are plain (:mod:`coditect_cli.adapters.refstore`), else one ``for-each-ref``."""
        from coditect_cli.adapters.refstore import read_refs

        found = read_refs(self.path, patterns)
        if found is not None:
            return found
        out = self.run("for-each-ref", "--format=%(objectname) %(refname)", *patterns).stdout
        refs: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition(" ")
            refs[name] = sha
        return refs


_SECTION = re.compile(r'^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]\s*(.*)$')
_URL = re.compile(r"^\s*url\s*=\s*([^\s\"\\;#][^\"\\;#]*?)\s*$", re.IGNORECASE)


def origin_url(path: Path) -> str | None:
    """``remote.origin.url`` of the repository or worktree at ``path``, as configured (not rewritten by
    ``url.<base>.insteadOf``), or None when it has none.

    Read from the repository's own ``config`` file when that is plain (no includes; one plain ``url`` under
    ``[remote "origin"]``), else asked of ``git config`` (which also knows the user's and the system's
    files): a read of every repository's origin then costs no process in the usual case.
    """
    found = origin_url_in_file(path)
    if found is not None:
        return found or None
    done = proc.run(["git", "-C", str(path), "config", "--get", "remote.origin.url"], check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None


def origin_url_in_file(path: Path) -> str | None:
    """The URL from the repository's config file; "" for none there; None when git must be asked."""
    from coditect_cli.adapters.worktree_state import layout

    lay = layout(path)
    if lay is None:
        return None
    try:
        text = (lay.common / "config").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    urls: list[str] = []
    in_origin = False
    for line in text.splitlines():
        header = _SECTION.match(line)
        if header is not None:
            name, sub, rest = header.group(1).lower(), header.group(2), header.group(3)
            if name in ("include", "includeif") or (rest and not rest.lstrip().startswith(("#", ";"))):
                return None  # an include, or a key on the header's line: let git read it
            in_origin = name == "remote" and sub == "origin"
            continue
        if "[" in line and line.lstrip().startswith("["):
            return None  # a header this reader does not understand
        if in_origin and line.strip().lower().startswith("url"):
            plain = _URL.match(line)
            if plain is None:
                return None  # quoted, escaped or commented: git's business
            urls.append(plain.group(1))
    if len(urls) > 1:
        return None
    if not urls:
        return None  # none here: the user's or system's config might still set one
    return urls[0]


def is_work_tree(path: Path) -> bool:
    """True when ``path`` is the top of a git work tree (a repository, a submodule or a worktree).

    A ``.git`` entry (directory, or the file submodules and worktrees use) is the cheap test; an
    uninitialised submodule is an empty directory and fails it.
    """
    return (path / ".git").exists()


class GitReader:
    """The :class:`~coditect_cli.domain.repo.RepoReader` backed by real git."""

    def __init__(self) -> None:
        self._pending: dict[Path, Future[TrackedFiles]] = {}

    def prefetch(self, pool: Executor, paths: Iterable[Path]) -> None:
        """Start reading the tracked files of the work trees ``paths`` in ``pool``, side by side;
        :meth:`tracked_files` then waits for them."""
        for path in paths:
            self._pending[path.resolve()] = pool.submit(Git(path).tracked_files)

    def is_work_tree(self, path: Path) -> bool:
        return is_work_tree(path)

    def tracked_files(self, path: Path) -> TrackedFiles:
        pending = self._pending.pop(path.resolve(), None)
        return pending.result() if pending is not None else Git(path).tracked_files()


def _parse_worktrees(porcelain: str) -> tuple[dict[Path, str | None], dict[Path, str | None]]:
    """Live worktrees (path -> branch) and prunable ones, registered with their directory gone (path -> the
    commit of their detached HEAD, None when on a branch)."""
    out: dict[Path, str | None] = {}
    prunable: dict[Path, str | None] = {}
    for block in porcelain.strip().split("\n\n"):
        path: Path | None = None
        branch: str | None = None
        head: str | None = None
        gone = False
        for line in block.splitlines():
            if line.startswith("worktree "):
                path = Path(line[len("worktree ") :])
            elif line.startswith("HEAD "):
                head = line[len("HEAD ") :]
            elif line.startswith("branch "):
                branch = line[len("branch ") :].removeprefix("refs/heads/")
            elif line.startswith("prunable"):
                gone = True
        if path is not None:
            if gone:
                prunable[path] = head if branch is None else None
            else:
                out[path] = branch
    return out, prunable


def read_state(path: Path, blobs: Sequence[str] = ()) -> RepoState:
    """Branches, origin branches, worktrees, origin URL and info/exclude of the repository at ``path``.

    ``blobs`` are ``<rev>:<path>`` specs whose object ids are wanted (one extra process for all of them).
    Three or four git processes whatever the number of branches or worktrees.
    """
    g = Git(path)
    common = common_dir(path)
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
    return RepoState(
        path,
        common,
        local,
        remote,
        worktrees,
        origin,
        excluded,
        found,
        hooks_path,
        tuple(prunable),
        tuple(head for head in prunable.values() if head),
    )


def is_dirty(worktree: Path) -> list[str]:
    """The ``git status --porcelain`` lines of ``worktree`` (empty when clean; untracked files count)."""
    return [line for line in Git(worktree).out("status", "--porcelain").splitlines() if line]


def commit_file(repo: Path, branch: str, path: str, content: str, message: str) -> tuple[str, str]:
    """Commit ``content`` at ``path`` on ``branch`` without touching any work tree or index.

    Builds the tree in a temporary index (plumbing), commits it on top of the branch and moves the branch
    with a compare-and-swap ``update-ref``. Returns (old, new) commit ids.
    """
    g = Git(repo)
    old = g.out("rev-parse", "--verify", f"refs/heads/{branch}^{{commit}}")
    blob = g.run("hash-object", "-w", "--stdin", input=content).stdout.strip()
    with scratch_dir("index") as tmp:
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


# ------------------------------------------------------------------------------------------------ gating helpers


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    """Whether ``ancestor`` is reachable from ``descendant`` (equal commits count)."""
    return Git(repo).run("merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode == 0


def checked_out(repo: Path) -> dict[str, Path]:
    """Every branch checked out in a worktree of ``repo`` (branch name -> worktree path)."""
    live, _prunable = _parse_worktrees(Git(repo).out("worktree", "list", "--porcelain"))
    main = next(iter(live), None)
    # A submodule's main worktree is listed by its git dir (.git/modules/...): name its checkout instead.
    return {
        branch: (repo if path == main and not (path / ".git").exists() else path)
        for path, branch in live.items()
        if branch
    }


def fetch_origin(repo: Path) -> str | None:
    """Fetch origin's branches (no tags, no submodules); None when it worked, else git's reason."""
    done = Git(repo).run("fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "origin", check=False)
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return proc.redact(lines[-1]) if lines else f"git fetch exit {done.returncode}"


def make_tag_object(repo: Path, name: str, target: str, message: str) -> str:
    """Write an annotated tag object ``name`` on commit ``target`` (no ref yet) and return its id.

    The ref is created separately, so a caller can journal the move before making it.
    """
    g = Git(repo)
    tagger = g.out("var", "GIT_COMMITTER_IDENT")
    body = message if message.endswith("\n") else message + "\n"
    text = f"object {target}\ntype commit\ntag {name}\ntagger {tagger}\n\n{body}"
    return g.run("mktag", input=text).stdout.strip()


GATE_WORKTREE_PREFIX = "coditect-gate-"


def add_detached_worktree(repo: Path, commit: str, owner: str) -> Path:
    """A new worktree of ``repo`` with ``commit`` checked out (detached), in a new temporary directory
    named after ``owner`` (e.g. the phase), so :func:`remove_gate_worktrees` finds it."""
    import tempfile

    top = Path(tempfile.mkdtemp(prefix=f"{GATE_WORKTREE_PREFIX}{owner}-"))
    path = top / repo.name
    Git(repo).run("worktree", "add", "--quiet", "--detach", str(path), commit)
    return path


def switch_detached(worktree: Path, commit: str) -> None:
    """Check out ``commit`` in a worktree made by :func:`add_detached_worktree`, exactly (untracked files go)."""
    g = Git(worktree)
    g.run("checkout", "--quiet", "--force", "--detach", commit)
    g.run("clean", "-ffdxq")


def remove_gate_worktrees(repo: Path, owner: str) -> list[Path]:
    """Remove the worktrees :func:`add_detached_worktree` made for ``owner`` in ``repo`` (a run killed
    mid-gate leaves one), and those :func:`add_nested_worktree` put inside them. Only detached worktrees under
    such a temporary directory go: never a stream's."""
    import shutil

    g = Git(repo)
    live, _prunable = _parse_worktrees(g.out("worktree", "list", "--porcelain"))
    removed: list[Path] = []
    prefix = f"{GATE_WORKTREE_PREFIX}{owner}-"
    for path, branch in live.items():
        top = next((p for p in path.parents if p.name.startswith(prefix)), None)
        if branch is None and top is not None:
            g.run("worktree", "remove", "--force", str(path), check=False)
            shutil.rmtree(top if top == path.parent else path, ignore_errors=True)
            removed.append(path)
    g.run("worktree", "prune", check=False)
    return removed


def remove_stale_gate_dirs(owner: str) -> list[Path]:
    """Remove the temporary directories of ``owner``'s gate worktrees that hold no worktree any more (a run
    killed between making one and adding its worktree, or after :func:`remove_gate_worktrees` pruned it)."""
    import shutil
    import tempfile

    removed: list[Path] = []
    for top in Path(tempfile.gettempdir()).glob(f"{GATE_WORKTREE_PREFIX}{owner}-*"):
        if top.is_dir() and not any((child / ".git").exists() for child in top.iterdir()):
            shutil.rmtree(top, ignore_errors=True)
            removed.append(top)
    return removed


def add_nested_worktree(repo: Path, commit: str, path: Path) -> None:
    """A detached worktree of ``repo`` at ``commit`` in ``path`` (an empty submodule directory of a gate
    worktree): the submodule checked out at the staged commit from the local object store, no network."""
    Git(repo).run("worktree", "add", "--quiet", "--detach", str(path), commit)


def gitlink_paths(repo: Path, commit: str, paths: Sequence[str]) -> set[str]:
    """Which of ``paths`` are gitlinks (submodules) in ``commit``."""
    listed = Git(repo).out("ls-tree", commit, "--", *paths) if paths else ""
    return {line.split("\t", 1)[1] for line in listed.splitlines() if line.startswith(GITLINK_MODE + " ")}


def commit_gitlinks(repo: Path, parent: str, links: dict[str, str], message: str) -> str | None:
    """A commit on ``parent`` whose gitlinks at ``links`` (path -> commit) are updated, or None when nothing
    changes. Plumbing in a temporary index (``update-index --cacheinfo 160000,...``): no work tree is
    touched, no ref moves. Only paths that are gitlinks in ``parent`` are updated."""
    g = Git(repo)
    existing = gitlink_paths(repo, parent, list(links))
    with scratch_dir("index") as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        base = ["git", "-C", str(repo)]
        proc.run([*base, "read-tree", parent], env=env)
        infos = [f"{GITLINK_MODE},{sha},{path}" for path, sha in links.items() if path in existing]
        args = [word for info in infos for word in ("--cacheinfo", info)]
        if args:
            proc.run([*base, "update-index", *args], env=env)
        tree = proc.run([*base, "write-tree"], env=env).stdout.strip()
    if tree == g.out("rev-parse", f"{parent}^{{tree}}"):
        return None
    return g.run("commit-tree", tree, "-p", parent, input=message).stdout.strip()


_objects: dict[Path, Path] = {}
_commons: dict[Path, Path] = {}


def _common_from_files(repo: Path) -> Path | None:
    """The common dir of the work tree whose top is ``repo``, from its ``.git`` (a directory, or a
    ``gitdir:`` file and its ``commondir``): no git process. None (ask git) for anything else: a
    subdirectory, or ``GIT_DIR``/``GIT_COMMON_DIR`` set."""
    from coditect_cli.adapters.worktree_state import layout

    plain = (repo / ".git").exists() and not {"GIT_DIR", "GIT_COMMON_DIR"} & os.environ.keys()
    lay = layout(repo) if plain else None
    return lay.common.resolve() if lay is not None else None


def objects_dir(repo: Path) -> Path | None:
    """The repository's object directory, absolute (cached per process: it does not move)."""
    key = repo.resolve()
    if key not in _objects:
        common = None if "GIT_OBJECT_DIRECTORY" in os.environ else _common_from_files(key)
        if common is not None and (common / "objects").is_dir():
            _objects[key] = common / "objects"
            return _objects[key]
        done = proc.run(
            ["git", "-C", str(repo), "rev-parse", "--path-format=absolute", "--git-path", "objects"],
            check=False,
        )
        found = done.stdout.strip()
        if done.returncode != 0 or not found:
            return None
        _objects[key] = Path(found)
    return _objects[key]


def common_dir(repo: Path) -> Path:
    """The repository's git common dir, absolute (cached per process)."""
    key = repo.resolve()
    if key not in _commons:
        common = _common_from_files(repo)
        if common is None:
            found = Path(Git(repo).out("rev-parse", "--git-common-dir"))
            common = found if found.is_absolute() else (repo / found).resolve()
        _commons[key] = common
    return _commons[key]
