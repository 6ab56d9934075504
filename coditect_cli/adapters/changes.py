"""What each branch would change in a base branch, for many branches in two git processes.

``git merge-tree --write-tree --stdin`` merges every ``base head`` pair into a tree (in a throw-away
object directory, so nothing is left behind), then one ``git diff-tree --stdin`` lists the paths where each
merged tree differs from the base tree. That is what the branch's pull request would change, computed at
a cost independent of the number of branches (one ``git diff base...head`` per branch is not).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from coditect_cli.adapters import proc
from coditect_cli.adapters.memo import Memo, is_object_id

_HEADER = re.compile(r"([0-9a-f]{40,64} [0-9a-f]{40,64})\n")
_CHANGED: Memo[tuple[str, str, str], tuple[tuple[str, ...], bool, tuple[str, str]]] = Memo(8192)
"""What merging a head into a base changes, by (repository, base commit, head commit): the paths, whether
the merge was clean, and the names it was asked with."""


def changed_since(
    repo: Path, base: str, heads: Sequence[str], ids: Mapping[str, str | None] | None = None
) -> dict[str, tuple[str, ...]]:
    """For each of ``heads`` (verified refs), the paths merging it into ``base`` would change.

    ``ids`` maps refs to the commits they name now (commit ids need none): a pair this process answered
    before is not computed again when the answer cannot depend on the names (a clean merge; a conflicted
    one writes paths such as ``d~<name>``).
    """
    if not heads:
        return {}
    from coditect_cli.adapters.mergetree import merge_tree_batch, scratch_objects
    from coditect_cli.errors import CommandFailed

    def id_of(ref: str) -> str | None:
        found = ids.get(ref) if ids is not None else None
        return found or (ref if is_object_id(ref) else None)

    base_id = id_of(base)
    keys = {h: (str(repo), base_id, i) if base_id and (i := id_of(h)) else None for h in heads}
    out: dict[str, tuple[str, ...]] = {}
    for head in heads:
        key = keys[head]
        found = _CHANGED.get(key) if key is not None else None
        if found is not None and (found[1] or found[2] == (base, head)):
            out[head] = found[0]
    missing = list(dict.fromkeys(h for h in heads if h not in out))
    if not missing:
        return out
    with scratch_objects(repo) as scratch:
        # The base merged with itself comes last: its tree is the base's own (no ``rev-parse`` needed).
        merged = merge_tree_batch(
            repo, [*((base, head) for head in missing), (base, base)], scratch=scratch, ids=ids
        )
        failed = next((m for m in merged if m.tree is None), None)
        if failed is not None:
            raise CommandFailed(
                ["git", "merge-tree", failed.ours, failed.theirs], 1, failed.error or "no tree", cwd=str(repo)
            )
        base_tree = merged[-1].tree
        headers = [f"{base_tree} {m.tree}" for m in merged[:-1]]
        listed = proc.run(
            ["git", "-C", str(repo), "diff-tree", "-r", "--name-only", "-z", "--no-renames", "--stdin"],
            input="".join(h + "\n" for h in headers),
            env=scratch.env,
        ).stdout
    by_header = _paths_by_header(listed)
    for head, header, result in zip(missing, headers, merged, strict=False):
        out[head] = tuple(by_header.get(header, []))
        key = keys[head]
        if key is not None:
            _CHANGED.put(key, (out[head], result.clean, (base, head)))
    return out


def _paths_by_header(out: str) -> dict[str, list[str]]:
    """``git diff-tree -r --name-only -z --stdin`` output by its ``<tree> <tree>`` header lines."""
    # Output, per input line: "<tree> <tree>\n" then each differing path NUL-terminated (none when equal).
    by_header: dict[str, list[str]] = {}
    current: list[str] = []
    pos = 0
    while pos < len(out):
        match = _HEADER.match(out, pos)
        if match:
            # The same pair of trees twice: its paths listed twice.
            current = by_header.setdefault(match.group(1), []) if match.group(1) not in by_header else []
            pos = match.end()
            continue
        end = out.find("\0", pos)
        end = len(out) if end < 0 else end
        current.append(out[pos:end])
        pos = end + 1
    return by_header


def changed_between(
    repo: Path, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], frozenset[str] | None]:
    """For each ``(old, new)`` pair of commits, the paths whose content differs between their trees (None
    when either commit is not in ``repo``, or ``repo`` is no repository). Two git processes however many pairs."""
    wanted = list(dict.fromkeys(pairs))
    if not wanted:
        return {}
    commits = list(dict.fromkeys(c for pair in wanted for c in pair))
    done = proc.run(
        ["git", "-C", str(repo), "cat-file", "--batch-check=%(objectname) %(objecttype)"],
        input="".join(f"{c}^{{tree}}\n" for c in commits),
        check=False,  # not a repository (a forge without a local clone): every pair is unknown
    )
    trees: dict[str, str] = {}
    answers = done.stdout.splitlines() if done.returncode == 0 else []
    for commit, line in zip(commits, answers, strict=False):
        sha, _, kind = line.partition(" ")
        if kind == "tree":
            trees[commit] = sha
    known = [(a, b) for a, b in wanted if a in trees and b in trees]
    headers = {pair: f"{trees[pair[0]]} {trees[pair[1]]}" for pair in known}
    by_header: dict[str, list[str]] = {}
    if known:
        out = proc.run(
            ["git", "-C", str(repo), "diff-tree", "-r", "--name-only", "-z", "--no-renames", "--stdin"],
            input="".join(h + "\n" for h in dict.fromkeys(headers.values())),
        ).stdout
        by_header = _paths_by_header(out)
    return {pair: frozenset(by_header.get(headers[pair], [])) if pair in headers else None for pair in wanted}
