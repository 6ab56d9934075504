"""What a command run by a warm server's worker (:mod:`coditect_cli.warm`) hands back to the process its user
started, because only that process has the user's terminal as its controlling terminal.

In-process (the normal case) both functions do what they say at once. In a worker:

- :func:`exec_program` does not replace the worker: it records the program, the worker ends, and the caller
  replaces *itself* with it (``tmux attach``: the terminal's job control, resizes and Ctrl-Z reach tmux as
  they would have);
- :func:`need_terminal` stops the command before it changed anything and the caller runs it in-process,
  where a git, ssh or credential prompt can open the terminal.
"""

from __future__ import annotations

import os
import sys

_SERVED: list[bool] = [False]
_EXEC: list[list[str]] = []


class RunInCaller(BaseException):
    """Raised in a worker by :func:`need_terminal`: the command must run in the caller's own process.

    A BaseException, so that no ``except Exception`` on the way mistakes it for the command's failure."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def serving() -> None:
    """Mark this process as a warm server's worker (called once, in the forked worker)."""
    _SERVED[0] = True


def need_terminal(reason: str) -> None:
    """Make sure what follows runs in the process the user started (``reason``: what needs its terminal)."""
    if _SERVED[0]:
        raise RunInCaller(reason)


def exec_program(binary: str, argv: list[str]) -> None:
    """Replace this process with ``binary`` run as ``argv`` (does not return)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if _SERVED[0]:
        _EXEC[:] = [[binary, *argv]]
        raise SystemExit(0)
    os.execv(binary, argv)


def pending_exec() -> list[str] | None:
    """In a worker: the program the caller must become (binary then argv), if the command asked for one."""
    return list(_EXEC[0]) if _EXEC else None
