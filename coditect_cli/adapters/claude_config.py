"""Claude Code's user configuration (``~/.claude.json``, or ``$CLAUDE_CONFIG_DIR/.claude.json``).

coditect reads it to tell whether Claude Code will stop a pane at a dialog, and — only with the user's
consent (``streams launch --trust`` or ``trust: true`` in the manifest) — adds to it:

- ``projects[<path>].hasTrustDialogAccepted = true`` for the project root, every repository root and every
  stream worktree (Claude Code 2.1.x looks the trust up at the git root of a linked worktree's main
  repository and walks up from the directory; an entry it wrote itself with ``false`` for a worktree would
  otherwise hide a trusted parent);
- the last 20 characters of ``ANTHROPIC_API_KEY`` in ``customApiKeyResponses.approved`` (what Claude Code
  itself stores when a user answers "Yes" to "Detected a custom API key"), when that key is set.

The edit is atomic and conservative: an exclusive lock (``.claude.json.coditect.lock``), a backup of the file
as it was (``.claude.json.coditect-backup``, kept from the first edit on), every other key kept as it is, the
new text written to a temporary file and renamed over the old one, and the file read again right before the
rename so a concurrent writer's change is never overwritten. A file that is not valid JSON, or not an object,
is refused (exit 2) and left alone; one that cannot be read or written, exit 5.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coditect_cli.errors import UnavailableError, UsageError

KEY_SUFFIX = 20
"""Claude Code remembers an approved API key by its last 20 characters."""


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where Claude Code keeps its user configuration."""
    env = os.environ if env is None else env
    base = env.get("CLAUDE_CONFIG_DIR")
    if base:
        return Path(base) / ".claude.json"
    return Path(env.get("HOME") or Path.home()) / ".claude.json"


@dataclass(frozen=True)
class TrustState:
    """What Claude Code's configuration says about a project."""

    path: Path
    exists: bool
    onboarded: bool
    untrusted: tuple[str, ...]  # the paths asked about that Claude Code does not trust
    key_approved: bool | None  # None: no ANTHROPIC_API_KEY to approve

    @property
    def trusted(self) -> bool:
        """No trust dialog will appear for any of the paths."""
        return not self.untrusted

    @property
    def ready(self) -> bool:
        """Claude Code will start without a dialog: trusted, the key approved (if any), onboarding done."""
        return self.trusted and self.key_approved is not False and self.onboarded


def read_config(path: Path) -> dict[str, Any]:
    """The configuration as a dict ({} when the file does not exist); refuses a corrupt or unreadable one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UnavailableError(f"cannot read Claude Code's configuration {path}: {exc}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"Claude Code's configuration {path} is not valid JSON ({exc}); coditect changed nothing",
            hint=f"repair it (Claude Code keeps backups in {path.parent / '.claude' / 'backups'}) or move it away",
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"Claude Code's configuration {path} is not a JSON object; coditect changed nothing")
    return data


def _entry_trusted(entry: object) -> bool:
    return isinstance(entry, dict) and entry.get("hasTrustDialogAccepted") is True


def _key_approved(data: Mapping[str, Any], api_key: str | None) -> bool | None:
    if not api_key:
        return None
    responses = data.get("customApiKeyResponses")
    approved = responses.get("approved") if isinstance(responses, dict) else None
    return isinstance(approved, list) and api_key[-KEY_SUFFIX:] in approved


def trust_state(
    paths: Sequence[Path], api_key: str | None, env: Mapping[str, str] | None = None
) -> TrustState:
    """Whether Claude Code would ask about ``paths`` (each must be trusted on its own entry) or the key."""
    path = config_path(env)
    data = read_config(path)
    raw = data.get("projects")
    projects: dict[str, Any] = raw if isinstance(raw, dict) else {}
    untrusted = tuple(str(p) for p in paths if not _entry_trusted(projects.get(str(p))))
    return TrustState(
        path=path,
        exists=path.exists(),
        onboarded=data.get("hasCompletedOnboarding") is True,
        untrusted=untrusted,
        key_approved=_key_approved(data, api_key),
    )


def _granted(
    data: dict[str, Any], paths: Sequence[Path], api_key: str | None
) -> tuple[dict[str, Any], list[str]]:
    """``data`` with ``paths`` trusted and the key approved; the list of what changed."""
    changed: list[str] = []
    projects = data.get("projects")
    projects = dict(projects) if isinstance(projects, dict) else {}
    for p in paths:
        entry = projects.get(str(p))
        entry = dict(entry) if isinstance(entry, dict) else {}
        if entry.get("hasTrustDialogAccepted") is not True:
            entry["hasTrustDialogAccepted"] = True
            projects[str(p)] = entry
            changed.append(f"trusted {p}")
    out = {**data, "projects": projects}
    if api_key and not _key_approved(data, api_key):
        responses = data.get("customApiKeyResponses")
        responses = dict(responses) if isinstance(responses, dict) else {}
        approved = [a for a in responses.get("approved", []) if isinstance(a, str)]
        rejected = [r for r in responses.get("rejected", []) if r != api_key[-KEY_SUFFIX:]]
        out["customApiKeyResponses"] = {
            **responses,
            "approved": [*approved, api_key[-KEY_SUFFIX:]],
            "rejected": rejected,
        }
        changed.append("approved the ANTHROPIC_API_KEY in the environment (its last 20 characters)")
    return out, changed


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".coditect.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise UnavailableError(f"cannot lock Claude Code's configuration {path}: {exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def grant_trust(
    paths: Sequence[Path], api_key: str | None, env: Mapping[str, str] | None = None
) -> tuple[Path, list[str]]:
    """Trust ``paths`` and approve the key in Claude Code's configuration; returns the file and the changes.

    Nothing is written when nothing changes. See the module docstring for how the edit is made safe.
    """
    path = config_path(env)
    with _locked(path):
        for _ in range(5):
            before = path.read_bytes() if path.exists() else None
            data = read_config(path)
            new, changed = _granted(data, paths, api_key)
            if not changed:
                return path, []
            backup = path.with_name(path.name + ".coditect-backup")
            try:
                if before is not None and not backup.exists():
                    shutil.copy2(path, backup)
                fd, tmp = tempfile.mkstemp(prefix=".claude.json.", dir=path.parent)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(new, fh, indent=2)
                    fh.write("\n")
                if before is not None:
                    shutil.copymode(path, tmp)
                else:
                    os.chmod(tmp, 0o600)
                now = path.read_bytes() if path.exists() else None
                if now != before:  # someone (Claude Code) wrote meanwhile: start again from their text
                    os.unlink(tmp)
                    continue
                os.replace(tmp, path)
            except OSError as exc:
                raise UnavailableError(f"cannot write Claude Code's configuration {path}: {exc}") from None
            return path, changed
    raise UnavailableError(f"Claude Code's configuration {path} kept changing; nothing was written")
