"""What each branch would change in a base branch, for many branches in two git processes.

``git merge-tree --write-tree --stdin`` merges every ``base head`` pair into a tree (in a throw-away
object directory, so nothing is left behind), then one ``git diff-tree --stdin`` lists the paths where each
merged tree differs from the base tree. That is what the branch's pull request would change, computed at
a cost independent of the number of branches (one ``git diff base...head`` per branch is not).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from coditect_cli.adapters import proc

_HEADER = re.compile(r"([0-9a-f]{40,64} [0-9a-f]{40,64})\n")


def changed_since(repo: Path, base: str, heads: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """For each of ``heads`` (verified refs), the paths merging it into ``base`` would change."""
    if not heads:
        return {}
    from coditect_cli.adapters.mergetree import merge_tree_batch, scratch_objects
    from coditect_cli.errors import CommandFailed

    with scratch_objects(repo) as scratch:
        merged = merge_tree_batch(repo, [(base, head) for head in heads], scratch=scratch)
        failed = next((m for m in merged if m.tree is None), None)
        if failed is not None:
            raise CommandFailed(
                ["git", "merge-tree", failed.ours, failed.theirs], 1, failed.error or "no tree", cwd=str(repo)
            )
        base_tree = proc.run(["git", "-C", str(repo), "rev-parse", f"{base}^{{tree}}"]).stdout.strip()
        headers = [f"{base_tree} {m.tree}" for m in merged]
        out = proc.run(
            ["git", "-C", str(repo), "diff-tree", "-r", "--name-only", "-z", "--no-renames", "--stdin"],
            input="".join(h + "\n" for h in headers),
            env=scratch.env,
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
