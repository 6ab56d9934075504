"""The one error hierarchy and the documented exit codes.

Every failure a user can cause or meet is a :class:`CoditectError`; the single handler in
``coditect_cli.cli.app`` turns it into a message and its exit code. The domain never exits or prints.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    """Exit codes of every ``coditect`` command (documented in the README)."""

    OK = 0
    ERROR = 1  # an operation failed (a git command, an I/O error, an unexpected state)
    USAGE = 2  # bad command line or bad manifest: fix the input and run again
    CHECK_FAILED = 3  # a check found problems: conflicts, ownership violations, failing gates
    REFUSED = 4  # refused because it would lose uncommitted or unpushed work
    UNAVAILABLE = 5  # an external system is missing or unreachable: tmux, origin, forge, a held lock


@dataclass(frozen=True)
class Location:
    """Where in a user's file a problem is: the file and a 1-based line (0 when unknown)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}"
        return self.file


@dataclass(frozen=True)
class Problem:
    """One finding: an error or a warning, with a stable code and, when known, a location."""

    code: str
    message: str
    location: Location | None = None
    severity: str = "error"

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.severity}: {self.message} [{self.code}]"

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "message": self.message, "severity": self.severity}
        if self.location is not None:
            out["file"] = self.location.file
            out["line"] = self.location.line
        return out


class CoditectError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code: ExitCode = ExitCode.ERROR
    code: str = "error"

    def __init__(self, message: str, *, problems: tuple[Problem, ...] = (), hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems
        self.hint = hint


class UsageError(CoditectError):
    """The command line asks for something that cannot be (unknown phase, bad option combination)."""

    exit_code = ExitCode.USAGE
    code = "usage"


class ManifestError(CoditectError):
    """The manifest cannot be read or is invalid; ``problems`` carries every finding with file:line."""

    exit_code = ExitCode.USAGE
    code = "manifest"


class CheckFailed(CoditectError):
    """A check ran and found problems (conflicts, ownership violations, gates)."""

    exit_code = ExitCode.CHECK_FAILED
    code = "check-failed"


class RefusedError(CoditectError):
    """The command refused because it would discard uncommitted or unpushed work."""

    exit_code = ExitCode.REFUSED
    code = "refused"


class UnavailableError(CoditectError):
    """A required external system is missing or unreachable."""

    exit_code = ExitCode.UNAVAILABLE
    code = "unavailable"


class PermissionDenied(CoditectError):
    """The forge answered, and refused: the token lacks a permission (exit 1, not 5: nothing is down)."""

    exit_code = ExitCode.ERROR
    code = "permission-denied"


class CommandFailed(CoditectError):
    """An external command (git, tmux, a gate) failed; carries the command line and its stderr."""

    exit_code = ExitCode.ERROR
    code = "command-failed"

    def __init__(self, argv: list[str], returncode: int, stderr: str, *, cwd: str | None = None):
        import shlex

        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        self.cwd = cwd
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {returncode}"
        where = f" (in {cwd})" if cwd else ""
        super().__init__(f"`{shlex.join(argv)}` failed{where}: {detail}")
