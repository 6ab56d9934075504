"""Agents run without tmux (what the demo does on a machine that has none)."""

from __future__ import annotations

from pathlib import Path

from helpers import build_phase1_sandbox, git_in, stream_worktree

from coditect_cli.agents import scripted_agent_template
from coditect_cli.project import Project
from coditect_cli.services.launch import run_headless


def test_run_headless_sets_up_runs_every_agent_and_keeps_their_output(
    isolated_git: Path, tmp_path: Path
) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    codes = run_headless(Project(root), "phase-1", agent=scripted_agent_template(), day=1)
    assert codes == dict.fromkeys(["infra", "backend", "frontend", "deploy", "docs"], 0)
    # Each agent committed in its own worktree (setup ran first) and pushed its branch.
    worktree = stream_worktree(root, "backend", "backend")
    assert "backend" in git_in(worktree, "log", "-1", "--format=%s")
    assert git_in(worktree, "rev-parse", "HEAD") == git_in(worktree, "rev-parse", "@{upstream}")
    log = root / ".git" / "coditect" / "panes" / "phase-1" / "backend.log"
    assert "scripted agent for stream backend" in log.read_text(encoding="utf-8")


def test_run_headless_reports_a_failing_agent(isolated_git: Path, tmp_path: Path) -> None:
    root = build_phase1_sandbox(tmp_path / "sandbox")
    codes = run_headless(Project(root), "phase-1", agent="sh -c 'exit 3'", day=1)
    assert set(codes.values()) == {3}
