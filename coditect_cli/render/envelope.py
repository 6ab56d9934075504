"""The one JSON envelope every command prints under ``--json``.

Its keys are pinned by a contract test; add fields inside ``data``, never at the top level, and bump
``ENVELOPE_SCHEMA`` on any incompatible change.
"""

from __future__ import annotations

import codecs
import json
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from coditect_cli.errors import CoditectError, ExitCode, Problem

ENVELOPE_SCHEMA = "coditect.result/v1"
ENVELOPE_KEYS = ("schema", "command", "ok", "exit_code", "data", "problems", "error")


def envelope(
    command: str,
    *,
    data: Any = None,
    problems: Iterable[Problem] = (),
    exit_code: int = ExitCode.OK,
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


def error_envelope(
    command: str, code: str, message: str, exit_code: int, hint: str | None = None
) -> dict[str, Any]:
    """The envelope of a run that failed before (or outside) any command: a usage error, a crash."""
    payload = envelope(command, exit_code=exit_code)
    payload["error"] = {"code": code, "message": message, "hint": hint}
    return payload


def dumps(payload: dict[str, Any], *, ascii_only: bool = False) -> str:
    """Serialise an envelope (stable key order for the top level, paths and dates as strings)."""
    return json.dumps(payload, indent=2, default=str, ensure_ascii=ascii_only)


def _unicode_stream(stream: TextIO) -> bool:
    try:
        return codecs.lookup(stream.encoding or "ascii").name.startswith("utf")
    except LookupError:
        return False


def write_envelope(payload: dict[str, Any], stream: TextIO | None = None) -> None:
    """Print ``payload`` on ``stream`` (stdout): raw UTF-8 text where the stream takes it, else
    ``\\uXXXX`` escapes, so the JSON stays exact whatever the output encoding."""
    out = stream or sys.stdout
    out.write(dumps(payload, ascii_only=not _unicode_stream(out)) + "\n")
    out.flush()
