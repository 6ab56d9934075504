"""Helpers of the day-capability tests (``sync``, ``task``, ``block``, ``status``): real sandboxes, no mocks.

Imported as ``daykit`` (tests/day is on sys.path for its test modules). Every sandbox is the embedded
phase-1 sandbox (bare origins, a superproject with three submodules), optionally with a changed manifest,
set up with ``streams setup`` (branches pushed) before the tests plant work in it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import (
    EXAMPLE_TEXT,
    NO_HOOKS,
    CliResult,
    call_main,
    git_in,
    repo_dir,
    setup_with_cwd,
    stream_worktree,
)
from helpers import PHASE1 as PHASE1
from helpers import PHASE1_INTEGRATION as PHASE1_INTEGRATION

from coditect_cli.project import Project

STREAM_ORDER = ["infra", "backend", "frontend", "deploy", "docs"]
SESSION = "coditect-coditect-rollout-master-phase-1"  # then "-<hash of the project root>"


def build(tmp: Path, manifest: str | None = None, *, setup: bool = True) -> Path:
    """A phase-1 sandbox in ``tmp/sandbox`` (``manifest`` replaces workstreams/phase-1.yaml); set up when
    ``setup``. Returns the superproject's root."""
    from coditect_cli.sandbox import build_sandbox

    source = tmp / "manifest" / "phase-1.yaml"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(manifest if manifest is not None else EXAMPLE_TEXT, encoding="utf-8")
    root = build_sandbox(tmp / "sandbox", source).root
    if setup:
        setup_with_cwd(root)
    return root


def edited_manifest(edit: Callable[[dict[str, Any]], None]) -> str:
    """The example manifest as YAML data, changed by ``edit``."""
    data = yaml.safe_load(EXAMPLE_TEXT)
    edit(data)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def stream_of(data: dict[str, Any], sid: str) -> dict[str, Any]:
    """Stream ``sid`` of manifest data."""
    return next(s for s in data["streams"] if s["id"] == sid)


def commit(
    root: Path,
    stream: str,
    repo: str,
    path: str,
    text: str,
    message: str,
    *,
    verify: bool = True,
    when: int | None = None,
    replace: bool = False,
) -> str:
    """Write (append, or ``replace``) ``text`` at ``path`` in ``stream``'s worktree of ``repo`` and commit.

    ``verify`` False goes around the ownership guard (every hook off, ``NO_HOOKS``); ``when`` fixes the commit's dates
    (epoch seconds). Returns the new commit's id.
    """
    worktree = stream_worktree(root, stream, repo)
    target = worktree / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if replace:
        target.write_text(text, encoding="utf-8")
    else:
        with target.open("a", encoding="utf-8") as fh:
            fh.write(text)
    env = dict(os.environ)
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{when} +0000"
    subprocess.run(["git", "-C", str(worktree), "add", "--", path], check=True, env=env)
    args = ["git", "-C", str(worktree), *(() if verify else NO_HOOKS), "commit", "-q", "-m", message]
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    return git_in(worktree, "rev-parse", "HEAD")


def push(root: Path, stream: str, repo: str) -> None:
    """Push ``stream``'s feature branch of ``repo`` to origin."""
    git_in(stream_worktree(root, stream, repo), "push", "--quiet", "origin", "HEAD")


def plant_on_integration(root: Path, repo: str, path: str, content: str, message: str) -> str:
    """A commit on ``repo``'s integration branch (local and origin) that no stream made: the base moves on."""
    from coditect_cli.adapters.git import commit_file

    checkout = repo_dir(root, repo)
    _old, new = commit_file(checkout, PHASE1_INTEGRATION, path, content, message)
    git_in(checkout, "push", "--quiet", "origin", PHASE1_INTEGRATION)
    return new


def show(root: Path, repo: str, rev: str, path: str) -> str:
    """``git show rev:path`` in ``repo``."""
    return git_in(repo_dir(root, repo), "show", f"{rev}:{path}", strip=False)


def cli(root: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> CliResult:
    """``coditect ARGS`` in this process, from the project root."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return call_main(args, capsys)


def cli_json(root: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``coditect ARGS --json``'s data (asserting exit 0)."""
    result = cli(root, [*args, "--json"], capsys)
    assert result.code == 0, result.output
    envelope: dict[str, Any] = json.loads(result.stdout)
    assert envelope["ok"] is True, envelope
    data: dict[str, Any] = envelope["data"]
    return data


def by_stream(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A sync report's (or dashboard's) stream sections by stream id."""
    return {s["stream"]: s for s in report["streams"]}


def kinds(section: dict[str, Any]) -> list[str]:
    """The blocker kinds of one stream section."""
    return [b["kind"] for b in section["blockers"]]


def blockers_of(section: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in section["blockers"] if b["kind"] == kind]


def md_section(markdown: str, heading: str) -> str:
    """The lines of the Markdown section that starts with ``heading`` (up to the next ``## ``)."""
    lines = markdown.splitlines()
    start = lines.index(heading)
    out: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        out.append(line)
    return "\n".join(out).strip("\n")


def project(root: Path) -> Project:
    return Project(root)


def store_rows(root: Path, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Rows of a query on the project's state store."""
    from coditect_cli.services.setup import project_common_dir
    from coditect_cli.state.store import Store

    with Store.open(project_common_dir(Project(root))) as store:
        return [tuple(r) for r in store.query(sql, params)]
