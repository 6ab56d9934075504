"""What each branch would change in a base branch, for many branches in two git processes.

``git merge-tree --write-tree --stdin`` merges every ``base head`` pair into a tree (in a throw-away
object directory, so nothing is left behind), then one ``git diff-tree --stdin`` lists the paths where each
merged tree differs from the base tree. That is what the branch's pull request would change, computed at
a cost independent of the number of branches (one ``git diff base...head`` per branch is not).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from coditect_cli.adapters import proc

_HEADER = re.compile(r"([0-9a-f]{40,64} [0-9a-f]{40,64})\n")


@contextmanager
def scratch_objects(repo: Path) -> Iterator[dict[str, str]]:
    """Environment that sends new objects to a temporary directory, the repository's own as an alternate."""
    from coditect_cli.adapters.git import objects_dir

    objects = objects_dir(repo) or (repo / ".git" / "objects")
    scratch = tempfile.mkdtemp(prefix="coditect-objects-")
    try:
        yield {"GIT_OBJECT_DIRECTORY": scratch, "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _merged_trees(repo: Path, base: str, heads: Sequence[str], env: dict[str, str]) -> list[str]:
    out = proc.run(
        [
            "git",
            "-C",
            str(repo),
            "merge-tree",
            "--write-tree",
            "--stdin",
            "-z",
            "--name-only",
            "--no-messages",
        ],
        input="".join(f"{base} {head}\n" for head in heads),
        env=env,
        check=False,
    )
    tokens = out.stdout.split("\0")
    trees: list[str] = []
    i = 0
    # Each record: <status> NUL <tree> NUL (<conflicted path> NUL)* NUL
    while len(trees) < len(heads) and i + 1 < len(tokens):
        trees.append(tokens[i + 1])
        i += 2
        while i < len(tokens) and tokens[i] != "":
            i += 1
        i += 1
    if len(trees) != len(heads):
        from coditect_cli.errors import CommandFailed

        raise CommandFailed(["git", "merge-tree", "--stdin"], out.returncode, out.stderr, cwd=str(repo))
    return trees


def changed_since(repo: Path, base: str, heads: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """For each of ``heads`` (verified refs), the paths merging it into ``base`` would change."""
    if not heads:
        return {}
    with scratch_objects(repo) as env:
        trees = _merged_trees(repo, base, heads, env)
        base_tree = proc.run(
            ["git", "-C", str(repo), "rev-parse", f"{base}^{{tree}}"], env=env
        ).stdout.strip()
        headers = [f"{base_tree} {tree}" for tree in trees]
        out = proc.run(
            ["git", "-C", str(repo), "diff-tree", "-r", "--name-only", "-z", "--no-renames", "--stdin"],
            input="".join(h + "\n" for h in headers),
            env=env,
        ).stdout
    # Output, per input line: "<tree> <tree>\n" then each differing path NUL-terminated (none when equal).
    by_header: dict[str, list[str]] = {}
    current: list[str] = []
    pos = 0
    while pos < len(out):
        match = _HEADER.match(out, pos)
        if match:
            # Two heads can merge to the same tree: the same header twice, its paths listed twice.
            current = by_header.setdefault(match.group(1), []) if match.group(1) not in by_header else []
            pos = match.end()
            continue
        end = out.find("\0", pos)
        end = len(out) if end < 0 else end
        current.append(out[pos:end])
        pos = end + 1
    result: dict[str, list[str]] = {}
    for head, header in zip(heads, headers, strict=True):
        result[head] = by_header.get(header, [])
    return {head: tuple(paths) for head, paths in result.items()}
