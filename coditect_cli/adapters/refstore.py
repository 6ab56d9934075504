"""Refs read from the repository's files, as ``git for-each-ref`` lists them, without starting git.

A status or a sync reads every repository's branch tips on each run; a ``for-each-ref`` process per read
was most of what such a command spent once coditect itself was loaded. The files backend git uses by
default is documented (gitrepository-layout): a ref is a loose file ``<common dir>/<refname>`` holding an
object id (or ``ref: <target>`` for a symbolic ref), else a line ``<id> <refname>`` of ``packed-refs``
(lines starting with ``#`` or ``^`` carry no ref); a loose file wins over its packed line. Loose refs are
read before ``packed-refs``: ``git pack-refs`` writes the packed file before it deletes the loose ones, so
a ref being packed is found either way.

Anything this reader does not understand it leaves to git (:func:`read_refs` answers None): the reftable
backend, ``GIT_DIR`` and friends in the environment, glob patterns, a ref file it cannot parse, a pattern
outside ``refs/heads``, ``refs/remotes`` and ``refs/tags``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

_OID = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_SHARED = ("refs/heads", "refs/remotes", "refs/tags")
_GIT_ENV = ("GIT_DIR", "GIT_COMMON_DIR", "GIT_WORK_TREE", "GIT_NAMESPACE", "GIT_REF_PARANOIA")


def read_refs(path: Path, patterns: Sequence[str]) -> dict[str, str] | None:
    """The refs of the repository at ``path`` (a work tree, a worktree or a bare repository) that match
    ``patterns`` as ``for-each-ref`` matches them (a whole ref name, or a prefix ending at a ``/``), mapped
    to their object ids and sorted by name; None when git must be asked instead (see the module doc)."""
    if not patterns or any(os.environ.get(name) for name in _GIT_ENV):
        return None
    prefixes: list[str] = []
    for pattern in patterns:
        if any(c in pattern for c in "*?[\\") or ".." in pattern:
            return None
        clean = pattern.rstrip("/")
        if not any(clean == top or clean.startswith(top + "/") for top in _SHARED):
            return None
        prefixes.append(clean)
    common = _common_dir(path)
    if common is None or (common / "reftable").exists():
        return None
    loose: dict[str, str] = {}
    symbolic: dict[str, str] = {}
    for prefix in dict.fromkeys(prefixes):
        if not _read_loose(common, prefix, loose, symbolic):
            return None
    packed = _read_packed(common)
    if packed is None:
        return None
    found = {**packed, **loose}
    for name, target in symbolic.items():
        if target not in found and any(target.startswith(top + "/") for top in _SHARED):
            extra: dict[str, str] = {}
            if not _read_one(str(common), target, extra, {}):
                return None
            found.update(extra)
        if target in found:  # a symbolic ref shows its target's id; a dangling one is not listed
            found[name] = found[target]
        elif not any(target.startswith(top + "/") for top in _SHARED):
            return None  # pointing somewhere this reader does not look
    return {
        name: oid
        for name, oid in sorted(found.items())
        if any(name == p or name.startswith(p + "/") for p in prefixes)
    }


def _common_dir(path: Path) -> Path | None:
    """The git dir holding the shared refs of ``path``: ``.git`` (or what a ``.git`` file names, then its
    ``commondir``), or ``path`` itself when it is a bare repository."""
    from coditect_cli.adapters.worktree_state import layout

    if (path / ".git").exists():
        lay = layout(path)
        return lay.common if lay is not None else None
    if (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir():
        return path
    return None


def _read_loose(common: Path, prefix: str, into: dict[str, str], symbolic: dict[str, str]) -> bool:
    """Add the loose refs at or under ``prefix``; False when one cannot be read as git writes them."""
    base = str(common)
    top = os.path.join(base, prefix)
    if os.path.isfile(top):
        return _read_one(base, prefix, into, symbolic)
    todo = [prefix]
    while todo:
        rel = todo.pop()
        try:
            listing = os.scandir(os.path.join(base, rel))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            return False
        with listing:
            for item in listing:
                name = f"{rel}/{item.name}"
                if item.is_dir(follow_symlinks=False):
                    todo.append(name)
                elif item.name.endswith(".lock"):
                    continue  # a ref being written: its old value is still in packed-refs or gone
                elif not _read_one(base, name, into, symbolic):
                    return False
    return True


def _read_one(base: str, name: str, into: dict[str, str], symbolic: dict[str, str]) -> bool:
    try:
        with open(os.path.join(base, name), "rb") as file:
            text = file.read().decode("utf-8").strip()
    except FileNotFoundError:
        return True  # deleted (or packed) while read: packed-refs, read afterwards, has it if it exists
    except (OSError, UnicodeDecodeError):
        return False
    if text.startswith("ref:"):
        symbolic[name] = text[4:].strip()
        return True
    if not _OID.match(text):
        return False
    into[name] = text
    return True


def _read_packed(common: Path) -> dict[str, str] | None:
    try:
        text = (common / "packed-refs").read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError):
        return None
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line[0] in "#^":
            continue
        oid, _, name = line.partition(" ")
        if not _OID.match(oid) or not name:
            return None
        out[name] = oid
    return out
