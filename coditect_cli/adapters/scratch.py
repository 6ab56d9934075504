"""Throw-away directories (object directories, index files): named with the id of the process that made them,
so what a killed run leaves behind can be told from what a live one uses, and removed by the next run."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

_NAME = re.compile(r"^coditect-(objects|index)-(\d+)-")


@contextmanager
def scratch_dir(kind: str, parent: str | None = None) -> Iterator[str]:
    """A new directory ``coditect-<kind>-<pid>-*`` (in ``parent``, else the temporary directory), removed
    afterwards."""
    path = tempfile.mkdtemp(prefix=f"coditect-{kind}-{os.getpid()}-", dir=parent)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(parents: Iterable[str | None]) -> list[Path]:
    """Remove the scratch directories of processes that are gone, in each of ``parents`` (None: the
    temporary directory); return them."""
    removed: list[Path] = []
    for parent in dict.fromkeys(parents):
        top = Path(parent or tempfile.gettempdir())
        try:
            entries = list(top.iterdir())
        except OSError:
            continue
        for entry in entries:
            found = _NAME.match(entry.name)
            if found and int(found.group(2)) != os.getpid() and not _alive(int(found.group(2))):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed
