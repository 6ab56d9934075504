"""Merges computed in the object database, many per git process: ``git merge-tree --write-tree --stdin``.

Two facts of git 2.39 shape this module:

* ``merge-tree`` exits non-zero both for a conflict and for a ref it cannot resolve, and in ``--stdin``
  mode it *dies* (exit 128, later pairs never merged) on an unknown ref, a non-commit or unrelated
  histories. So every ref is verified first (:func:`verify_refs`, one ``cat-file --batch-check``
  process) and only known commits are fed; if git still dies mid-batch, the records already written are
  kept, the pair it died on becomes an error result, and the rest is fed to a new process.
* ``--write-tree`` writes the merged trees and blobs (conflict markers included) into the object database.
  They go to a throw-away object directory (the repository's own is an alternate, read-only), so
  predicting conflicts leaves no loose objects behind.

Output of ``git merge-tree --write-tree --stdin -z --name-only --messages``, one record per input line::

    <status> NUL <tree> NUL (<conflicted path> NUL)* NUL
    (<N> NUL <path> NUL ...N paths... <type> NUL <message> NUL)* NUL

``status`` is ``1`` (clean) or ``0`` (conflicts); the types are e.g. ``Auto-merging``,
``CONFLICT (contents)``, ``CONFLICT (modify/delete)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from coditect_cli.adapters import proc
from coditect_cli.adapters.memo import Memo, is_object_id
from coditect_cli.adapters.scratch import scratch_dir, sweep
from coditect_cli.domain.conflicts import MergeMessage, MergeResult
from coditect_cli.errors import CommandFailed

__all__ = ["MergeMessage", "MergeResult", "MergeTreeFormatError", "merge_tree_batch", "verify_refs"]

_HEX = frozenset("0123456789abcdef")
_MERGES: Memo[tuple[str, str, str], MergeResult] = Memo(8192)
"""Merges of two commits by (repository, ours, theirs): the same two commits always merge the same way."""


class MergeTreeFormatError(ValueError):
    """``git merge-tree`` printed something this parser does not understand."""


def _usable(ref: str) -> bool:
    # A line of cat-file / merge-tree input: no whitespace, not empty, not an option.
    return bool(ref) and not ref.startswith("-") and not any(c.isspace() for c in ref)


def verify_refs(git_dir_path: str | Path, refs: Iterable[str]) -> dict[str, str | None]:
    """Every ref in ``refs`` mapped to the commit it names, or None when it names no commit.

    One ``git cat-file --batch-check`` process however many refs; annotated tags are peeled to their
    commit, and anything that is not a commit (a tree, a blob, an unknown or ambiguous name) maps to None.
    """
    wanted = list(dict.fromkeys(refs))
    out: dict[str, str | None] = dict.fromkeys(wanted)
    asked = [r for r in wanted if _usable(r)]
    if not asked:
        return out
    done = proc.run(
        ["git", "-C", str(git_dir_path), "cat-file", "--batch-check=%(objectname) %(objecttype)"],
        input="".join(f"{r}^{{commit}}\n" for r in asked),
    )
    lines = done.stdout.splitlines()
    if len(lines) != len(asked):
        raise CommandFailed(
            list(done.argv),
            done.returncode,
            f"{len(asked)} refs asked, {len(lines)} answers: {done.stdout!r}",
        )
    for ref, line in zip(asked, lines, strict=True):
        sha, _, kind = line.partition(" ")
        if kind == "commit" and len(sha) >= 40 and set(sha) <= _HEX:
            out[ref] = sha
    return out


def _object_dir(repo_path: Path) -> Path | None:
    """The repository's object directory (absolute), or None when git cannot tell."""
    from coditect_cli.adapters.git import objects_dir

    return objects_dir(repo_path)


def _scratch_parent() -> str | None:
    """Where the throw-away object directory goes: ``$TMPDIR`` when set, else ``/dev/shm`` when it is a
    writable tmpfs (writing a loose object per merge costs several times less there), else the default."""
    if os.environ.get("TMPDIR"):
        return None
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _parse(stdout: str, pairs: Sequence[tuple[str, str]]) -> list[MergeResult]:
    """The complete records in ``stdout`` (a process that died may leave fewer records than pairs)."""
    tokens = stdout.split("\0")
    n = len(tokens)
    results: list[MergeResult] = []
    i = 0
    while len(results) < len(pairs) and i < n:
        start = i
        status = tokens[i]
        if status == "" and i == n - 1:  # what follows the last NUL
            break
        if status not in ("0", "1"):
            raise MergeTreeFormatError(f"record {len(results) + 1}: status {status!r} is not 0 or 1")
        if i + 1 >= n:
            break
        tree = tokens[i + 1]
        i += 2
        paths: list[str] = []
        while i < n and tokens[i] != "":
            paths.append(tokens[i])
            i += 1
        i += 1  # the empty line before the messages
        messages: list[MergeMessage] = []
        complete = False
        while i < n:
            count = tokens[i]
            if count == "":
                complete = i < n - 1  # the token after the last NUL is no terminator
                i += 1
                break
            if not count.isdigit():
                raise MergeTreeFormatError(f"record {len(results) + 1}: path count {count!r} expected")
            k = int(count)
            if i + k + 2 >= n - 1:  # the message text is not NUL-terminated yet
                break
            names = tuple(tokens[i + 1 : i + 1 + k])
            kind, text = tokens[i + 1 + k], tokens[i + 2 + k]
            messages.append(MergeMessage(names, kind, text.rstrip("\n")))
            i += k + 3
        if not complete:
            i = start
            break
        ours, theirs = pairs[len(results)]
        results.append(
            MergeResult(
                ours,
                theirs,
                status == "1",
                tuple(dict.fromkeys(paths)),
                tree if tree and set(tree) <= _HEX else None,
                tuple(messages),
            )
        )
    return results


@dataclass(frozen=True)
class Scratch:
    """A throw-away object directory: the environment and git options that send new objects there."""

    env: dict[str, str]
    options: tuple[str, ...]


@contextmanager
def scratch_objects(repo: Path) -> Iterator[Scratch]:
    """New objects go to a temporary directory (the repository's own objects readable behind it), deleted
    afterwards: predicting merges leaves nothing behind. A tmpfs is used when there is one; objects that are
    thrown away are neither compressed nor synced."""
    objects = _object_dir(repo)
    if objects is None:
        yield Scratch({}, ())
        return
    with scratch_dir("objects", _scratch_parent()) as scratch:
        yield Scratch(
            {"GIT_OBJECT_DIRECTORY": scratch, "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects)},
            ("-c", "core.fsync=none", "-c", "core.looseCompression=0"),
        )


def sweep_scratch() -> list[Path]:
    """Remove the scratch object directories and index files that killed coditect processes left."""
    return sweep([None, _scratch_parent()])


def merge_tree_batch(
    repo_path: str | Path,
    pairs: Sequence[tuple[str, str]],
    *,
    keep_objects: bool = False,
    scratch: Scratch | None = None,
    ids: Mapping[str, str | None] | None = None,
) -> list[MergeResult]:
    """Merge each ``(ours, theirs)`` of ``pairs`` in the repository at ``repo_path``; one result per pair.

    One ``git merge-tree --stdin`` process for the whole batch; a pair git refuses (unrelated histories,
    unknown ref) becomes a result with ``error`` set and costs one more process for the pairs after it.
    The merged objects go to a scratch directory: the caller's ``scratch`` (to read the merged trees after),
    else a new one deleted at once, or the repository itself with ``keep_objects``. Verify the refs with
    :func:`verify_refs` first: this function trusts them.

    ``ids`` maps refs of ``pairs`` to the commits they name now (refs that are commit ids need none): a pair
    of commits this process merged before is then answered from memory when the answer cannot depend on
    the names given (a clean merge; a conflict names its sides in paths such as ``d~<ours>``).
    """
    pairs = list(pairs)
    if not pairs:
        return []
    for ours, theirs in pairs:
        if not (_usable(ours) and _usable(theirs)):
            raise ValueError(f"cannot feed {ours!r} {theirs!r} to git merge-tree --stdin")
    repo = Path(repo_path)
    keys = [_key(repo, pair, ids) for pair in pairs]
    if scratch is not None or keep_objects:
        # The caller reads the merged trees afterwards: they must be in its object directory, so merge.
        results = _merge_batch(repo, pairs, scratch or Scratch({}, ()))
        _remember(keys, results)
        return results
    known: dict[int, MergeResult] = {}
    for i, (pair, key) in enumerate(zip(pairs, keys, strict=True)):
        found = _MERGES.get(key) if key is not None else None
        if found is not None and (found.clean or (found.ours, found.theirs) == pair):
            known[i] = replace(found, ours=pair[0], theirs=pair[1])
    missing = [i for i in range(len(pairs)) if i not in known]
    if missing:
        with scratch_objects(repo) as own:
            merged = _merge_batch(repo, [pairs[i] for i in missing], own)
        _remember([keys[i] for i in missing], merged)
        known.update(zip(missing, merged, strict=True))
    return [known[i] for i in range(len(pairs))]


def _key(
    repo: Path, pair: tuple[str, str], ids: Mapping[str, str | None] | None
) -> tuple[str, str, str] | None:
    """The memory's key of merging ``pair``: the repository and the two commit ids (None when unknown)."""
    ours, theirs = ((ids.get(ref) if ids is not None else None) or ref for ref in pair)
    return (str(repo), ours, theirs) if is_object_id(ours) and is_object_id(theirs) else None


def _remember(keys: Sequence[tuple[str, str, str] | None], results: Sequence[MergeResult]) -> None:
    """Keep the merges git completed (an error may not recur: a fetch brings the missing object)."""
    for key, result in zip(keys, results, strict=True):
        if key is not None and result.error is None:
            _MERGES.put(key, result)


def _merge_batch(repo: Path, pairs: list[tuple[str, str]], scratch: Scratch) -> list[MergeResult]:
    env, options = scratch.env, list(scratch.options)
    results: list[MergeResult] = []
    while len(results) < len(pairs):
        rest = pairs[len(results) :]
        done = proc.run(
            [
                "git",
                "-C",
                str(repo),
                *options,
                "merge-tree",
                "--write-tree",
                "--stdin",
                "-z",
                "--name-only",
                "--messages",
            ],
            input="".join(f"{a} {b}\n" for a, b in rest),
            env=env,
            check=False,
        )
        got = _parse(done.stdout, rest)
        results.extend(got)
        if len(got) == len(rest):
            break
        if done.returncode == 0:
            raise MergeTreeFormatError(
                f"git merge-tree answered {len(got)} of {len(rest)} merges: {done.stdout[-200:]!r}"
            )
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1].removeprefix("fatal: ") if lines else f"git merge-tree exit {done.returncode}"
        ours, theirs = rest[len(got)]
        results.append(MergeResult(ours, theirs, False, error=reason))
    return results
