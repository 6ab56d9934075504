"""Fixtures of the forge tests: the fake GitHub server, and a GitHub forge pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakegithub import FakeGitHub

from coditect_cli.forge.base import ForgeRepo
from coditect_cli.forge.github import GitHubForge, GitHubOptions
from coditect_cli.forge.select import Secret

SLUG = "acme/app"
BASE = "phase-1-integration"
# Fast failure for tests: 2 s per attempt, two retries of safe calls, almost no backoff.
FAST = GitHubOptions(timeout=2, retries=2, backoff=0.01, backoff_max=0.05, write_interval=0, queue_poll=0.01)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    """A running fake GitHub with one repository, ``acme/app``, and its integration branch."""
    with FakeGitHub() as server:
        server.add_repo(SLUG, branches={BASE: "1" * 40, "main": "0" * 40})
        yield server


@pytest.fixture
def forge(fake: FakeGitHub) -> Iterator[GitHubForge]:
    """A GitHub forge talking to ``fake`` over HTTP."""
    made = GitHubForge(fake.base_url, Secret(fake.token), FAST)
    yield made
    made.close()


@pytest.fixture
def repo() -> ForgeRepo:
    """``acme/app`` as the forge sees it."""
    return ForgeRepo("app", Path("."), "https://github.example/acme/app.git", SLUG)
