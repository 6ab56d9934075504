"""The ``coditect`` console entry: a served command goes to the warm server (:mod:`coditect_cli.warm`)
before anything heavy is imported; every other one, and a served one without a server, runs here."""

from __future__ import annotations

import os
import sys

SERVED: frozenset[tuple[str, ...]] = frozenset(
    {("status",), ("streams", "status"), ("sync", "morning"), ("streams", "launch")}
)
"""Commands (their words) a warm server runs. None needs to own the terminal: ``streams launch`` hands its
``tmux attach`` back to the caller, and runs in the caller instead when it would push or reach remote hosts
(a prompt needs the terminal); see :mod:`coditect_cli.handoff`."""


def enabled(env: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """Whether warm serving is on (``CODITECT_SERVER`` is not 0/off/no/false)."""
    value = (env if env is not None else os.environ).get("CODITECT_SERVER", "1").strip().lower()
    return value not in ("0", "off", "no", "false")


def command_words(argv: list[str]) -> tuple[str, ...]:
    """The first two words of ``argv`` that are neither options nor the value of ``--root``."""
    words: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--root":
            skip = True
            continue
        if arg == "--":
            break
        if arg.startswith("-"):
            continue
        words.append(arg)
        if len(words) == 2:
            break
    return tuple(words)


def served(argv: list[str]) -> bool:
    """Whether ``argv`` names a command a warm server runs (and asks for no help)."""
    if any(arg in ("--help", "-h", "--version") for arg in argv):
        return False
    words = command_words(argv)
    return words[:1] in SERVED or words[:2] in SERVED


def main() -> None:
    """Run the command line: on the warm server when it serves it, else in this process."""
    argv = sys.argv[1:]
    if enabled() and served(argv):
        from coditect_cli import warm

        code = warm.run_served(argv)
        if code is not None:
            sys.exit(code)
    from coditect_cli.cli.app import main as run

    run()
