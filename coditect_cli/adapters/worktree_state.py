"""Many worktrees' uncommitted changes and unpushed commits with a constant number of git processes per
repository.

``git status`` reads one worktree per process, so asking it about 100 worktrees costs 100 processes. Most
worktrees have not changed since the last look, and that much can be proven without git: a
:class:`Snapshot` of a worktree is its ``HEAD`` (file and commit), its index file (path, size, inode and
times: git replaces it through a rename, so every write changes the inode), every tracked file whose
``lstat`` no longer matches what the index recorded for it (or is too recent to trust, git's "racy" rule),
every directory's times (creating, deleting or renaming a file changes its directory's), and the config and
exclude files that decide what is ignored. The last ``git status`` of each worktree is kept with the digest
of the snapshot taken just *before* it; when the digest is unchanged, that status still holds. Anything
the snapshot cannot vouch for (a populated submodule, a split or sparse index, conflicts, intent-to-add
entries, a timestamp younger than :data:`SETTLE_NS`, more than :data:`WALK_LIMIT` paths) makes it
uncacheable, and ``git status`` runs, as before. A dirty worktree is never reported clean: every change
git reports alters the snapshot (a file's content change alters its ``ctime``, which no program can set
back).

Per repository, whatever the number of worktrees: one ``for-each-ref`` (branch tips, upstreams and how far
ahead of them each branch is), one ``rev-list`` when some branches have no upstream (their commits on no
other branch), and one ``config --list --show-origin`` (the config files and the excludes file in force)
when one of the files it named last time changed. Then one ``git status`` per worktree whose snapshot
changed since the last call.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from coditect_cli.adapters import proc
from coditect_cli.adapters.memo import Memo

K = TypeVar("K", bound=Hashable)

SETTLE_NS = 2_000_000_000
"""A timestamp younger than this (at the snapshot) is not trusted: a second change within the filesystem's
clock tick would leave it as it is (2 s covers the coarsest common filesystems)."""
WALK_LIMIT = 20_000
"""Paths (index entries plus directory entries) a snapshot may stat; beyond, ``git status`` is cheaper."""
CACHE_VERSION = 2

_ENTRY = struct.Struct(">10I")  # ctime s, ns; mtime s, ns; dev; ino; mode; uid; gid; size
_MASK = 0xFFFFFFFF


@dataclass(frozen=True)
class Status:
    """What ``git status --porcelain=v2 --branch`` says about one worktree."""

    branch: str | None  # None: detached
    upstream: str | None
    ahead: int
    initial: bool  # the branch has no commit yet
    changes: tuple[str, ...]  # short lines: "XY path"


def parse_status(out: str) -> Status:
    """Parse ``git status --porcelain=v2 --branch`` output."""
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
    return Status(branch, upstream, ahead, "# branch.oid (initial)" in out, tuple(changes))


STATUS_ARGS = ("status", "--porcelain=v2", "--branch", "--untracked-files=all")


def git_status(path: Path) -> Status:
    """One ``git status`` of the worktree at ``path``."""
    return parse_status(proc.run(["git", "-C", str(path), *STATUS_ARGS]).stdout)


# ----------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """Where a worktree's git files are: its own git dir (HEAD, index) and the repository's common dir."""

    worktree: Path
    gitdir: Path
    common: Path


def layout(worktree: Path) -> Layout | None:
    """The git dirs of ``worktree`` read from its ``.git`` (a directory, or a ``gitdir:`` file), or None."""
    dotgit = worktree / ".git"
    if dotgit.is_dir():
        return Layout(worktree, dotgit, dotgit)
    try:
        text = dotgit.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    gitdir = Path(text.removeprefix("gitdir:").strip())
    gitdir = gitdir if gitdir.is_absolute() else worktree / gitdir
    try:
        common_text = (gitdir / "commondir").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return Layout(worktree, gitdir, gitdir) if gitdir.is_dir() else None
    except (OSError, UnicodeDecodeError):
        return None
    common = Path(common_text)
    return Layout(worktree, gitdir, Path(os.path.normpath(gitdir / common)))


def _head_ref(gitdir: Path) -> str | None:
    """``HEAD``'s text: ``ref: refs/heads/X`` or a commit id (None when unreadable)."""
    try:
        return (gitdir / "HEAD").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


# ----------------------------------------------------------------------------------------------- snapshot


@dataclass(frozen=True)
class IndexEntry:
    path: str
    mode: int
    key: tuple[int, ...]  # ctime s, ns; mtime s, ns; inode; size (32 bits each, as git keeps them)


def read_index(path: Path) -> list[IndexEntry] | None:
    """The entries of a git index file (versions 2-4, SHA-1), or None when it holds something a snapshot
    cannot vouch for: conflicts, intent-to-add or skip-worktree entries, a split or sparse index."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError:
        return None
    if len(data) < 12 or data[:4] != b"DIRC":
        return None
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3, 4):
        return None
    entries: list[IndexEntry] = []
    off = 12
    previous = b""
    try:
        for _ in range(count):
            start = off
            fields = _ENTRY.unpack_from(data, off)
            off += 40 + 20  # the stat fields, then the object id
            (flags,) = struct.unpack_from(">H", data, off)
            off += 2
            if flags & 0x3000:  # a stage: a merge conflict
                return None
            if flags & 0x4000:  # extended flags (skip-worktree, intent-to-add)
                (extended,) = struct.unpack_from(">H", data, off)
                off += 2
                if extended & 0x6000:
                    return None
            if version == 4:
                strip, off = _varint(data, off)
                end = data.index(b"\0", off)
                name = previous[: len(previous) - strip] + data[off:end]
                off = end + 1
            else:
                end = data.index(b"\0", off)
                name = data[off:end]
                off = start + ((end - start) // 8 + 1) * 8  # 1-8 NULs pad the entry to a multiple of 8
            previous = name
            ctime_s, ctime_ns, mtime_s, mtime_ns, _dev, ino, mode, _uid, _gid, size = fields
            key = (ctime_s, ctime_ns, mtime_s, mtime_ns, ino, size)
            entries.append(IndexEntry(name.decode("utf-8", "surrogateescape"), mode, key))
        while off + 8 <= len(data) - 20:  # extensions, then the checksum
            signature = data[off : off + 4]
            (size,) = struct.unpack_from(">I", data, off + 4)
            if signature in (b"link", b"sdir"):
                return None
            off += 8 + size
    except (struct.error, ValueError, IndexError):
        return None
    return entries


def _varint(data: bytes, off: int) -> tuple[int, int]:
    """git's offset varint (index v4 path compression)."""
    byte = data[off]
    off += 1
    value = byte & 0x7F
    while byte & 0x80:
        byte = data[off]
        off += 1
        value = ((value + 1) << 7) | (byte & 0x7F)
    return value, off


def _stat_key(st: os.stat_result) -> tuple[int, ...]:
    """The fields git records for a file, as it records them (32-bit seconds, inode and size)."""
    return (
        int(st.st_ctime_ns // 1_000_000_000) & _MASK,
        int(st.st_ctime_ns % 1_000_000_000),
        int(st.st_mtime_ns // 1_000_000_000) & _MASK,
        int(st.st_mtime_ns % 1_000_000_000),
        st.st_ino & _MASK,
        st.st_size & _MASK,
    )


def _mode(st: os.stat_result) -> int:
    if stat.S_ISLNK(st.st_mode):
        return 0o120000
    if stat.S_ISREG(st.st_mode):
        return 0o100755 if st.st_mode & 0o100 else 0o100644
    return 0


def _full(st: os.stat_result) -> list[int]:
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode, st.st_dev]


class Uncacheable(Exception):
    """The worktree's state cannot be vouched for by a snapshot: ask git."""


@dataclass
class _Walk:
    budget: int
    young: int  # timestamps at or above this (ns) are too recent to trust
    parts: list[object] = field(default_factory=list)

    def spend(self, n: int = 1) -> None:
        self.budget -= n
        if self.budget < 0:
            raise Uncacheable("too many paths")

    def note(self, what: str, path: str, st: os.stat_result) -> None:
        if st.st_mtime_ns >= self.young or st.st_ctime_ns >= self.young:
            raise Uncacheable(f"{path} changed just now")
        self.parts.append((what, path, _full(st)))


def snapshot(lay: Layout, head_oid: str | None, context: Sequence[object]) -> str:
    """The digest of everything ``git status`` of the worktree depends on (see the module docstring);
    ``context`` adds what is shared by the repository (its config and exclude files). Raises
    :class:`Uncacheable` when it cannot vouch for the state."""
    walk = _Walk(WALK_LIMIT, time.time_ns() - SETTLE_NS)
    head = _head_ref(lay.gitdir)
    if head is None:
        raise Uncacheable("HEAD is unreadable")
    walk.parts += [("head", head, head_oid), ("context", list(context))]
    index_file = lay.gitdir / "index"
    try:
        index_stat = index_file.lstat()
        walk.note("index", "", index_stat)
        index_mtime = divmod(index_stat.st_mtime_ns, 1_000_000_000)
    except FileNotFoundError:
        walk.parts.append(("index", "", None))
        index_mtime = (0, 0)
    for where, name in (
        (lay.gitdir, "config.worktree"),
        (lay.gitdir, "info/sparse-checkout"),
        (lay.common, "info/exclude"),
    ):
        try:
            walk.note("file", name, (where / name).stat())
        except FileNotFoundError:
            walk.parts.append(("file", name, None))
    entries = read_index(index_file)
    if entries is None:
        raise Uncacheable("the index holds conflicts, intent-to-add, sparse or split entries")
    walk.spend(len(entries))
    root = str(lay.worktree)
    for entry in entries:
        full = os.path.join(root, entry.path)
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            walk.parts.append(("gone", entry.path))
            continue
        if entry.mode == 0o160000:  # a submodule: only an unpopulated one (an empty directory) is known
            if not stat.S_ISDIR(st.st_mode) or os.path.lexists(os.path.join(full, ".git")):
                raise Uncacheable(f"submodule {entry.path} is populated")
            continue
        key = _stat_key(st)
        racy = (key[2], key[3]) >= index_mtime
        if key != entry.key or _mode(st) != entry.mode or racy:
            walk.note("tracked", entry.path, st)  # changed or not provably unchanged: its own stat counts
    _walk_dirs(walk, root, "")
    return hashlib.sha256(json.dumps(walk.parts, separators=(",", ":")).encode()).hexdigest()


def _walk_dirs(walk: _Walk, root: str, rel: str) -> None:
    """Every directory's times (a file created, removed or renamed changes its directory's), ``.git``
    and nested repositories left out (a nested one counts by its own directory's times only)."""
    path = os.path.join(root, rel) if rel else root
    st = os.lstat(path)
    subdirs: list[str] = []
    entries = 0
    nested = False
    with os.scandir(path) as listing:
        for item in listing:
            entries += 1
            if item.name == ".git":
                nested = bool(rel)  # the worktree's own .git is not a nested repository
                continue
            if item.is_dir(follow_symlinks=False):
                subdirs.append(item.name)
    if nested:
        walk.note("nested", rel, st)
        return
    walk.note("dir", rel, st)
    walk.spend(entries)
    for name in sorted(subdirs):
        _walk_dirs(walk, root, f"{rel}/{name}" if rel else name)


# ----------------------------------------------------------------------------------------------- refs


@dataclass(frozen=True)
class BranchRef:
    oid: str
    upstream: str | None  # short name, as `git status` prints it
    ahead: int


_BRANCH_REFS: Memo[Hashable, dict[str, BranchRef]] = Memo(256)
"""branch_refs answers by (repository, its config files' stats, the branches asked, every branch and
remote-tracking tip): the same refs and the same configuration give the same upstreams and counts."""
_UNPUSHED: Memo[Hashable, dict[str, list[str]]] = Memo(256)
"""unpushed_without_upstream's history (rev-list --parents) by (repository, tips, exclusions, every branch
and remote-tracking tip)."""


def _refs_state(common: Path) -> tuple[object, ...] | None:
    """What answers about ``common``'s branches depend on, cheaply read (its refs from the files, its config
    files' stats), as a memo key part; None when that cannot be read without git."""
    from coditect_cli.adapters.refstore import read_refs

    refs = read_refs(common, ["refs/heads", "refs/remotes"])
    if refs is None:
        return None
    stats: list[object] = []
    home = os.environ.get("HOME", "")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    for file in (common / "config", Path(home, ".gitconfig"), Path(xdg, "git", "config")):
        try:
            st = file.stat()
        except FileNotFoundError:
            stats.append(None)
            continue
        except OSError:
            return None
        stats.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return (str(common), tuple(stats), tuple(refs.items()))


_UNREAD = object()


def branch_refs(common: Path, branches: Iterable[str], *, state: object = _UNREAD) -> dict[str, BranchRef]:
    """Tip, upstream and commits ahead of it of each of ``branches`` (one ``for-each-ref``; none when the
    same refs and configuration were answered before in this process). ``state``: :func:`_refs_state` of
    ``common``, when the caller read it already."""
    names = sorted({f"refs/heads/{b}" for b in branches})
    if not names:
        return {}
    if state is _UNREAD:
        state = _refs_state(common)
    key = (state, tuple(names)) if state is not None else None
    known = _BRANCH_REFS.get(key) if key is not None else None
    if known is not None:
        return dict(known)
    fmt = "%(refname)%00%(objectname)%00%(upstream:short)%00%(upstream:track,nobracket)"
    out = proc.run(["git", "-C", str(common), "for-each-ref", f"--format={fmt}", *names]).stdout
    refs: dict[str, BranchRef] = {}
    for line in out.splitlines():
        parts = line.split("\0")
        if len(parts) != 4:
            continue
        name, oid, upstream, track = parts
        ahead = 0
        for item in track.split(","):
            words = item.split()
            if len(words) == 2 and words[0] == "ahead":
                ahead = int(words[1])
        refs[name.removeprefix("refs/heads/")] = BranchRef(oid, upstream or None, ahead)
    if key is not None:
        _BRANCH_REFS.put(key, dict(refs))
    return refs


def unpushed_without_upstream(
    common: Path, heads: Mapping[K, tuple[str | None, str]], *, state: object = _UNREAD
) -> dict[K, int]:
    """For worktrees whose branch has no upstream (or that are detached): the commits on no other branch
    and no remote-tracking branch, as ``git log HEAD --not --exclude=BRANCH --branches --remotes`` counts
    them, for all of them in one ``rev-list``. ``heads`` maps a key to (branch or None, tip)."""
    if not heads:
        return {}
    own = sorted({b for b, _ in heads.values() if b})
    argv = ["git", "-C", str(common), "rev-list", "--parents", *sorted({t for _, t in heads.values()})]
    argv += ["--not", *(f"--exclude={b}" for b in own), "--branches", "--remotes"]
    if state is _UNREAD:
        state = _refs_state(common)
    memo_key = (state, tuple(argv[4:])) if state is not None else None
    graph = _UNPUSHED.get(memo_key) if memo_key is not None else None
    if graph is None:
        graph = {}
        for line in proc.run(argv).stdout.splitlines():
            sha, *parents = line.split()
            graph[sha] = parents
        if memo_key is not None:
            _UNPUSHED.put(memo_key, graph)

    def reach(tip: str) -> set[str]:
        seen: set[str] = set()
        todo = [tip]
        while todo:
            sha = todo.pop()
            if sha in graph and sha not in seen:
                seen.add(sha)
                todo.extend(graph[sha])
        return seen

    tips = {b: t for b, t in heads.values() if b}
    reached = {b: reach(t) for b, t in tips.items()}
    out: dict[K, int] = {}
    for key, (branch, tip) in heads.items():
        others: set[str] = set()
        for other, commits in reached.items():
            if other != branch:
                others |= commits
        out[key] = len(reach(tip) - others)
    return out


def _config_files(common: Path) -> list[str]:
    """Every file a repository's ignore rules and status settings may come from (one ``git config``
    process): the config files git reads (``--show-origin``) and those they include, the excludes file,
    and the user and system config files even where they do not exist yet."""
    out = proc.run(["git", "-C", str(common), "config", "--list", "--show-origin", "-z"], check=False).stdout
    files: set[str] = set()
    excludes: str | None = None
    items = out.split("\0")
    for i in range(0, len(items) - 1, 2):
        origin, setting = items[i], items[i + 1]
        key, _, value = setting.partition("\n")
        if not origin.startswith("file:"):
            continue
        name = origin.removeprefix("file:")
        name = name if os.path.isabs(name) else os.path.join(str(common), name)
        files.add(name)
        if key == "core.excludesfile":
            excludes = value
        elif key == "include.path" or (key.startswith("includeif.") and key.endswith(".path")):
            # An include that does not exist yet is read once it does: watch it too.
            files.add(os.path.join(os.path.dirname(name), os.path.expanduser(value)))
    home = os.environ.get("HOME", "")
    xdg = os.environ.get("XDG_CONFIG_HOME") or (os.path.join(home, ".config") if home else "")
    if excludes:
        files.add(os.path.join(str(common), os.path.expanduser(excludes)))
    elif xdg:
        files.add(os.path.join(xdg, "git", "ignore"))
    if xdg:
        files.add(os.path.join(xdg, "git", "config"))
    if home:
        files.add(os.path.join(home, ".gitconfig"))
    files.add("/etc/gitconfig")
    return sorted(files)


def _stat_files(files: Sequence[str], young: int) -> list[object] | None:
    """The git config variables of the environment and each file's stat (None: one changed just now)."""
    parts: list[object] = [sorted([k, v] for k, v in os.environ.items() if k.startswith("GIT_CONFIG"))]
    for name in files:
        try:
            st = os.stat(name)
        except OSError:
            parts.append([name, None])
            continue
        if st.st_mtime_ns >= young or st.st_ctime_ns >= young:
            return None
        parts.append([name, _full(st)])
    return parts


def config_context(
    common: Path, kept: object = None, settle_ns: int = SETTLE_NS
) -> tuple[list[object] | None, dict[str, object] | None]:
    """What a repository's worktrees' status depends on besides the worktrees themselves (see
    :func:`_config_files`) as snapshot parts, and what to keep for the next call. ``kept`` (from the
    last call) saves the ``git config`` process while none of its files changed. (None, None): a file
    changed just now, nothing can be vouched for."""
    young = time.time_ns() - settle_ns
    if isinstance(kept, dict) and isinstance(kept.get("files"), list):
        parts = _stat_files([str(f) for f in kept["files"]], young)
        if parts is not None and json.dumps(parts) == json.dumps(kept.get("parts")):
            return parts, kept
    files = _config_files(common)
    parts = _stat_files(files, young)
    return (parts, {"files": files, "parts": parts}) if parts is not None else (None, None)


# ----------------------------------------------------------------------------------------------- many worktrees


@dataclass(frozen=True)
class Reading:
    """One worktree's unsaved work, as :func:`read_many` found it."""

    path: Path
    exists: bool
    branch: str | None = None
    upstream: str | None = None
    changes: tuple[str, ...] = ()
    unpushed: int = 0
    asked_git: bool = False  # its `git status` ran (its snapshot changed, or cannot be trusted)


@dataclass
class _Tree:
    lay: Layout
    branch: str | None = None  # None: detached (or unborn, with ``tip`` None)
    tip: str | None = None
    digest: str | None = None
    status: Status | None = None


@dataclass
class _Cache:
    """The file keeping each worktree's last status with its snapshot digest, and each repository's config
    files (:func:`config_context`)."""

    worktrees: dict[str, object] = field(default_factory=dict)
    repos: dict[str, object] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> _Cache:
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path is not None else None
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
            return cls()
        trees, repos = data.get("worktrees"), data.get("repos")
        return cls(trees if isinstance(trees, dict) else {}, repos if isinstance(repos, dict) else {})

    def save(self, path: Path) -> None:
        """Write the cache atomically (a reader sees the old or the new file, never half of one)."""
        data = {
            "version": CACHE_VERSION,
            "worktrees": {k: v for k, v in self.worktrees.items() if os.path.isdir(k)},
            "repos": {k: v for k, v in self.repos.items() if os.path.isdir(k)},
        }
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a cache that cannot be written only costs time


def read_many(paths: Sequence[Path], cache: Path | None = None, *, workers: int = 8) -> list[Reading]:
    """The unsaved work of each worktree in ``paths`` (in order): branch, upstream, uncommitted changes
    (``git status`` short lines) and unpushed commits, with the git processes the module docstring lists.

    ``cache``: the file keeping each worktree's last status and snapshot digest (None: no cache, every
    worktree gets its ``git status``).
    """
    from concurrent.futures import ThreadPoolExecutor

    trees: dict[Path, _Tree] = {}
    groups: dict[Path, list[_Tree]] = {}
    broken: list[Path] = []
    for path in paths:
        if path in trees or not (path / ".git").exists():
            continue
        lay = layout(path)
        if lay is None:
            broken.append(path)
            continue
        tree = trees[path] = _Tree(lay)
        groups.setdefault(lay.common, []).append(tree)
    cached = _Cache.load(cache)
    repos_before = dict(cached.repos)
    unpushed: dict[Path, int] = {}
    upstreams: dict[Path, str | None] = {}

    def one_repo(common: Path, members: list[_Tree]) -> None:
        for tree in members:
            head = _head_ref(tree.lay.gitdir) or ""
            if head.startswith("ref: refs/heads/"):
                tree.branch = head.removeprefix("ref: refs/heads/")
            elif len(head) in (40, 64):
                tree.tip = head
        state = _refs_state(common)  # read once for both answers below
        refs = branch_refs(common, [t.branch for t in members if t.branch], state=state)
        context: list[object] | None = None
        if cache is not None:
            context, kept = config_context(common, cached.repos.get(str(common)))
            if kept is None:
                cached.repos.pop(str(common), None)
            else:
                cached.repos[str(common)] = kept
        for tree in members:
            if tree.branch in refs:
                tree.tip = refs[tree.branch].oid
            if context is None:
                continue
            try:
                tree.digest = snapshot(tree.lay, tree.tip, context)
            except (Uncacheable, OSError):
                tree.digest = None
        lonely = {
            t.lay.worktree: (t.branch, t.tip)
            for t in members
            if t.tip is not None and (t.branch is None or refs[t.branch].upstream is None)
        }
        unpushed.update(unpushed_without_upstream(common, lonely, state=state))
        for tree in members:
            ref = refs.get(tree.branch) if tree.branch is not None else None
            if ref is not None:
                upstreams[tree.lay.worktree] = ref.upstream
                if ref.upstream is not None:
                    unpushed[tree.lay.worktree] = ref.ahead

    # The first repository here: when it started no git process (its refs, upstreams and histories were
    # known), neither will the others, and threads would only take turns for the GIL; else the rest side by
    # side, waiting on git together.
    todo = list(groups.items())
    before = proc.started()
    if todo:
        one_repo(*todo.pop(0))
    if proc.started() == before or workers <= 1:
        for common, members in todo:
            one_repo(common, members)
    else:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo)))) as pool:
            for job in [pool.submit(one_repo, common, members) for common, members in todo]:
                job.result()
    for path in broken:
        git_status(path)  # raises git's own error, as a single `git status` would
    stale: list[_Tree] = []
    for tree in trees.values():
        entry = cached.worktrees.get(str(tree.lay.worktree))
        if tree.digest is not None and isinstance(entry, dict) and entry.get("digest") == tree.digest:
            changes = entry.get("changes")
            if isinstance(changes, list) and all(isinstance(c, str) for c in changes):
                tree.status = Status(tree.branch, None, 0, False, tuple(changes))
                continue
        stale.append(tree)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(stale)))) as pool:
        statuses = list(pool.map(lambda t: git_status(t.lay.worktree), stale))
    for tree, status in zip(stale, statuses, strict=True):
        tree.status = Status(tree.branch, None, 0, False, status.changes)
        key = str(tree.lay.worktree)
        if tree.digest is not None:
            cached.worktrees[key] = {"digest": tree.digest, "changes": list(status.changes)}
        else:
            cached.worktrees.pop(key, None)
    if cache is not None and (stale or cached.repos != repos_before or not cache.exists()):
        cached.save(cache)
    asked = {t.lay.worktree for t in stale}
    out: list[Reading] = []
    for path in paths:
        tree_or_none = trees.get(path)
        if tree_or_none is None:
            out.append(Reading(path, exists=False))
            continue
        tree = tree_or_none
        assert tree.status is not None
        out.append(
            Reading(
                path,
                exists=True,
                branch=tree.branch,
                upstream=upstreams.get(path),
                changes=tree.status.changes,
                unpushed=unpushed.get(path, 0),
                asked_git=path in asked,
            )
        )
    return out
