"""``origin_url``: origin's URL read from the repository's config file, as ``git config --get`` gives it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from coditect_cli.adapters.git import origin_url, origin_url_in_file


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout


def _commit(path: Path) -> None:
    _git(
        path,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.invalid",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "c",
    )


def _git_says(path: Path) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(path), "config", "--get", "remote.origin.url"], capture_output=True, text=True
    )
    return done.stdout.strip() or None


@pytest.fixture
def repo(tmp_path: Path, isolated_git: Path) -> Path:
    path = tmp_path / "repo"
    _git(tmp_path, "init", "-q", str(path))
    return path


@pytest.mark.parametrize(
    "url",
    [
        "git@github.com:acme/app.git",
        "https://github.com/acme/app",
        "/srv/origins/app.git",
        "ssh://git@host:2222/path with space/app.git",
        'https://example.com/a"quote',
        "https://example.com/a;semi#hash",
        "C:\\\\origins\\\\app",
    ],
)
def test_the_url_is_what_git_config_says(repo: Path, url: str) -> None:
    _git(repo, "remote", "add", "origin", url)
    _git(
        repo, "config", "url.https://rewritten/.insteadOf", "https://github.com/"
    )  # not applied: as configured
    assert origin_url(repo) == _git_says(repo) == url


def test_no_origin(repo: Path) -> None:
    _git(repo, "remote", "add", "upstream", "https://example.com/up")
    assert origin_url(repo) is None and _git_says(repo) is None


def test_an_include_or_a_second_url_is_left_to_git(repo: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra.cfg"
    extra.write_text('[remote "origin"]\n\turl = https://example.com/included\n')
    _git(repo, "config", "include.path", str(extra))
    assert origin_url_in_file(repo) is None
    assert origin_url(repo) == _git_says(repo) == "https://example.com/included"
    _git(repo, "config", "--unset", "include.path")
    _git(repo, "remote", "add", "origin", "https://example.com/one")
    _git(repo, "config", "--add", "remote.origin.url", "https://example.com/two")
    assert origin_url_in_file(repo) is None
    assert origin_url(repo) == _git_says(repo)


def test_worktrees_and_submodules_read_their_common_config(repo: Path, tmp_path: Path) -> None:
    _git(repo, "remote", "add", "origin", "https://example.com/main.git")
    _commit(repo)
    worktree = tmp_path / "wt"
    _git(repo, "worktree", "add", "-q", str(worktree), "-b", "topic")
    assert origin_url_in_file(worktree) == origin_url(worktree) == _git_says(worktree)
    sub_origin = tmp_path / "sub-origin"
    _git(tmp_path, "init", "-q", str(sub_origin))
    _commit(sub_origin)
    _git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub_origin), "sub")
    assert (repo / "sub" / ".git").is_file()
    assert (
        origin_url_in_file(repo / "sub")
        == origin_url(repo / "sub")
        == _git_says(repo / "sub")
        == str(sub_origin)
    )
