"""Fixtures for the state-store tests: a fresh store in a throw-away git common directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coditect_cli.state import Store


@pytest.fixture
def common_dir(tmp_path: Path) -> Path:
    path = tmp_path / "project.git"
    path.mkdir()
    return path


@pytest.fixture
def store(common_dir: Path) -> Iterator[Store]:
    with Store.open(common_dir) as opened:
        yield opened
