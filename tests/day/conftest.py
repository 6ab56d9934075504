"""Fixtures of the day-capability tests.

Every module runs with ``CODITECT_TMUX_SOCKET`` set to a private socket name on which no server runs, so
``sync`` and ``status`` never read the user's default tmux server; the tests that launch panes start their
own private servers and name their sockets explicitly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from helpers import kill_tmux_server


@pytest.fixture(scope="module", autouse=True)
def _no_default_tmux() -> Iterator[str]:
    """Point coditect at a tmux socket where no server runs, for the whole module."""
    name = f"coditect-day-none-{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CODITECT_TMUX_SOCKET", name)
        yield name
    kill_tmux_server(name)
