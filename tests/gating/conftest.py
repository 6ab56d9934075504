"""Fixtures of the gating tests (helpers live in gating_helpers.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from gating_helpers import MakeTiny, Snapshot, Tiny, build_tiny


@pytest.fixture
def gate_counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where gate.py appends a line per run (GATE_COUNTER, inherited by subprocesses)."""
    counter = tmp_path / "gate-runs.txt"
    monkeypatch.setenv("GATE_COUNTER", str(counter))
    return counter


@pytest.fixture(scope="session")
def _tiny_cache() -> dict[tuple[object, ...], tuple[Tiny, Snapshot]]:
    return {}


@pytest.fixture
def make_tiny(
    _tiny_cache: dict[tuple[object, ...], tuple[Tiny, Snapshot]],
    tmp_path_factory: pytest.TempPathFactory,
    isolated_git: Path,
    gate_counter: Path,
) -> MakeTiny:
    """``make_tiny(n, shared=False, open_prs=True, bad=None)``: a tiny project, built once per session and
    variant, then restored in place for each test (so its absolute paths stay valid). ``bad``: the stream
    whose PR breaks the gate."""

    def make(
        n: int, *, shared: bool = False, open_prs: bool = True, bad: int | None = None
    ) -> tuple[Tiny, Snapshot]:
        key = (n, shared, open_prs, bad)
        if key in _tiny_cache:
            tiny, snapshot = _tiny_cache[key]
            snapshot.restore()
        else:
            base = tmp_path_factory.mktemp(f"tiny-{n}")
            tiny = build_tiny(base, n, shared=shared, open_prs=open_prs)
            if bad is not None:
                from coditect_cli.project import Project
                from coditect_cli.services import prs, reviews

                tiny.commit(bad, f"s{bad}/work.txt", "FAIL_GATE\n", "feat: breaks the gate")
                if open_prs:
                    prs.open_all(Project(tiny.root), "phase-1")
                    # Its owner approves the new head (an approval counts for the head it reviewed).
                    reviews.review(
                        Project(tiny.root), "phase-1", f"s{bad}", owner=f"@agent{bad}", state="approved"
                    )
            snapshot = Snapshot(base)
            _tiny_cache[key] = (tiny, snapshot)
        tiny.counter = gate_counter
        return tiny, snapshot

    return make


@pytest.fixture
def socket_name(tmp_path: Path) -> Iterator[str]:
    """A tmux socket with no server on it: announcements are skipped, and say so."""
    yield f"coditect-gating-test-{os.getpid()}-{abs(hash(str(tmp_path))) % 100000}"
