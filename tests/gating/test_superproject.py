"""The superproject's gates see its submodules at the staged commits, and merge-phase gates the very
combination it releases (the superproject's gitlinks commit) before it moves or tags anything."""

from __future__ import annotations

import signal
from pathlib import Path

from gating_helpers import Super, build_super, git
from helpers import coditect

INTEGRATION = "phase-1-integration"


def refs(made: Super) -> dict[str, str]:
    out: dict[str, str] = {}
    for label, repo in (
        ("root", made.root),
        ("lib", made.sub),
        ("origin", made.origin),
        ("lib-origin", made.sub_origin),
    ):
        for line in git(repo, "for-each-ref", "--format=%(objectname) %(refname)").splitlines():
            sha, name = line.split(" ", 1)
            out[f"{label}:{name}"] = sha
    return out


def gitlink(repo: Path, commit: str) -> str:
    return git(repo, "rev-parse", f"{commit}:sub")


def test_checkpoint_gates_of_the_superproject_see_the_staged_submodule(
    isolated_git: Path, tmp_path: Path
) -> None:
    made = build_super(tmp_path)
    done = coditect(made.root, "checkpoint", "1", "--json", "--socket", f"none-{tmp_path.name}")
    assert done.code == 0, done.output
    data = done.json()["data"]
    assert data["status"] == "passed" and sorted(m["repo"] for m in data["merged"]) == ["lib", "root"]
    staged = data["repos"]["lib"]["tested"]
    assert data["repos"]["root"]["submodules"] == {"sub": staged}
    # The log of the superproject's gate names the submodule commit it ran with.
    (round_,) = [r for r in data["rounds"] if "root" in r["repos"]]
    log = Path(round_["repos"]["root"]["gates"][0]["log"]).read_text(encoding="utf-8")
    assert f"# submodule sub at {staged}" in log and "combination ok" in log
    assert "coditect-gate" not in git(made.root, "worktree", "list")
    assert "coditect-gate" not in git(made.sub, "worktree", "list")


def test_merge_phase_gates_the_gitlinks_commit_before_moving_anything(
    isolated_git: Path, tmp_path: Path
) -> None:
    made = build_super(tmp_path)
    socket = f"none-{tmp_path.name}"
    before = refs(made)
    # Killed right after the gate step: the combination was gated, and nothing moved or was tagged yet.
    killed = coditect(
        made.root,
        "merge-phase",
        "--land",
        "--force",
        "demo",
        "--socket",
        socket,
        env={"CODITECT_TEST_KILL_AT": "3"},
    )
    assert killed.code == -signal.SIGKILL, killed.output
    assert refs(made) == before
    done = coditect(made.root, "merge-phase", "--continue", "--json", "--socket", socket)
    assert done.code == 0, done.output
    assert done.json()["data"]["status"] == "landed"
    lib_integration = git(made.sub_origin, "rev-parse", INTEGRATION)
    # The superproject's integration branch went to the gated commit (gitlinks at the staged library), then
    # to the commit pointing at the released library, whose tree is the staged one.
    tip = git(made.origin, "rev-parse", INTEGRATION)
    gated = git(made.origin, "rev-parse", f"{INTEGRATION}^")
    assert gitlink(made.origin, gated) == lib_integration
    released = git(made.sub_origin, "rev-parse", "v0.1.0^{commit}")
    assert gitlink(made.origin, tip) == released
    assert git(made.sub_origin, "rev-parse", f"{released}^{{tree}}") == git(
        made.sub_origin, "rev-parse", f"{lib_integration}^{{tree}}"
    )
    assert gitlink(made.origin, "v0.1.0^{commit}") == released
    assert git(made.origin, "rev-parse", "develop") == git(made.origin, "rev-parse", "v0.1.0^{commit}")
    # The suite ran on the gated commit, with the library checked out at its staged commit.
    logs = sorted((made.root / ".git" / "coditect" / "logs" / "phase-1" / "merge-phase").rglob("*suite*.log"))
    texts = [p.read_text(encoding="utf-8") for p in logs]
    assert any(f"commit {gated}" in t and f"# submodule sub at {lib_integration}" in t for t in texts), texts


def test_a_combination_that_fails_moves_nothing_in_any_repository(isolated_git: Path, tmp_path: Path) -> None:
    # The library's change passes on its own (it has no gate) but breaks the superproject's suite.
    made = build_super(tmp_path, library_change="NEW\nBROKEN\n")
    before = refs(made)
    done = coditect(
        made.root, "merge-phase", "--land", "--force", "demo", "--json", "--socket", f"none-{tmp_path.name}"
    )
    assert done.code == 3, done.output
    data = done.json()["data"]
    assert data["status"] == "failed" and data["repos"]["root"]["failing"] == ["suite"]
    after = refs(made)
    moved = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    # No branch or tag moved anywhere (remote-tracking refs may have been fetched).
    assert not [k for k in moved if "/heads/" in k or "/tags/" in k], moved
    assert git(made.sub_origin, "rev-parse", INTEGRATION) == before[f"lib-origin:refs/heads/{INTEGRATION}"]
