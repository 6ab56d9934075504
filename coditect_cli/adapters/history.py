"""A phase's history in one ``git log``: commits, parents, times, subjects and the files each touched.

Read once per repository, it answers many questions in Python without more git processes: which commits a
branch has that another lacks (ahead/behind, yesterday's work), and which paths they touched.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from coditect_cli.adapters import proc
from coditect_cli.adapters.memo import Memo, is_object_id

_RS, _US = "\x1e", "\x1f"
_GRAPHS: Memo[tuple[str, tuple[str, ...]], dict[str, LoggedCommit]] = Memo(64)


@dataclass(frozen=True)
class LoggedCommit:
    """A commit of the history read."""

    sha: str
    parents: tuple[str, ...]
    time: int  # committer time, epoch seconds
    subject: str
    files: tuple[str, ...]  # touched paths; a merge lists what it changed against its first parent


def history(repo: Path, tips: Sequence[str], exclude: Iterable[str] = ()) -> dict[str, LoggedCommit]:
    """Every commit reachable from ``tips`` but not from ``exclude``, newest first (git log's order)."""
    if not tips:
        return {}
    argv = [
        "git",
        "-C",
        str(repo),
        "-c",
        "core.quotePath=false",
        "log",
        "--name-only",
        "--no-renames",
        "--diff-merges=first-parent",
        f"--format={_RS}%H{_US}%P{_US}%ct{_US}%s",
        *tips,
    ]
    excluded = [e for e in exclude if e]
    if excluded:
        argv += ["--not", *excluded]
    out = proc.run(argv).stdout
    commits: dict[str, LoggedCommit] = {}
    for record in out.split(_RS)[1:]:
        header, _, rest = record.partition("\n")
        sha, parents, time, subject = [*header.split(_US), "", "", "0", ""][:4]
        files = tuple(line for line in rest.splitlines() if line.strip())
        commits[sha] = LoggedCommit(sha, tuple(parents.split()), int(time or 0), subject, files)
    return commits


def ancestors(tip: str, graph: dict[str, LoggedCommit]) -> set[str]:
    """The commits of ``graph`` reachable from ``tip`` (itself included)."""
    seen: set[str] = set()
    todo = deque([tip])
    while todo:
        sha = todo.popleft()
        if sha in seen or sha not in graph:
            continue
        seen.add(sha)
        todo.extend(graph[sha].parents)
    return seen


def common_base(repo: Path, tips: Sequence[str]) -> str | None:
    """The best common ancestor of all ``tips`` (``merge-base --octopus``): everything behind it is shared."""
    if len(tips) < 2:
        return None
    done = proc.run(["git", "-C", str(repo), "merge-base", "--octopus", *tips], check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None


def known_between(repo: Path, tips: Sequence[str]) -> bool:
    """Whether :func:`between` would answer ``tips`` from memory (no git process)."""
    ids = tuple(sorted(set(tips)))
    return len(ids) < 2 or _GRAPHS.get((str(repo), ids)) is not None


def between(repo: Path, tips: Sequence[str]) -> dict[str, LoggedCommit]:
    """Every commit reachable from the commit ids ``tips`` but not from their common base (empty for fewer
    than two distinct tips), newest first. The same tips again in this process: the same graph, not read
    again (shared: callers must not change it)."""
    ids = tuple(sorted(set(tips)))
    if len(ids) < 2:
        return {}
    key = (str(repo), ids)
    graph = _GRAPHS.get(key)
    if graph is None:
        base = common_base(repo, ids)
        graph = history(repo, ids, [base] if base else [])
        if all(is_object_id(t) for t in ids):  # a ref name may move: only ids make a key
            _GRAPHS.put(key, graph)
    return graph
