"""Human output keeps the manifest's text literally: names and titles with brackets are not rich markup.

The sync panels' lines already print user text literally (commit subjects, task titles); these tests cover
the other places a stream name, a task title or a checkpoint title is printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from daykit import build, cli, edited_manifest, stream_of


@pytest.fixture(scope="module")
def root(isolated_git_module: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    def edit(data: dict[str, Any]) -> None:
        stream_of(data, "deploy")["name"] = "Deployment [k8s]"
        stream_of(data, "deploy")["deliverables"][0]["title"] = "Docker [multi-stage] build"
        data["checkpoints"][0]["title"] = "Infra [gcp] to Backend"

    return build(tmp_path_factory.mktemp("render"), edited_manifest(edit), setup=False)


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "220")


def test_sync_panel_lines_are_literal(root: Path, wide: None, capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(root, ["sync", "morning", "--day", "2"], capsys)
    assert result.code == 0, result.output
    assert "🎯 Today: Docker [multi-stage] build" in result.stdout


def test_sync_panel_titles_and_checkpoints_are_literal(
    root: Path, wide: None, capsys: pytest.CaptureFixture[str]
) -> None:
    result = cli(root, ["sync", "morning", "--day", "2"], capsys)
    assert "Deployment [k8s] (codi-devops-engineer)" in result.stdout
    assert "Checkpoint 1 tomorrow (day 3): Infra [gcp] to Backend" in result.stdout


def test_task_list_titles_are_literal(root: Path, wide: None, capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(root, ["task", "list", "deploy"], capsys)
    assert result.code == 0, result.output
    assert "Docker [multi-stage] build" in result.stdout


def test_status_stream_names_are_literal(root: Path, wide: None, capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(root, ["status", "--day", "2"], capsys)
    assert result.code == 0, result.output
    assert "Terminal 4 (Deployment [k8s]):" in result.stdout
    assert "Checkpoint 1: Infra [gcp] to Backend (upcoming)" in result.stdout
