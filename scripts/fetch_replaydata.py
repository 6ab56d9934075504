#!/usr/bin/env python3
"""Fetch GitHub exchanges recorded against the real api.github.com, for the forge's contract tests.

PyGithub's source distribution ships ``tests/ReplayData/*.txt``: requests its test suite sent to GitHub and the
answers GitHub gave (status, headers, body). They are not committed here (size, licence); CI fetches them:

    python3 scripts/fetch_replaydata.py            # prints the directory

It downloads the sdist of the installed PyGithub version with ``pip download --no-deps --no-binary :all:`` and
extracts ``tests/ReplayData`` into ``tests/.replaydata/PyGithub-<version>/ReplayData`` (once; kept afterwards).
Exit status 1, with pip's reason, when it cannot: the contract tests then fail rather than skip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "tests" / ".replaydata"


def replay_dir(version: str | None = None) -> Path:
    """Where the ReplayData of PyGithub ``version`` (default: the installed one) is kept."""
    return CACHE / f"PyGithub-{version or metadata.version('PyGithub')}" / "ReplayData"


def fetch(version: str | None = None) -> Path:
    """The ReplayData directory, downloaded and extracted first when missing (RuntimeError when that fails)."""
    version = version or metadata.version("PyGithub")
    target = replay_dir(version)
    if target.is_dir() and any(target.glob("*.txt")):
        return target
    with tempfile.TemporaryDirectory(prefix="pygithub-sdist-") as tmp:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"PyGithub=={version}",
                "-d",
                tmp,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        archives = list(Path(tmp).glob("*.tar.gz"))
        if done.returncode != 0 or not archives:
            raise RuntimeError(
                f"pip download of the PyGithub {version} sdist failed: {done.stderr.strip()[-500:]}"
            )
        staging = target.parent / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(archives[0]) as archive:
            members = [m for m in archive.getmembers() if "/tests/ReplayData/" in m.name and m.isfile()]
            if not members:
                raise RuntimeError(f"the PyGithub {version} sdist has no tests/ReplayData")
            for member in members:
                member.name = Path(member.name).name
                archive.extract(member, staging / "ReplayData", filter="data")
        shutil.rmtree(target, ignore_errors=True)
        (staging / "ReplayData").rename(target)
        shutil.rmtree(staging, ignore_errors=True)
    return target


def main() -> int:
    try:
        print(fetch())
    except RuntimeError as exc:
        print(f"fetch_replaydata: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
