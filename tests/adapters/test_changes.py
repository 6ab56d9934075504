"""``changed_between`` on a real repository: the paths that differ between two commits' trees, None for a
commit the repository does not have (or a directory that is no repository)."""

from __future__ import annotations

from pathlib import Path

from helpers import git_in

from coditect_cli.adapters.changes import changed_between, changed_since


def git(repo: Path, *args: str) -> str:
    return git_in(repo, *args)


def commit(repo: Path, files: dict[str, str], message: str) -> str:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(
        repo,
        "-c",
        "user.name=T",
        "-c",
        "user.email=t@example.invalid",
        "commit",
        "-q",
        "-m",
        message,
    )
    return git(repo, "rev-parse", "HEAD")


def init_repo(tmp_path: Path) -> Path:
    """An empty repository on ``main`` in ``tmp_path/repo``."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo


def test_changed_between_lists_the_differing_paths_and_none_for_unknown_commits(
    tmp_path: Path, isolated_git: Path
) -> None:
    repo = init_repo(tmp_path)
    a = commit(repo, {"x.txt": "1\n", "d/y.txt": "1\n", "z.txt": "1\n"}, "a")
    b = commit(repo, {"d/y.txt": "2\n", "w.txt": "new\n"}, "b")
    c = commit(repo, {"d/y.txt": "1\n"}, "c")  # back to a's content: not a difference from a
    missing = "f" * 40
    found = changed_between(repo, [(a, b), (a, c), (b, b), (missing, b)])
    assert found == {
        (a, b): frozenset({"d/y.txt", "w.txt"}),
        (a, c): frozenset({"w.txt"}),
        (b, b): frozenset(),
        (missing, b): None,
    }
    assert changed_between(tmp_path / "nowhere", [(a, b)]) == {(a, b): None}
    assert changed_between(repo, []) == {}


def test_answers_follow_the_commits_a_ref_points_at_now(tmp_path: Path, isolated_git: Path) -> None:
    """Changes, merge verdicts and histories are kept per commit ids within a process: asked again after a
    branch moved (by its new id or by its name), the answer is the new one, never the one kept."""
    from coditect_cli.adapters.history import between
    from coditect_cli.adapters.mergetree import merge_tree_batch

    repo = init_repo(tmp_path)
    base = commit(repo, {"x.txt": "1\n"}, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    first = commit(repo, {"a.txt": "feature\n"}, "a")
    assert changed_since(repo, base, [first]) == {first: ("a.txt",)}
    assert changed_since(repo, "main", ["feature"]) == {"feature": ("a.txt",)}
    assert [r.clean for r in merge_tree_batch(repo, [(base, first), ("main", "feature")])] == [True, True]
    assert set(between(repo, [base, first])) == {first}

    second = commit(repo, {"b.txt": "feature\n"}, "b")
    assert changed_since(repo, base, [first, second]) == {first: ("a.txt",), second: ("a.txt", "b.txt")}
    assert changed_since(repo, "main", ["feature"]) == {"feature": ("a.txt", "b.txt")}
    assert set(between(repo, [base, second])) == {first, second}

    git(repo, "checkout", "-q", "main")
    moved = commit(repo, {"a.txt": "main\n"}, "a on main")  # now merging the feature conflicts
    (by_id,) = merge_tree_batch(repo, [(moved, second)])
    (by_name,) = merge_tree_batch(repo, [("main", "feature")])
    assert by_id.conflict and by_id.paths == ("a.txt",)
    assert by_name.conflict and by_name.paths == ("a.txt",)
    assert [r.clean for r in merge_tree_batch(repo, [(base, first)])] == [True]  # the old pair is still clean


def test_a_conflict_names_the_sides_it_was_asked_with(tmp_path: Path, isolated_git: Path) -> None:
    """A file on one side and a directory on the other: git writes ``d~<side>`` paths, so an answer kept
    from a merge asked by commit ids is not given to one asked by names (and the other way round)."""
    from coditect_cli.adapters.mergetree import merge_tree_batch

    repo = init_repo(tmp_path)
    base = commit(repo, {"x.txt": "1\n"}, "base")
    git(repo, "checkout", "-q", "-b", "dir")
    with_dir = commit(repo, {"d/f.txt": "dir\n"}, "a directory d")
    git(repo, "checkout", "-q", "main")
    with_file = commit(repo, {"d": "file\n"}, "a file d")
    ids = {"refs/heads/main": with_file, "refs/heads/dir": with_dir}
    (by_id,) = merge_tree_batch(repo, [(with_file, with_dir)])
    (by_name,) = merge_tree_batch(repo, [("refs/heads/main", "refs/heads/dir")], ids=ids)
    assert by_id.conflict and by_name.conflict
    assert by_id.paths != by_name.paths and any("refs_heads" in p for p in by_name.paths)
    assert changed_since(repo, base, [with_dir], ids=ids) == {with_dir: ("d/f.txt",)}
    named = changed_since(repo, "refs/heads/main", ["refs/heads/dir"], ids=ids)
    assert named == {"refs/heads/dir": ("d", "d/f.txt", "d~refs_heads_main")}
    by_ids = changed_since(repo, with_file, [with_dir], ids=ids)
    assert by_ids == {with_dir: ("d", "d/f.txt", f"d~{with_file}")}
    assert changed_since(repo, "refs/heads/main", ["refs/heads/dir"], ids=ids) == named
