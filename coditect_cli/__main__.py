from __future__ import annotations

from coditect_cli.cli.app import main

main()
