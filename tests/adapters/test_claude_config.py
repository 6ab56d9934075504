"""Claude Code's user configuration: read-only checks, and the consented trust edit (atomic, keeps every other
key, a backup, refuses a corrupt file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coditect_cli.adapters.claude_config import config_path, grant_trust, trust_state
from coditect_cli.errors import ExitCode, UnavailableError, UsageError

KEY = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(home), **extra}


def test_grant_keeps_other_keys_backs_up_once_and_is_idempotent(tmp_path: Path) -> None:
    config = tmp_path / ".claude.json"
    original = {
        "hasCompletedOnboarding": True,
        "theme": "light",
        "projects": {"/elsewhere": {"allowedTools": ["Bash(ls)"], "hasTrustDialogAccepted": True}},
        "customApiKeyResponses": {"approved": ["zzzz"], "rejected": [KEY[-20:]]},
    }
    config.write_text(json.dumps(original))
    config.chmod(0o640)
    env = env_for(tmp_path)
    paths = [tmp_path / "proj", tmp_path / "proj" / "wt"]
    before = trust_state(paths, KEY, env)
    assert before.onboarded and not before.trusted and before.key_approved is False and not before.ready

    path, changed = grant_trust(paths, KEY, env)
    assert path == config and len(changed) == 3
    data = json.loads(config.read_text())
    assert data["theme"] == "light" and data["projects"]["/elsewhere"]["allowedTools"] == ["Bash(ls)"]
    assert all(data["projects"][str(p)]["hasTrustDialogAccepted"] is True for p in paths)
    assert data["customApiKeyResponses"] == {"approved": ["zzzz", KEY[-20:]], "rejected": []}
    assert config.stat().st_mode & 0o777 == 0o640
    backup = tmp_path / ".claude.json.coditect-backup"
    assert json.loads(backup.read_text()) == original
    assert trust_state(paths, KEY, env).ready

    # Nothing left to change: nothing written, the first backup kept.
    written = config.stat().st_mtime_ns
    assert grant_trust(paths, KEY, env)[1] == []
    assert config.stat().st_mtime_ns == written
    grant_trust([tmp_path / "other"], None, env)
    assert json.loads(backup.read_text()) == original


def test_an_entry_claude_code_wrote_with_false_is_turned_true(tmp_path: Path) -> None:
    wt = tmp_path / "proj" / "wt"
    (tmp_path / ".claude.json").write_text(
        json.dumps({"projects": {str(wt): {"hasTrustDialogAccepted": False, "lastCost": 1.5}}})
    )
    grant_trust([wt], None, env_for(tmp_path))
    entry = json.loads((tmp_path / ".claude.json").read_text())["projects"][str(wt)]
    assert entry == {"hasTrustDialogAccepted": True, "lastCost": 1.5}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"], ids=["corrupt", "not-an-object"])
def test_a_corrupt_config_is_refused_and_left_alone(tmp_path: Path, text: str) -> None:
    config = tmp_path / ".claude.json"
    config.write_text(text)
    with pytest.raises(UsageError) as err:
        grant_trust([tmp_path / "p"], KEY, env_for(tmp_path))
    assert err.value.exit_code == ExitCode.USAGE and str(config) in err.value.message
    assert config.read_text() == text
    assert not (tmp_path / ".claude.json.coditect-backup").exists()


def test_an_unreadable_config_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / ".claude.json").mkdir()  # a directory where the file should be
    with pytest.raises(UnavailableError) as err:
        trust_state([tmp_path / "p"], None, env_for(tmp_path))
    assert err.value.exit_code == ExitCode.UNAVAILABLE and ".claude.json" in err.value.message


def test_claude_config_dir_is_honoured_and_a_missing_file_created_private(tmp_path: Path) -> None:
    base = tmp_path / "cfg"
    base.mkdir()
    env = env_for(tmp_path / "home", CLAUDE_CONFIG_DIR=str(base))
    assert config_path(env) == base / ".claude.json"
    state = trust_state([tmp_path / "p"], None, env)
    assert not state.exists and not state.onboarded and state.key_approved is None
    grant_trust([tmp_path / "p"], None, env)
    assert (base / ".claude.json").stat().st_mode & 0o777 == 0o600
    assert not (base / ".claude.json.coditect-backup").exists()  # nothing to back up
