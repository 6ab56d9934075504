"""``worktree_state.read_many`` on real repositories and worktrees: the same answers as one ``git status``
per worktree (:func:`coditect_cli.services.streams.read_work`), a kept status reused only while the
worktree provably did not change, and git processes per repository that do not grow with the worktrees."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import git_in, retry_until

from coditect_cli.adapters import memo
from coditect_cli.adapters.worktree_state import Reading, read_many
from coditect_cli.services.streams import read_work

IDENTITY = ("-c", "user.name=T", "-c", "user.email=t@example.invalid")


def commit(repo: Path, message: str, files: dict[str, str] | None = None) -> None:
    for rel, text in (files or {}).items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    git_in(repo, "add", "-A")
    git_in(repo, *IDENTITY, "commit", "-q", "--allow-empty", "-m", message)


class Project(NamedTuple):
    repo: Path
    trees: dict[str, Path]  # name -> worktree


@pytest.fixture
def project(tmp_path: Path, isolated_git: Path) -> Project:
    """A repository with a bare origin and six worktrees: pushed (with upstream), pushed then one commit
    ahead, local branches without upstream (with and without a commit of their own), a detached HEAD with
    a commit, and one more pushed branch."""
    origin = tmp_path / "origin.git"
    git_in(tmp_path, "init", "-q", "--bare", str(origin))
    repo = tmp_path / "repo"
    git_in(tmp_path, "init", "-q", "-b", "main", str(repo))
    commit(repo, "initial", {"README.md": "# repo\n", "src/app.py": "x = 1\n", "src/deep/util.py": "y = 2\n"})
    git_in(repo, "remote", "add", "origin", str(origin))
    git_in(repo, "push", "-q", "-u", "origin", "main")
    trees: dict[str, Path] = {}
    for name in ("pushed", "ahead", "local", "local-work", "other"):
        trees[name] = tmp_path / "wt" / name
        git_in(repo, "worktree", "add", "-q", "-b", f"feature/{name}", str(trees[name]), "main")
    for name in ("pushed", "ahead", "other"):
        git_in(trees[name], "push", "-q", "-u", "origin", f"feature/{name}")
    commit(trees["ahead"], "ahead by one")
    commit(trees["local-work"], "not pushed", {"src/new.py": "z = 3\n"})
    trees["detached"] = tmp_path / "wt" / "detached"
    git_in(repo, "worktree", "add", "-q", "--detach", str(trees["detached"]), "main")
    commit(trees["detached"], "on no branch")
    return Project(repo, trees)


def reference(path: Path) -> tuple[object, ...]:
    """What one `git status` (and `git log` for a branch without upstream) says: read_work's answer."""
    work = read_work("repo", path)
    return (work.exists, work.branch, work.upstream, work.changes, work.unpushed)


def answer(reading: Reading) -> tuple[object, ...]:
    return (reading.exists, reading.branch, reading.upstream, reading.changes, reading.unpushed)


def test_the_same_answers_as_git_status_per_worktree(project: Project, tmp_path: Path) -> None:
    t = project.trees
    (t["pushed"] / "src" / "app.py").write_text("x = 2\n")  # modified
    (t["local"] / "src" / "deep" / "notes.txt").write_text("new\n")  # untracked, in a subdirectory
    (t["other"] / "README.md").write_text("# staged\n")
    git_in(t["other"], "add", "README.md")  # staged
    (t["local-work"] / "src" / "deep" / "util.py").unlink()  # deleted
    git_in(t["detached"], "update-index", "--index-version", "4")  # index v4: paths prefix-compressed
    (t["detached"] / "src" / "deep" / "util.py").write_text("y = 3\n")
    paths = [*t.values(), tmp_path / "wt" / "missing"]
    readings = read_many(paths, tmp_path / "cache.json")
    assert [answer(r) for r in readings] == [reference(p) for p in paths]
    by_name = dict(zip([*t, "missing"], readings, strict=True))
    assert by_name["ahead"].unpushed == 1 and by_name["ahead"].upstream == "origin/feature/ahead"
    assert by_name["local-work"].unpushed == 1 and by_name["local-work"].upstream is None
    assert by_name["local"].unpushed == 0 and by_name["detached"].unpushed == 1
    assert by_name["detached"].branch is None and not by_name["missing"].exists
    assert by_name["pushed"].changes == (" M src/app.py",)
    assert by_name["local"].changes == ("?? src/deep/notes.txt",)
    assert by_name["other"].changes == ("M  README.md",)
    assert by_name["local-work"].changes == (" D src/deep/util.py",)
    assert by_name["detached"].changes == (" M src/deep/util.py",)
    assert read_many(paths, None) == [
        Reading(r.path, r.exists, r.branch, r.upstream, r.changes, r.unpushed, asked_git=r.exists)
        for r in readings
    ]


def _all_cached(paths: list[Path], cache: Path) -> list[Reading]:
    """Read until every worktree's status is served from the cache (its files settled: no longer too
    recent to be trusted)."""
    return retry_until(lambda: read_many(paths, cache), lambda rs: not any(r.asked_git for r in rs))


def test_a_kept_status_is_reused_only_while_nothing_changed(project: Project, tmp_path: Path) -> None:
    t = project.trees
    cache = tmp_path / "cache.json"
    (t["ahead"] / "src" / "app.py").write_text("x = 5\n")  # dirty before the cache is primed
    paths = list(t.values())
    primed = _all_cached(paths, cache)
    assert [answer(r) for r in primed] == [reference(p) for p in paths]

    # Changes git would see and a file's size and modification time would not: same size, mtime put back.
    app = t["pushed"] / "src" / "app.py"
    before = app.stat()
    app.write_text("x = 9\n")
    os.utime(app, ns=(before.st_atime_ns, before.st_mtime_ns))
    (t["local"] / "docs" / "new").mkdir(parents=True)
    (t["local"] / "docs" / "new" / "todo.md").write_text("new file in a new directory\n")
    (t["other"] / "src" / "app.py").write_text("x = 7\n")
    git_in(t["other"], "add", "src/app.py")
    git_in(t["other"], "checkout", "--", "src/app.py")  # staged, and the worktree file as staged
    (t["local-work"] / "README.md").unlink()
    git_in(t["detached"], *IDENTITY, "commit", "-q", "--allow-empty", "-m", "one more")  # HEAD moves only
    (t["ahead"] / "src" / "app.py").write_text("x = 1\n")  # back to its committed content: clean again

    readings = {r.path: r for r in read_many(paths, cache)}
    assert {p: answer(readings[p]) for p in paths} == {p: reference(p) for p in paths}
    assert readings[t["pushed"]].changes == (" M src/app.py",)
    assert readings[t["local"]].changes == ("?? docs/new/todo.md",)
    assert readings[t["other"]].changes == ("M  src/app.py",)
    assert readings[t["local-work"]].changes == (" D README.md",)
    assert readings[t["detached"]].unpushed == 2
    assert readings[t["ahead"]].changes == ()
    assert all(r.asked_git for r in readings.values())  # each changed: each got its git status again


def test_git_processes_per_repository_do_not_grow_with_the_worktrees(
    project: Project, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache.json"
    paths = list(project.trees.values())
    _all_cached(paths, cache)

    def git_commands(subset: list[Path], *, first: bool = True) -> list[str]:
        if first:
            memo.forget()  # as a new process reads them
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="coditect.proc"):
            read_many(subset, cache)
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("$ git")]

    two, six = git_commands([paths[0], paths[2]]), git_commands(paths)  # each with a branch without upstream
    assert len(two) == len(six) <= 2  # for-each-ref, rev-list (branches without upstream)
    assert not any(" status " in c or " config " in c for c in six)
    # Asked again with no ref nor configuration changed: the upstreams and unpushed counts are known.
    assert git_commands(paths, first=False) == []


def test_a_file_no_longer_ignored_is_seen(project: Project, tmp_path: Path, isolated_git: Path) -> None:
    t = project.trees
    exclude = project.repo / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text("*.log\n")
    user_ignore = isolated_git / ".config" / "git" / "ignore"  # git's default core.excludesFile
    user_ignore.parent.mkdir(parents=True, exist_ok=True)
    user_ignore.write_text("*.tmp\n")
    (t["pushed"] / "build.log").write_text("ignored\n")
    (t["local"] / "scratch.tmp").write_text("ignored\n")
    cache = tmp_path / "cache.json"
    paths = [t["pushed"], t["local"]]
    assert [r.changes for r in _all_cached(paths, cache)] == [(), ()]

    exclude.write_text("# nothing ignored here any more\n")  # the repository's own excludes
    readings = read_many(paths, cache)
    assert [r.changes for r in readings] == [("?? build.log",), ()]
    assert [answer(r) for r in readings] == [reference(p) for p in paths]

    _all_cached(paths, cache)
    user_ignore.write_text("# nor here\n")  # the user's
    readings = read_many(paths, cache)
    assert [r.changes for r in readings] == [("?? build.log",), ("?? scratch.tmp",)]
    assert [answer(r) for r in readings] == [reference(p) for p in paths]


def test_common_dir_read_from_the_git_files_is_the_one_git_names(project: Project) -> None:
    from coditect_cli.adapters.git import common_dir

    git_in(
        project.repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(project.repo), "sub"
    )
    checkouts = [project.repo, project.trees["local"], project.repo / "sub", project.repo / "src"]
    expected = [
        Path(git_in(p, "rev-parse", "--path-format=absolute", "--git-common-dir")).resolve()
        for p in checkouts
    ]
    assert [common_dir(p) for p in checkouts] == expected
    assert expected[0] == expected[1] == (project.repo / ".git").resolve() != expected[2]
