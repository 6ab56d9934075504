"""A fake GitHub REST/GraphQL server for tests and the forge benchmark (see :mod:`fakegithub.server`)."""

from __future__ import annotations

from .server import API_PREFIX, DEFAULT_TOKEN, FakeGitHub, FakeRepo, Fault, Recorded

__all__ = ["API_PREFIX", "DEFAULT_TOKEN", "FakeGitHub", "FakeRepo", "Fault", "Recorded"]
