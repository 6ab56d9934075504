"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# No warm server (coditect_cli.warm) behind the commands tests run: each test starts its own coditect, and a
# background server outliving the test is not wanted. tests/cli/test_warm.py turns it on where it is tested.
os.environ["CODITECT_SERVER"] = "0"

# Variables that would make git read a real user's configuration or act on another repository.
_GIT_LEAKS = (
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "EMAIL",
)


def _isolate_git(mp: pytest.MonkeyPatch, home: Path) -> Path:
    mp.setenv("HOME", str(home))
    mp.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in _GIT_LEAKS:
        mp.delenv(name, raising=False)
    return home


@pytest.fixture
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run git with an empty HOME and no system config (so no identity): returns the fake HOME."""
    return _isolate_git(monkeypatch, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def isolated_git_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``isolated_git`` for module-scoped fixtures (e.g. one sandbox shared by a test module)."""
    with pytest.MonkeyPatch.context() as mp:
        yield _isolate_git(mp, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="session")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One sandbox (built from workstreams/phase-1.yaml) for the whole session: returns its root.

    Treat it as read-only: a test that plants a file in it removes the file again.
    """
    from coditect_cli.sandbox import build_sandbox

    with pytest.MonkeyPatch.context() as mp:
        _isolate_git(mp, tmp_path_factory.mktemp("home"))
        sandbox = build_sandbox(
            tmp_path_factory.mktemp("shared") / "sandbox",
            Path(__file__).resolve().parents[1] / "workstreams" / "phase-1.yaml",
        )
    yield sandbox.root


@pytest.fixture
def served_env(isolated_git: Path) -> Iterator[dict[str, str]]:
    """Warm serving on (coditect_cli.warm), its sockets in a private TMPDIR (short: a socket's path has at
    most 107 bytes). Every server started there, and every worker of theirs, is stopped afterwards."""
    import shutil
    import signal
    import tempfile

    from tests.helpers import alive, processes_mentioning, retry_until

    tmpdir = Path(tempfile.mkdtemp(prefix="cw-", dir="/tmp"))
    yield {"CODITECT_SERVER": "1", "TMPDIR": str(tmpdir), "CODITECT_SERVER_IDLE": "60"}
    for pid in processes_mentioning(str(tmpdir)):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        retry_until(lambda p=pid: alive(p), lambda running: not running)
    shutil.rmtree(tmpdir, ignore_errors=True)
