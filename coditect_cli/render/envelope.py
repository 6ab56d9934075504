"""The one JSON envelope every command prints under ``--json``.

Its keys are pinned by a contract test; add fields inside ``data``, never at the top level, and bump
``ENVELOPE_SCHEMA`` on any incompatible change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from coditect_cli.errors import CoditectError, ExitCode, Problem

ENVELOPE_SCHEMA = "coditect.result/v1"
ENVELOPE_KEYS = ("schema", "command", "ok", "exit_code", "data", "problems", "error")


def envelope(
    command: str,
    *,
    data: Any = None,
    problems: Iterable[Problem] = (),
    exit_code: ExitCode = ExitCode.OK,
    error: CoditectError | None = None,
) -> dict[str, Any]:
    """Build the envelope for one command's outcome."""
    return {
        "schema": ENVELOPE_SCHEMA,
        "command": command,
        "ok": exit_code == ExitCode.OK,
        "exit_code": int(exit_code),
        "data": data,
        "problems": [p.to_json() for p in problems],
        "error": None
        if error is None
        else {"code": error.code, "message": error.message, "hint": error.hint},
    }


def dumps(payload: dict[str, Any]) -> str:
    """Serialise an envelope (stable key order for the top level, paths and dates as strings)."""
    return json.dumps(payload, indent=2, default=str, ensure_ascii=False)
