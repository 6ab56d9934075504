"""The ``coditect`` console entry: a served command goes to the warm server (:mod:`coditect_cli.warm`)
before anything heavy is imported; every other one, and a served one without a server, runs here."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the command line: on the warm server when it serves it, else in this process."""
    from coditect_cli import warm

    code = warm.run_served(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from coditect_cli.cli.app import main as run

    run()
