"""Hand-made faults around stream worktrees: no tmux installed, a worktree deleted by hand, ignored files.

Without tmux, ``streams status`` and ``streams stop --remove-worktrees`` still do what needs no tmux (the
worktrees) and report the panes as unavailable; ``sync evening --run-gates`` reports a deleted worktree per
stream instead of crashing; ``stop --remove-worktrees`` names the git-ignored files it deletes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import PHASE1_PAIRS, build_phase1_sandbox, run_cli, setup_with_cwd, stream_worktree


@pytest.fixture
def no_tmux_path(tmp_path: Path) -> str:
    """A PATH holding git and nothing else: tmux is "not installed"."""
    bin_dir = tmp_path / "bin-without-tmux"
    bin_dir.mkdir()
    git = shutil.which("git")
    assert git is not None
    (bin_dir / "git").symlink_to(git)
    assert shutil.which("tmux", path=str(bin_dir)) is None
    return str(bin_dir)


@pytest.fixture
def set_up(tmp_path: Path, isolated_git: Path) -> Path:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    return root


def test_status_without_tmux_reports_worktrees_and_panes_unavailable(set_up: Path, no_tmux_path: str) -> None:
    result = run_cli(["streams", "status", "--json"], cwd=set_up, env={"PATH": no_tmux_path})
    assert result.code == 0, result.output
    data = result.json()["data"]
    assert "tmux" in data["panes_unavailable"]
    assert {s["state"] for s in data["streams"]} == {"unavailable"}
    worktrees = [w for s in data["streams"] for w in s["worktrees"]]
    assert len(worktrees) == len(PHASE1_PAIRS) and all(w["exists"] for w in worktrees)
    human = run_cli(["streams", "status"], cwd=set_up, env={"PATH": no_tmux_path})
    assert human.code == 0 and "panes unavailable" in human.stdout


def test_stop_remove_worktrees_without_tmux_names_the_ignored_files_it_deletes(
    set_up: Path, no_tmux_path: str
) -> None:
    docs_root = stream_worktree(set_up, "docs", "root")
    (docs_root / "__pycache__").mkdir()
    (docs_root / "__pycache__" / "module.pyc").write_bytes(b"\0compiled")
    assert "__pycache__/" in (set_up / ".gitignore").read_text(encoding="utf-8")

    dry = run_cli(
        ["streams", "stop", "--remove-worktrees", "--dry-run"], cwd=set_up, env={"PATH": no_tmux_path}
    )
    assert dry.code == 0, dry.output
    assert "would delete with it 1 git-ignored file(s)/folder(s): __pycache__/" in dry.stdout
    assert (docs_root / "__pycache__" / "module.pyc").exists()

    result = run_cli(
        ["streams", "stop", "--remove-worktrees", "--json"], cwd=set_up, env={"PATH": no_tmux_path}
    )
    assert result.code == 0, result.output
    data = result.json()["data"]
    assert "tmux" in data["panes_unavailable"] and data["killed"] is False
    assert data["ignored_files_removed"] == {str(docs_root): ["__pycache__/"]}
    assert len(data["removed_worktrees"]) == len(PHASE1_PAIRS)
    assert not docs_root.exists()
    assert (set_up / "workstreams").is_dir()  # empty parents are pruned only up to the project root


def test_sync_evening_run_gates_reports_a_worktree_deleted_by_hand(set_up: Path) -> None:
    shutil.rmtree(stream_worktree(set_up, "backend", "backend"))
    result = run_cli(["sync", "evening", "--day", "2", "--run-gates", "--json"], cwd=set_up)
    assert result.code == 0, result.output
    streams = {s["stream"]: s for s in result.json()["data"]["streams"]}
    backend = streams["backend"]["gates"]
    assert backend and all(not g["passed"] and "no worktree" in g["error"] for g in backend)
    # The other streams' gates ran as usual.
    assert all("error" not in g for s, v in streams.items() if s != "backend" for g in v["gates"])
    assert any(g["passed"] for g in streams["infra"]["gates"])
