"""Run one command tied to its parent: ``python tether.py PARENT_PID -- ARGV...`` (see :func:`proc.run_tied`).

Started by coditect with the parent-death signal set to SIGTERM (``prctl(PR_SET_PDEATHSIG)``), it starts
ARGV in a process group of its own and waits for it. When coditect dies, even by SIGKILL, the kernel sends
this process SIGTERM and it kills the whole group with SIGKILL: a gate (and anything the gate started) never
outlives the run that started it. When the command ends, whatever it left running in its group is killed too.

Run as a script by its path (never imported by coditect): it must start fast and import nothing of coditect.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    """Tie ARGV to the parent named in ``argv[0]``; return ARGV's exit code (128 + N when killed by N)."""
    parent, command = int(argv[0]), argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the signal was armed
        return 128 + signal.SIGTERM
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: object) -> None:
        if child is not None:
            _kill_group(child.pid)
        os._exit(128 + signum)

    stops = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    for sig in stops:
        signal.signal(sig, stop)
    # No stop between the fork and knowing the child's group: held until then (the child unblocks them).
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    try:
        child = subprocess.Popen(
            command,
            start_new_session=True,
            preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, stops),
        )
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
    code = child.wait()
    _kill_group(child.pid)  # what the command left running in its group
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
