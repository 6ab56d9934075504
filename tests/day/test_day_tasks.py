"""``coditect task list|start|done``: task state in the store, dependency blocking, and refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from daykit import PHASE1, build, cli, cli_json, store_rows


@pytest.fixture
def root(tmp_path: Path, isolated_git: Path) -> Path:
    """A fresh phase-1 sandbox (tasks need no branches: not set up)."""
    return build(tmp_path, setup=False)


def tasks_by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in data["tasks"]}


def test_task_list_shows_every_task_and_what_blocked_ones_wait_for(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = cli_json(root, ["task", "list"], capsys)
    assert (data["phase"], data["done"], data["total"]) == (PHASE1, 0, 23)
    tasks = tasks_by_id(data)
    assert list(tasks)[:3] == ["infra-network", "infra-runtime", "infra-secrets"]  # manifest order
    assert tasks["infra-network"] | {"title": ""} == {
        "id": "infra-network",
        "stream": "infra",
        "title": "",
        "days": "1-2",
        "state": "todo",
        "waiting_for": [],
    }
    assert (tasks["backend-orgs"]["state"], tasks["backend-orgs"]["waiting_for"]) == (
        "blocked",
        ["backend-auth", "infra-runtime"],
    )
    assert tasks["docs-runbooks"]["waiting_for"] == ["deploy-k8s"]

    backend = cli_json(root, ["task", "list", "backend"], capsys)
    assert [t["id"] for t in backend["tasks"]] == [
        "backend-auth",
        "backend-orgs",
        "backend-users",
        "backend-licenses",
        "backend-projects",
    ]
    monkeypatch.setenv("COLUMNS", "220")  # one table row per line
    human = cli(root, ["task", "list", "backend"], capsys)
    assert human.code == 0, human.output
    row = next(line for line in human.stdout.splitlines() if "backend-orgs" in line)
    assert "blocked (waits for backend-auth, infra-runtime)" in row
    assert "0/5 done" in human.stdout


def test_done_dependencies_unblock_a_task(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = cli(root, ["task", "start", "backend", "backend-auth"], capsys)
    assert started.code == 0 and "backend/backend-auth: todo → in-progress" in started.stdout
    waiting = tasks_by_id(cli_json(root, ["task", "list", "backend"], capsys))["backend-orgs"]
    assert (waiting["state"], waiting["waiting_for"]) == ("blocked", ["backend-auth", "infra-runtime"])

    done = cli_json(root, ["task", "done", "backend", "backend-auth"], capsys)
    assert (done["from"], done["to"], done["notes"]) == ("in-progress", "done", [])
    waiting = tasks_by_id(cli_json(root, ["task", "list", "backend"], capsys))["backend-orgs"]
    assert (waiting["state"], waiting["waiting_for"]) == ("blocked", ["infra-runtime"])

    assert cli(root, ["task", "done", "infra", "infra-network"], capsys).code == 0
    runtime = cli_json(root, ["task", "done", "infra", "infra-runtime"], capsys)
    assert runtime["notes"] == []  # its own dependency is done
    listed = cli_json(root, ["task", "list"], capsys)
    tasks = tasks_by_id(listed)
    assert (tasks["backend-orgs"]["state"], tasks["backend-orgs"]["waiting_for"]) == ("todo", [])
    assert tasks["backend-users"]["waiting_for"] == ["backend-orgs"]  # the next one still waits
    assert listed["done"] == 3
    assert sorted(store_rows(root, "SELECT task, stream, state FROM tasks WHERE phase = ?", [PHASE1])) == [
        ("backend-auth", "backend", "done"),
        ("infra-network", "infra", "done"),
        ("infra-runtime", "infra", "done"),
    ]


def test_starting_a_task_whose_dependencies_are_not_done_is_recorded_with_a_note(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli(root, ["task", "start", "frontend", "frontend-orgs"], capsys)
    assert result.code == 0
    assert (
        "note: frontend-orgs depends on tasks not done yet: frontend-dashboard, backend-orgs" in result.stdout
    )
    task = tasks_by_id(cli_json(root, ["task", "list", "frontend"], capsys))["frontend-orgs"]
    assert task["state"] == "blocked"  # started, but still waiting
    assert cli(root, ["task", "done", "frontend", "frontend-orgs"], capsys).code == 0
    task = tasks_by_id(cli_json(root, ["task", "list", "frontend"], capsys))["frontend-orgs"]
    assert (task["state"], task["waiting_for"]) == ("done", ["frontend-dashboard", "backend-orgs"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["task", "start", "backend", "infra-runtime"], "stream 'backend' has no task 'infra-runtime'"),
        (["task", "done", "frontend", "backend-auth"], "stream 'frontend' has no task 'backend-auth'"),
        (["task", "done", "backend", "nope"], "stream 'backend' has no task 'nope'"),
        (["task", "start", "nope", "backend-auth"], "no stream 'nope'"),
        (["task", "list", "nope"], "no stream 'nope'"),
    ],
    ids=["other-streams-task", "other-streams-task-done", "unknown-task", "unknown-stream", "list-unknown"],
)
def test_refusals_exit_2_and_change_nothing(
    root: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    result = cli(root, args, capsys)
    assert result.code == 2, result.output
    assert message in result.output
    assert store_rows(root, "SELECT task FROM tasks", []) == []
