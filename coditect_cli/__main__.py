from __future__ import annotations

from coditect_cli.entry import main

main()
