"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
