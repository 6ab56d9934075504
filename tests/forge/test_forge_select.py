"""Choosing the forge: remote URL parsing, token discovery (environment, a real ``gh`` on PATH), auto/github/local."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NamedTuple

import pytest

from coditect_cli.errors import ExitCode, UsageError
from coditect_cli.forge.base import ForgeRepo
from coditect_cli.forge.select import (
    GITHUB_API,
    RemoteRef,
    Secret,
    Token,
    api_url_for,
    choose,
    find_token,
    open_forges,
    parse_remote,
)

TOKEN = "ghp_SelectTest0123456789abcdefghijklmnop"


class RemoteCase(NamedTuple):
    test_id: str
    url: str
    expected: RemoteRef | None


REMOTES = [
    RemoteCase("https", "https://github.com/acme/app.git", RemoteRef("github.com", "acme", "app")),
    RemoteCase("https-no-suffix", "https://github.com/acme/app", RemoteRef("github.com", "acme", "app")),
    RemoteCase(
        "https-trailing-slash", "https://github.com/acme/app/", RemoteRef("github.com", "acme", "app")
    ),
    RemoteCase(
        "https-credentials",
        f"https://x-access-token:{TOKEN}@github.com/acme/app.git",
        RemoteRef("github.com", "acme", "app"),
    ),
    RemoteCase("scp", "git@github.com:acme/app.git", RemoteRef("github.com", "acme", "app")),
    RemoteCase("scp-no-suffix", "git@github.com:acme/app", RemoteRef("github.com", "acme", "app")),
    RemoteCase("ssh-url", "ssh://git@github.com/acme/app.git", RemoteRef("github.com", "acme", "app")),
    RemoteCase(
        "ssh-port", "ssh://git@ghe.example.com:2222/acme/app.git", RemoteRef("ghe.example.com", "acme", "app")
    ),
    RemoteCase("git-protocol", "git://github.com/acme/app", RemoteRef("github.com", "acme", "app")),
    RemoteCase("dotted-name", "git@github.com:acme/app.web.git", RemoteRef("github.com", "acme", "app.web")),
    RemoteCase("upper-host", "https://GitHub.com/acme/app", RemoteRef("github.com", "acme", "app")),
    RemoteCase("local-path", "/srv/git/app.git", None),
    RemoteCase("relative-path", "../app.git", None),
    RemoteCase("file-url", "file:///srv/git/app.git", None),
    RemoteCase("subgroup", "https://gitlab.com/group/sub/app.git", None),
    RemoteCase("empty", "", None),
]


@pytest.mark.parametrize("case", REMOTES, ids=[c.test_id for c in REMOTES])
def test_parse_remote(case: RemoteCase) -> None:
    assert parse_remote(case.url) == case.expected


def test_api_url_for_github_enterprise_and_github_com() -> None:
    assert api_url_for("github.com", None) == GITHUB_API
    assert (
        api_url_for("ghe.example.com", "https://ghe.example.com/api/v3/") == "https://ghe.example.com/api/v3"
    )
    assert api_url_for("ghe.example.com", "https://api.ghe.example.com") == "https://api.ghe.example.com"
    assert api_url_for("ghe.example.com", None) is None
    assert api_url_for("gitlab.com", "https://ghe.example.com/api/v3") is None
    # forge_url names another host: github.com repositories still go to api.github.com.
    assert api_url_for("github.com", "https://ghe.example.com/api/v3") == GITHUB_API


def _token(host: str) -> Token | None:
    return Token(Secret(TOKEN), "GH_TOKEN")


def _no_token(host: str) -> Token | None:
    return None


def test_auto_uses_github_only_with_a_github_origin_and_a_token() -> None:
    chosen = choose("auto", None, "git@github.com:acme/app.git", _token)
    assert (chosen.kind, chosen.api_url, chosen.note) == ("github", GITHUB_API, None)
    assert chosen.remote is not None and chosen.remote.slug == "acme/app"

    local = choose("auto", None, "/srv/origins/app.git", _token)
    assert local.kind == "local"
    assert local.note is not None and local.note.startswith("using the local forge: origin is not on GitHub")

    tokenless = choose("auto", None, "https://github.com/acme/app", _no_token)
    assert tokenless.kind == "local"
    assert tokenless.note is not None and tokenless.note.startswith("using the local forge: no token found")


def test_auto_with_forge_url_uses_the_enterprise_host() -> None:
    chosen = choose("auto", "https://ghe.example.com/api/v3", "git@ghe.example.com:acme/app.git", _token)
    assert (chosen.kind, chosen.api_url) == ("github", "https://ghe.example.com/api/v3")
    other = choose("auto", "https://ghe.example.com/api/v3", "git@git.other.example:acme/app.git", _token)
    assert other.kind == "local"


def test_forge_local_never_looks_for_a_token() -> None:
    def fail(host: str) -> Token | None:
        raise AssertionError("no token lookup for forge: local")

    assert choose("local", None, "https://github.com/acme/app", fail).kind == "local"


@pytest.mark.parametrize(
    ("origin", "token_for", "needle"),
    [
        ("/srv/app.git", _token, "is not a GitHub repository URL"),
        ("git@gitlab.example:acme/app.git", _token, "neither github.com nor the host of `forge_url`"),
        ("https://github.com/acme/app", _no_token, "no token was found for github.com"),
    ],
    ids=["not-a-url", "unknown-host", "no-token"],
)
def test_forge_github_is_strict(origin: str, token_for: object, needle: str) -> None:
    with pytest.raises(UsageError) as caught:
        choose("github", None, origin, token_for, repo="app")  # type: ignore[arg-type]
    assert needle in caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE


def test_secret_and_token_never_show_the_value() -> None:
    secret = Secret(TOKEN)
    token = Token(secret, "GH_TOKEN")
    for text in (
        repr(secret),
        str(secret),
        repr(token),
        str(token),
        f"{secret}",
        repr(choose("auto", None, "https://github.com/a/b", lambda h: token)),
    ):
        assert TOKEN not in text
    assert secret.reveal() == TOKEN


def _fake_gh(directory: Path, script: str) -> Path:
    """A real ``gh`` executable on a PATH of its own (the test drives it, nothing is patched)."""
    directory.mkdir(parents=True, exist_ok=True)
    gh = directory / "gh"
    gh.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return gh


def test_find_token_prefers_gh_token_then_github_token(tmp_path: Path) -> None:
    empty = str(tmp_path / "empty-bin")
    both = find_token("github.com", {"GH_TOKEN": "gh-one", "GITHUB_TOKEN": "gh-two", "PATH": empty})
    assert both is not None and (both.secret.reveal(), both.source) == ("gh-one", "GH_TOKEN")
    second = find_token("github.com", {"GH_TOKEN": "  ", "GITHUB_TOKEN": "gh-two", "PATH": empty})
    assert second is not None and (second.secret.reveal(), second.source) == ("gh-two", "GITHUB_TOKEN")
    assert find_token("github.com", {"PATH": empty}) is None


def test_find_token_asks_gh_only_when_it_is_installed(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    bin_dir = tmp_path / "bin"
    _fake_gh(bin_dir, f'echo "$@" >> "{calls}"\necho "{TOKEN}"\n')
    found = find_token("github.com", {"PATH": str(bin_dir)})
    assert found is not None and found.source == "gh auth token" and found.secret.reveal() == TOKEN
    enterprise = find_token("ghe.example.com", {"PATH": str(bin_dir)})
    assert enterprise is not None
    assert calls.read_text().splitlines() == ["auth token", "auth token --hostname ghe.example.com"]


def test_find_token_ignores_a_failing_gh(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _fake_gh(bin_dir, 'echo "no oauth token found for github.com" >&2\nexit 1\n')
    assert find_token("github.com", {"PATH": str(bin_dir)}) is None


def test_open_forges_groups_the_notes_and_shares_one_client_per_api(tmp_path: Path) -> None:
    made: list[str] = []

    class Stub:
        kind = "stub"

        def __init__(self, label: str) -> None:
            self.label = label
            self.notes: list[str] = []
            self.closed = False
            made.append(label)

        def close(self) -> None:
            self.closed = True

    repos = {
        "root": ForgeRepo("root", tmp_path, "/srv/origins/root.git"),
        "api": ForgeRepo("api", tmp_path, "git@github.com:acme/api.git"),
        "web": ForgeRepo("web", tmp_path, "https://github.com/acme/web"),
        "docs": ForgeRepo("docs", tmp_path, "/srv/origins/docs.git"),
    }
    env = {"GH_TOKEN": TOKEN, "PATH": os.defpath}
    with open_forges(
        "auto",
        None,
        repos,
        lambda: Stub("local"),  # type: ignore[arg-type,return-value]
        env=env,
        github_factory=lambda api, token: Stub(f"github {api}"),  # type: ignore[arg-type,return-value]
    ) as forges:
        assert made == ["local", f"github {GITHUB_API}"]
        assert forges.forge("api") is forges.forge("web")
        assert forges.forge("root") is forges.forge("docs")
        assert forges.repo("api").slug == "acme/api" and forges.repo("root").slug is None
        assert forges.notes == ["using the local forge: origin is not on GitHub (repositories root, docs)"]
        kept = [forges.forge("api"), forges.forge("root")]
    assert all(f.closed for f in kept)  # type: ignore[attr-defined]
