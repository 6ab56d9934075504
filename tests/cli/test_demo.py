"""``coditect demo``: builds the sandbox, validates and plans in it; rebuilds its own; refuses others."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import git_refs, kill_tmux_server, run_cli

from coditect_cli.render.envelope import ENVELOPE_KEYS
from coditect_cli.services.demo import demo_socket


@pytest.fixture
def demo_target(tmp_path: Path) -> Iterator[Path]:
    """Where the demo builds its sandbox; its private tmux server is ended afterwards."""
    target = tmp_path / "demo"
    yield target
    kill_tmux_server(demo_socket(target / "coditect-rollout-master"))


def _plan_steps(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's steps in the demo's data: its ``plan`` (or the ``setup`` that carried the plan out)."""
    for key in ("plan", "setup"):
        if isinstance(data.get(key), dict) and "steps" in data[key]:
            return list(data[key]["steps"])
    raise AssertionError(f"no plan steps in the demo data (keys: {sorted(data)})")


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_demo_builds_validates_plans_and_rebuilds_with_json(demo_target: Path, isolated_git: Path) -> None:
    target = demo_target
    code, out, err = run_cli(["demo", "--dir", str(target)])
    assert code == 0, err
    assert "Built the sandbox" in out
    assert "phase phase-1 is valid" in out
    assert re.search(r"phase-1: \d+ step\(s\)", out), out  # the plan (or the setup carrying it out)
    root = target / "coditect-rollout-master"
    assert (root / "workstreams" / "phase-1.yaml").is_file()
    assert f"cd {root}" in out
    assert "Traceback" not in out + err
    assert "refs/heads/develop" in git_refs(root)

    # Following the printed next step works.
    code, out, err = run_cli(["plan"], cwd=root)
    assert code == 0, err
    assert "phase-1" in out

    # Running it again on the same directory rebuilds the sandbox; --json carries the same facts.
    (root / "scratch.txt").write_text("left over\n", encoding="utf-8")
    code, out, err = run_cli(["demo", "--dir", str(target), "--json"])
    assert code == 0, err
    assert not (root / "scratch.txt").exists()
    payload = json.loads(out)
    assert list(payload) == list(ENVELOPE_KEYS)
    assert payload["ok"] is True and payload["exit_code"] == 0 and payload["command"] == "demo"
    data = payload["data"]
    assert data["rebuilt"] is True
    assert Path(data["sandbox"]) == root
    assert set(data["origins"]) == {
        "coditect-rollout-master",
        "coditect-cloud-infra",
        "coditect-cloud-backend",
        "coditect-cloud-frontend",
    }
    assert all(Path(p).is_dir() for p in data["origins"].values())
    assert data["validate"]["valid"] is True
    steps = _plan_steps(data)
    assert {s["kind"] for s in steps} >= {"CreateBranch", "AddWorktree", "WriteCodeowners", "Push"}
    assert sum(1 for s in steps if s["kind"] == "AddWorktree") == 9
    # The agents ran in their panes and exited 0; the guard refused deploy's commit in backend's src/.
    assert data["launch"]["exit_codes"] == dict.fromkeys(
        ["infra", "backend", "frontend", "deploy", "docs"], 0
    )
    refused = [r for r in data["guard"] if not r["committed"]]
    assert [(r["stream"], r["path"]) for r in refused] == [("deploy", "src/api/v1/auth.py")]
    assert "owned by backend" in refused[0]["guard"]
    # The planted overlapping edit on the shared openapi.yaml is predicted as a conflict.
    backend = next(r for r in data["conflicts"]["repositories"] if r["repo"] == "backend")
    assert any(p["conflict"] and "openapi.yaml" in p["paths"] for p in backend["pairs"])
    # A PR per stream with commits, on the local forge.
    assert {o["stream"] for o in data["prs"]["opened"]} >= {"infra", "backend", "frontend", "deploy", "docs"}
    # The syncs wrote their reports; the dashboard ends at 100 %.
    reports = root / "workstreams" / "reports" / "phase-1"
    assert (reports / "day-01-morning.md").read_text().startswith("# Daily Sync - Day 1")
    assert (reports / "day-01-evening.md").read_text().startswith("# End of Day Review - Day 1")
    assert data["status_day12"]["percent"] == 100
    assert [c["state"] for c in data["status_day12"]["checkpoints"]] == ["passed"] * 4
    # Checkpoint 1 passes; checkpoint 2 leaves frontend's breaking change out; checkpoint 3 merges the fix.
    assert data["checkpoint_1"]["status"] == "passed" and data["checkpoint_1"]["merged"]
    (left,) = data["checkpoint_2"]["left_out"]
    assert (left["stream"], left["kind"]) == ("frontend", "gates")
    assert ("frontend", "frontend") in {(m["stream"], m["repo"]) for m in data["checkpoint_3"]["merged"]}
    # merge-phase lands the phase on develop and tags v0.1.0 in every repository's origin.
    assert data["merge_phase"]["status"] == "landed"
    for origin in data["origins"].values():
        tag = subprocess.run(
            ["git", "-C", origin, "cat-file", "-t", "v0.1.0"], capture_output=True, text=True
        )
        assert tag.stdout.strip() == "tag", origin
    assert any(line.startswith("merge-phase: landed") for line in data["summary"])
    assert "conflicts predicted: 1 (resolved by backend before review: openapi.yaml)" in data["summary"]
    done = data["setup"]["done"]
    assert f"setup: {len(done)} step(s) across 4 repositories, 9 worktrees" in data["summary"]
    assert (
        "agents: 5 tmux panes, exit codes: infra 0, backend 0, frontend 0, deploy 0, docs 0"
        in data["summary"]
    )


def test_demo_refuses_a_foreign_directory(tmp_path: Path, isolated_git: Path) -> None:
    target = tmp_path / "precious"
    (target / "sub").mkdir(parents=True)
    (target / "notes.txt").write_text("do not touch\n", encoding="utf-8")
    (target / "sub" / "data.bin").write_bytes(b"\x00\x01")
    before = _tree(target)

    code, out, err = run_cli(["demo", "--dir", str(target)])
    assert code == 4, out + err
    assert "refusing" in err
    assert "Traceback" not in out + err
    assert _tree(target) == before
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt", "sub"]

    code, out, _ = run_cli(["demo", "--dir", str(target), "--json"])
    assert code == 4
    payload = json.loads(out)
    assert payload["exit_code"] == 4 and payload["ok"] is False
    assert payload["error"]["code"] == "refused"
    assert _tree(target) == before
