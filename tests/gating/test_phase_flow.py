"""The demo's scenario end to end on the phase-1 sandbox (superproject, three submodules, bare origins, a
private tmux server whose panes record what they are told): PRs opened and approved -> checkpoint 1 passes
-> frontend's breaking change is caught and left out at checkpoint 2 (its pane and its PR are told) ->
fixed -> merged at checkpoint 3 -> checkpoint 4 -> ``merge-phase --land`` tags v0.1.0 everywhere, the
superproject's v0.1.0 pointing its gitlinks at the submodules' v0.1.0 commits."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    PHASE1_REPOS,
    build_phase1_sandbox,
    git_in,
    kill_tmux_server,
    origin_of,
    repo_dir,
    stream_worktree,
)

from coditect_cli.project import Project
from coditect_cli.services import prs, reviews
from coditect_cli.services.checkpoint import run_checkpoint
from coditect_cli.services.demo import _commit
from coditect_cli.services.merge_phase import merge_phase
from coditect_cli.state import forge_records
from coditect_cli.state.store import Store

PHASE = "phase-1"
OWNERS = {
    "infra": "@cloud-architect",
    "backend": "@codi-code-architect",
    "frontend": "@codi-frontend-specialist",
    "deploy": "@codi-devops-engineer",
    "docs": "@codi-documentation-writer",
}


@pytest.fixture
def socket() -> Iterator[str]:
    name = f"coditect-gating-flow-{uuid.uuid4().hex[:8]}"
    yield name
    kill_tmux_server(name)


def commit(root: Path, stream: str, repo: str, path: str, text: str, message: str) -> None:
    ok, out = _commit(stream_worktree(root, stream, repo), path, text, message)
    assert ok, out


def wait_for(path: Path, needle: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def merged(result: object) -> list[tuple[str, int]]:
    return [(m["repo"], m["number"]) for m in result.merged]  # type: ignore[attr-defined]


def test_the_demo_scenario(isolated_git: Path, tmp_path: Path, socket: str) -> None:
    from coditect_cli.services.launch import launch

    root = build_phase1_sandbox(tmp_path / "sandbox")
    project = Project(root)
    panes = tmp_path / "panes"
    panes.mkdir()
    # Each stream's pane runs `cat`, appending what it is told to a file: the announcements are visible.
    launch(project, PHASE, attach=False, agent=f"cat >> {panes}/{{stream}}.txt", socket=socket, day=1)

    commit(
        root, "infra", "infra", "opentofu/modules/networking/main.tf", '\nresource "a" "b" {}\n', "feat: psc"
    )
    commit(
        root,
        "backend",
        "backend",
        "src/api/v1/auth.py",
        "\n\ndef refresh(t: str) -> str:\n    return t\n",
        "feat(auth): refresh",
    )
    commit(root, "frontend", "frontend", "tests/login.test.ts", "\n// FAIL_GATE\n", "test(ui): login")
    commit(root, "deploy", "backend", "Dockerfile", "\nHEALTHCHECK CMD true\n", "chore(deploy): healthcheck")
    commit(root, "docs", "root", "README.md", "\nSee the runbooks.\n", "docs: runbooks")
    prs.open_all(project, PHASE)
    for stream, owner in OWNERS.items():
        reviews.review(project, PHASE, stream, owner=owner, state="approved")

    first = run_checkpoint(project, PHASE, 1, socket=socket)
    assert first.status == "passed" and merged(first) == [("infra", 1), ("backend", 1)]
    assert sorted(first.announced["pause"]["delivered"]) == ["backend", "infra"]
    assert "checkpoint 1 of phase-1" in wait_for(panes / "infra.txt", "passed. Resume work.")

    second = run_checkpoint(project, PHASE, 2, socket=socket)
    assert second.status == "passed" and second.exit_code == 0 and merged(second) == []
    (left,) = second.left_out
    assert (left["repo"], left["number"], left["stream"], left["kind"]) == (
        "frontend",
        1,
        "frontend",
        "gates",
    )
    assert "frontend-integration+unit-tests" in left["reason"]
    told = wait_for(panes / "frontend.txt", "was left out")
    assert "Checkpoint 2: #1 (feature/phase-1/frontend/auth-ui" in told
    status = prs.pr_status(project, PHASE, "frontend")
    (view,) = status.rows
    assert view.checks_state == "failure" and not view.ready  # the head that broke the gates is marked
    with Store.open(root / ".git") as store:
        record = forge_records.pull_request(store, "frontend", 1)
        assert record is not None and "left out" in forge_records.comments(store, record.id)[0].body

    # The stream fixes it: a new head, no failing check on it.
    worktree = stream_worktree(root, "frontend", "frontend")
    test_file = worktree / "tests" / "login.test.ts"
    test_file.write_text(
        test_file.read_text(encoding="utf-8").replace("FAIL_GATE", "fixed"), encoding="utf-8"
    )
    subprocess.run(["git", "-C", str(worktree), "commit", "-qam", "fix(ui): the login test"], check=True)
    prs.open_all(project, PHASE)
    (stale,) = prs.pr_status(project, PHASE, "frontend").rows[0].stale  # approvals are of the old head
    assert stale.stale_paths == ("tests/login.test.ts",)
    reviews.review(project, PHASE, "frontend", owner=OWNERS["frontend"], state="approved")

    third = run_checkpoint(project, PHASE, 3, socket=socket)
    assert third.status == "passed" and merged(third) == [("frontend", 1), ("backend", 2)]
    fourth = run_checkpoint(project, PHASE, 4, socket=socket)
    assert fourth.status == "passed" and merged(fourth) == [("root", 1)]

    done = merge_phase(project, PHASE, land=True, socket=socket)
    assert done.status == "landed" and done.exit_code == 0
    tagged: dict[str, str] = {}
    for repo_id in PHASE1_REPOS:
        origin = origin_of(repo_dir(root, repo_id))
        assert origin is not None
        assert git_in(origin, "cat-file", "-t", "v0.1.0") == "tag", repo_id
        tagged[repo_id] = git_in(origin, "rev-parse", "v0.1.0^{commit}")
        assert git_in(origin, "rev-parse", "develop") == tagged[repo_id], repo_id
        assert git_in(origin, "rev-parse", "refs/tags/checkpoint/phase-1/4^{commit}"), repo_id
        if repo_id != "root":  # develop has the phase's integration tree
            assert git_in(origin, "rev-parse", "develop^{tree}") == git_in(
                origin, "rev-parse", "phase-1-integration^{tree}"
            )
    root_origin = origin_of(root)
    assert root_origin is not None
    for repo_id, path in PHASE1_REPOS.items():
        if repo_id == "root":
            continue
        line = git_in(root_origin, "ls-tree", "v0.1.0", "--", path)
        assert line.split()[:3] == ["160000", "commit", tagged[repo_id]], repo_id
    notes = git_in(root_origin, "tag", "-l", "--format=%(contents)", "v0.1.0")
    assert "- frontend#1: [phase-1] Frontend: auth-ui — checkpoint 3" in notes
    assert Path(str(done.report)).is_file()
