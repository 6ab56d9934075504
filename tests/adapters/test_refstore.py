"""refstore.read_refs lists what ``git for-each-ref`` lists, read from the files, or says git must answer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from coditect_cli.adapters.refstore import read_refs

PATTERNS = [
    ["refs/heads"],
    ["refs/heads/"],
    ["refs/heads", "refs/remotes/origin"],
    ["refs/remotes/origin/"],
    ["refs/heads/main"],
    ["refs/heads/fe"],  # not a prefix ending at a slash: matches nothing
    ["refs/heads/feature"],
    ["refs/tags/"],
    ["refs/remotes/origin/HEAD"],
]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _git_lists(path: Path, patterns: list[str]) -> dict[str, str]:
    out = _git(path, "for-each-ref", "--format=%(objectname) %(refname)", *patterns)
    return {name: sha for sha, _, name in (line.partition(" ") for line in out.splitlines())}


@pytest.fixture
def clone(tmp_path: Path, isolated_git: Path) -> Path:
    """A bare origin with branches (nested names), an annotated and a light tag; a clone of it with local
    branches, origin/HEAD (a symbolic ref) and a worktree."""
    seed = tmp_path / "seed"
    _git(tmp_path, "init", "-q", "-b", "main", str(seed))
    _git(seed, "commit", "-q", "--allow-empty", "-m", "one")
    for branch in ("develop", "feature/a/x", "feature/b/y"):
        _git(seed, "branch", branch)
    _git(seed, "tag", "-a", "v1", "-m", "v1")
    _git(seed, "tag", "light")
    origin = tmp_path / "origin.git"
    _git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(origin), str(clone))
    _git(clone, "commit", "-q", "--allow-empty", "-m", "two")
    _git(clone, "branch", "feature/local/z")
    _git(clone, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "in-worktree")
    return clone


def _agree(path: Path) -> None:
    for patterns in PATTERNS:
        assert read_refs(path, patterns) == _git_lists(path, patterns), patterns


def test_loose_packed_and_mixed_refs(clone: Path, tmp_path: Path) -> None:
    for where in (clone, tmp_path / "wt", tmp_path / "origin.git"):
        _agree(where)
    _git(clone, "pack-refs", "--all")
    _agree(clone)
    # A loose ref over its packed line wins; a deleted ref is gone from both.
    _git(clone, "commit", "-q", "--allow-empty", "-m", "three")
    _git(clone, "branch", "-f", "develop", "HEAD")
    _git(clone, "branch", "-D", "feature/local/z")
    _git(clone, "update-ref", "-d", "refs/remotes/origin/feature/a/x")
    _agree(clone)
    _agree(tmp_path / "wt")


def test_what_it_leaves_to_git(clone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert read_refs(clone, ["refs/heads/*"]) is None  # a glob
    assert read_refs(clone, []) is None  # every ref, per-worktree ones included
    assert read_refs(clone, ["refs/notes"]) is None
    (clone / ".git" / "refs" / "heads" / "broken").write_text("not an id\n")
    assert read_refs(clone, ["refs/heads"]) is None
    (clone / ".git" / "refs" / "heads" / "broken").unlink()
    monkeypatch.setenv("GIT_DIR", str(clone / ".git"))
    assert read_refs(clone, ["refs/heads"]) is None
