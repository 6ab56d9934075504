"""ref_name_problem agrees with git itself (``git check-ref-format --branch``) on what a branch name is."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coditect_cli.domain.refnames import directory_file_clash, ref_name_problem


@pytest.fixture(scope="module")
def outside_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A directory outside any repository (``--branch @`` would expand to the current branch inside one)."""
    where = tmp_path_factory.mktemp("no-repo")
    env = dict(os.environ)
    env["GIT_CEILING_DIRECTORIES"] = str(where.parent)
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["HOME"] = str(where)
    env.pop("GIT_DIR", None)
    return where, env


def git_accepts_branch(name: str, where: tuple[Path, dict[str, str]]) -> bool:
    """The oracle: does git accept ``name`` as a branch name?"""
    cwd, env = where
    proc = subprocess.run(
        ["git", "check-ref-format", "--branch", name], cwd=cwd, env=env, capture_output=True, check=False
    )
    return proc.returncode == 0


def git_accepts_tag(name: str, where: tuple[Path, dict[str, str]]) -> bool:
    cwd, env = where
    proc = subprocess.run(
        ["git", "check-ref-format", f"refs/tags/{name}"], cwd=cwd, env=env, capture_output=True, check=False
    )
    return proc.returncode == 0


GOOD = [
    "main",
    "develop",
    "phase-1-integration",
    "feature/phase-1/infra/gcp-foundation",
    "a/b/c",
    "v1.2.3",
    "a.b",
    "a@b",
    "a@",
    "@a",
    "a{b}",
    "a%b",
    "a$b",
    "a!b",
    "lock",
    "a.lock.b",
    "a-",
    "_x",
    "ümlaut",
    "a/HEAD",
]

BAD = [
    "",
    "a b",
    "a..b",
    "a..",
    "a~b",
    "a^b",
    "a:b",
    "a?b",
    "a*b",
    "a[b",
    "a\\b",
    "a.lock",
    "a/b.lock",
    "a.lock/b",
    ".lock",
    "-a",
    "-",
    "a//b",
    "a/",
    "/a",
    "a.",
    "a/b.",
    "a@{b",
    "@{-1}",
    "a\tb",
    "a\nb",
    "a\x01b",
    "a\x7fb",
    ".a",
    "a/.b",
    ".",
    "..",
    "a/./b",
]


@pytest.mark.parametrize("name", GOOD)
def test_good_names_are_accepted_like_git(name: str, outside_repo: tuple[Path, dict[str, str]]) -> None:
    assert git_accepts_branch(name, outside_repo), f"test data: git should accept {name!r}"
    assert ref_name_problem(name) is None


@pytest.mark.parametrize("name", BAD)
def test_bad_names_are_rejected_like_git(name: str, outside_repo: tuple[Path, dict[str, str]]) -> None:
    assert not git_accepts_branch(name, outside_repo), f"test data: git should reject {name!r}"
    reason = ref_name_problem(name)
    assert reason, f"{name!r} should be rejected"
    assert isinstance(reason, str)


def test_head_is_not_a_branch_name(outside_repo: tuple[Path, dict[str, str]]) -> None:
    assert not git_accepts_branch("HEAD", outside_repo)
    assert ref_name_problem("HEAD") is not None


def test_at_alone_matches_git(outside_repo: tuple[Path, dict[str, str]]) -> None:
    assert git_accepts_branch("@", outside_repo)
    assert ref_name_problem("@") is None


@pytest.mark.parametrize(
    ("name", "valid"),
    [("v0.1.0", True), ("release/2026-12", True), ("-rc1", True), ("v1..2", False), ("v1.lock", False)],
)
def test_tag_names_like_git(name: str, valid: bool, outside_repo: tuple[Path, dict[str, str]]) -> None:
    assert git_accepts_tag(name, outside_repo) is valid
    assert (ref_name_problem(name, branch=False) is None) is valid


def test_reasons_name_the_rule() -> None:
    assert "'..'" in (ref_name_problem("a..b") or "")
    assert ".lock" in (ref_name_problem("x/y.lock") or "")
    assert "':'" in (ref_name_problem("a:b") or "")
    assert "'-'" in (ref_name_problem("-x") or "")
    assert "control character" in (ref_name_problem("a\x02") or "")


# Characters that matter to git's rules, plus ordinary ones; NUL cannot go into argv.
_ALPHABET = st.sampled_from([*"ab./-@{}~^:?*[\\ \t\x01\x7fé", ".lock", "..", "//", "@{"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.lists(_ALPHABET, min_size=1, max_size=8).map("".join))
def test_property_agrees_with_git(name: str, outside_repo: tuple[Path, dict[str, str]]) -> None:
    ours = ref_name_problem(name) is None
    assert ours == git_accepts_branch(name, outside_repo), (
        f"{name!r}: ours={ref_name_problem(name)!r}, git {'accepts' if not ours else 'rejects'} it"
    )


# -- directory_file_clash ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([], None),
        (["main"], None),
        (["main", "main"], None),
        (["a/b", "a/b/c"], ("a/b", "a/b/c")),
        (["a/b/c", "a/b"], ("a/b", "a/b/c")),
        (["feature/x", "feature"], ("feature", "feature/x")),
        (["a", "ab", "a-b", "a.b"], None),
        (["a/b", "a/bc", "a/b-c"], None),
        (["a", "a-b", "a.b", "a/b"], ("a", "a/b")),
        (["develop", "feature/p/s/t", "feature/p/s"], ("feature/p/s", "feature/p/s/t")),
    ],
)
def test_directory_file_clash(names: list[str], expected: tuple[str, str] | None) -> None:
    assert directory_file_clash(names) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["a", "b", "a-", "a.b"]), min_size=1, max_size=3).map("/".join)))
def test_directory_file_clash_matches_brute_force(names: list[str]) -> None:
    clashes = {(x, y) for x in names for y in names if y.startswith(x + "/")}
    found = directory_file_clash(names)
    if clashes:
        assert found in clashes
    else:
        assert found is None
