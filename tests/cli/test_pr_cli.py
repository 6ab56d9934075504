"""``coditect pr ...`` end to end: the local forge on the sandbox, and GitHub through the fake server.

Commands run in a subprocess (``helpers.coditect``) so output, exit codes and ``--verbose`` logging are
exactly what a user gets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakegithub import FakeGitHub
from helpers import (
    PHASE1_INTEGRATION,
    PHASE1_REPOS,
    build_phase1_sandbox,
    coditect,
    git_in,
    setup_with_cwd,
    stream_worktree,
)

from coditect_cli.services.demo import _commit

BACKEND_OWNERS = (
    "@codi-code-architect, @codi-devops-engineer, @codi-documentation-writer, @codi-frontend-specialist"
)


def commit(root: Path, stream: str, repo: str, path: str, text: str, message: str) -> None:
    ok, output = _commit(stream_worktree(root, stream, repo), path, text, message)
    assert ok, output


@pytest.fixture(scope="module")
def sandbox(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A set-up sandbox where backend changed its code and the shared contract, and infra its modules."""
    root = build_phase1_sandbox(tmp_path_factory.mktemp("pr-cli") / "sandbox")
    setup_with_cwd(root)
    commit(
        root,
        "backend",
        "backend",
        "src/api/v1/auth.py",
        "\n\ndef refresh() -> None: ...\n",
        "feat(auth): refresh",
    )
    commit(root, "backend", "backend", "openapi.yaml", "\n# /auth/refresh\n", "feat(api): contract")
    commit(root, "infra", "infra", "opentofu/modules/networking/main.tf", "\n# psc\n", "feat(infra): psc")
    return root


def test_the_review_and_merge_flow_on_the_local_forge(sandbox: Path) -> None:
    opened = coditect(sandbox, "pr", "open", "backend")
    assert opened.code == 0, opened.output
    assert "opened backend #1: [phase-1] Backend: auth-service (pushed)" in opened.stdout
    assert (
        "note: using the local forge: origin is not on GitHub (repositories root, infra, backend, frontend)"
        in opened.stdout
    )

    again = coditect(sandbox, "pr", "open", "backend", "--json")
    assert again.code == 0, again.output
    envelope = again.json()
    assert envelope["command"] == "pr open" and envelope["ok"]
    (row,) = envelope["data"]["opened"]
    assert (row["created"], row["pr"]["number"], row["forge"]) == (False, 1, "local")

    status = coditect(sandbox, "pr", "status", "backend", "--json").json()["data"]
    (pr,) = status["prs"]
    assert [(n["owner"], n["state"]) for n in pr["needs"]] == [
        ("@codi-code-architect", "pending"),
        ("@codi-frontend-specialist", "pending"),
    ]
    assert pr["mergeable"] is True and pr["approvals"] == {"approved": 0, "needed": 2} and not status["ready"]

    stranger = coditect(sandbox, "pr", "approve", "backend", "--as", "@mallory")
    assert stranger.code == 2, stranger.output
    assert "@mallory is not a code owner of repository 'backend'" in stranger.stderr
    assert BACKEND_OWNERS in stranger.stderr

    first = coditect(sandbox, "pr", "approve", "backend", "--as", "@codi-code-architect")
    assert first.code == 0 and "@codi-code-architect approved backend #1" in first.stdout, first.output
    refused = coditect(sandbox, "pr", "merge", "backend")
    assert refused.code == 3, refused.output
    assert "not merged backend #1: needs approval by @codi-frontend-specialist" in refused.stdout

    asked = coditect(
        sandbox, "pr", "request-changes", "backend", "--as", "@codi-frontend-specialist", "-m", "rename"
    )
    assert asked.code == 0, asked.output
    listing = coditect(sandbox, "pr", "list")
    assert listing.code == 0, listing.output
    assert "✗ 1/2" in listing.stdout and "#1" in listing.stdout
    coditect(sandbox, "pr", "approve", "backend", "--as", "@codi-frontend-specialist")

    dry = coditect(sandbox, "pr", "merge", "backend", "--dry-run")
    assert dry.code == 0 and "would merge backend #1 (squash)" in dry.stdout, dry.output
    merged = coditect(sandbox, "pr", "merge", "backend", "--json")
    assert merged.code == 0, merged.output
    (done,) = merged.json()["data"]["merges"]
    assert done["merged"]["strategy"] == "squash" and done["refused"] is None
    origin = Path(git_in(sandbox / PHASE1_REPOS["backend"], "config", "--get", "remote.origin.url"))
    assert git_in(origin, "rev-parse", f"refs/heads/{PHASE1_INTEGRATION}") == done["merged"]["commit"]

    table = coditect(sandbox, "pr", "list", "--json").json()["data"]
    (listed,) = [p for p in table["prs"] if p["stream"] == "backend"]
    assert listed["pr"]["state"] == "merged" and listed["approved"]


def test_open_dry_run_changes_nothing(sandbox: Path) -> None:
    before = git_in(sandbox / PHASE1_REPOS["infra"], "for-each-ref")
    dry = coditect(sandbox, "pr", "open", "infra", "--dry-run")
    assert dry.code == 0, dry.output
    assert (
        "would open infra@infra: feature/phase-1/infra/gcp-foundation → phase-1-integration after pushing"
        in dry.stdout
    )
    assert git_in(sandbox / PHASE1_REPOS["infra"], "for-each-ref") == before
    assert "infra" not in {
        p["stream"] for p in coditect(sandbox, "pr", "list", "--json").json()["data"]["prs"]
    }


def test_nothing_to_open_exits_1(sandbox: Path) -> None:
    done = coditect(sandbox, "pr", "open", "frontend")
    assert done.code == 1, done.output
    assert "nothing to propose" in done.stdout and "nothing to open for stream frontend" in done.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["pr", "open", "qa"], "no stream 'qa' in phase phase-1"),
        (["pr", "status", "infra", "--repo", "backend"], "does not work in repository 'backend'"),
        (["pr", "merge", "infra", "--strategy", "octopus"], "unknown strategy 'octopus'"),
        (["pr", "approve", "infra"], "Missing option '--as'"),
    ],
    ids=["unknown-stream", "wrong-repo", "bad-strategy", "no-owner"],
)
def test_usage_errors_exit_2(sandbox: Path, args: list[str], needle: str) -> None:
    done = coditect(sandbox, *args)
    assert done.code == 2, done.output
    assert needle in done.output


# ------------------------------------------------------------------------------------------------ GitHub


@pytest.fixture
def on_github(isolated_git: Path, tmp_path: Path) -> Iterator[tuple[Path, FakeGitHub]]:
    """A sandbox whose repositories' origin URLs point at the fake GitHub (pushes still go to the bare
    origins, through ``pushurl``), with ``forge_url`` set in the manifest: ``forge: auto`` picks GitHub."""
    root = build_phase1_sandbox(tmp_path / "sandbox")
    setup_with_cwd(root)
    commit(root, "backend", "backend", "src/api/v1/auth.py", "\n# refresh\n", "feat(auth): refresh")
    with FakeGitHub() as fake:
        for repo_id, path in PHASE1_REPOS.items():
            checkout = root / path
            bare = git_in(checkout, "config", "--get", "remote.origin.url")
            fake.add_repo(f"acme/{repo_id}", git_dir=Path(bare))
            git_in(checkout, "config", "remote.origin.pushurl", bare)
            git_in(checkout, "config", "remote.origin.url", f"{fake.root_url}/acme/{repo_id}.git")
        manifest = root / "workstreams" / "phase-1.yaml"
        text = manifest.read_text(encoding="utf-8")
        manifest.write_text(
            text.replace("forge: auto", f"forge: auto\nforge_url: {fake.base_url}", 1), encoding="utf-8"
        )
        yield root, fake


def test_github_open_list_and_the_token_stays_secret(on_github: tuple[Path, FakeGitHub]) -> None:
    root, fake = on_github
    env = {"GH_TOKEN": fake.token, "CODITECT_GITHUB_RETRIES": "1", "CODITECT_GITHUB_WRITE_INTERVAL": "0"}
    opened = coditect(root, "--verbose", "pr", "open", "backend", env=env)
    assert opened.code == 0, opened.output
    assert "opened backend #1: [phase-1] Backend: auth-service" in opened.stdout
    assert "$ git" in opened.stderr  # --verbose is on...
    assert fake.token not in opened.output  # ...and the token appears nowhere
    (pr,) = fake.pulls("acme/backend")
    assert (pr["head"], pr["base"]) == ("feature/phase-1/backend/auth-service", PHASE1_INTEGRATION)
    assert pr["head_sha"] == git_in(stream_worktree(root, "backend", "backend"), "rev-parse", "HEAD")

    again = coditect(root, "pr", "open", "backend", env=env)
    assert again.code == 0 and "exists backend #1" in again.stdout, again.output
    assert len(fake.pulls("acme/backend")) == 1

    fake.reset_log()
    listing = coditect(root, "--verbose", "pr", "list", "--json", env=env)
    assert listing.code == 0, listing.output
    assert fake.token not in listing.output
    (row,) = listing.json()["data"]["prs"]
    assert (row["forge"], row["stream"], row["pr"]["number"], row["mergeable"]) == (
        "github",
        "backend",
        1,
        True,
    )
    assert row["files"] == ["src/api/v1/auth.py"]
    assert [n["owner"] for n in row["needs"]] == ["@codi-code-architect"]
    # One list per repository, one GraphQL query for the repository that has PRs.
    assert fake.count("GET", r"/repos/acme/\w+/pulls") == 4 and fake.count("POST", "/api/graphql") == 1
    # ...and that repository's integration branch rules, once: protection and rulesets.
    assert fake.count(path=r"/repos/acme/backend(/branches/.*/protection|/rules/branches/.*)") == 2
    assert fake.count() == 7

    other = coditect(root, "pr", "approve", "backend", "--as", "@codi-code-architect", env=env)
    assert other.code == 2 and "given by the token's account (@coditect-bot)" in other.stderr, other.output
    assert "GH_TOKEN=" in other.stderr  # what to do: the owner's own token

    # With the code owner's own token the approval goes through, on the head it looked at.
    owner_token = "ghp_ArchitectToken0123456789abcdefghijklm"
    fake.add_token(owner_token, "codi-code-architect")
    approved = coditect(
        root, "pr", "approve", "backend", "--as", "@codi-code-architect", env={**env, "GH_TOKEN": owner_token}
    )
    assert approved.code == 0, approved.output
    (review,) = fake.repos["acme/backend"].reviews[1]
    assert (review["login"], review["state"], review["commit_id"]) == (
        "codi-code-architect",
        "APPROVED",
        pr["head_sha"],
    )
    status = coditect(root, "pr", "status", "backend", "--json", env=env).json()["data"]["prs"][0]
    assert [(n["owner"], n["state"]) for n in status["needs"]] == [("@codi-code-architect", "approved")]


def test_github_rate_limit_exits_5_with_the_reset_time(on_github: tuple[Path, FakeGitHub]) -> None:
    root, fake = on_github
    fault = fake.primary_rate_limit("GET", r"/repos/acme/\w+/pulls", reset_in=600)
    done = coditect(root, "pr", "list", env={"GH_TOKEN": fake.token})
    assert done.code == 5, done.output
    reset = fault.headers["x-ratelimit-reset"]
    expected = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import time; print(time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime({reset})))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert f"resets at {expected}" in done.stderr


def test_without_a_token_auto_falls_back_to_the_local_forge_and_says_so(
    on_github: tuple[Path, FakeGitHub], tmp_path: Path
) -> None:
    root, fake = on_github
    no_gh = tmp_path / "no-gh-bin"
    no_gh.mkdir()
    env = {"PATH": f"{no_gh}{os.pathsep}{os.path.dirname(sys.executable)}{os.pathsep}/usr/bin:/bin"}
    done = coditect(root, "pr", "list", env=env)
    assert done.code == 0, done.output
    assert "note: using the local forge: no token found for 127.0.0.1" in done.stdout
    assert fake.count() == 0
