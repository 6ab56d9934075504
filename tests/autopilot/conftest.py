"""Fixtures of the autopilot tests: the gating tests' tiny project (tests/gating is put on sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

for _name in ("gating", "agent"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / _name))
