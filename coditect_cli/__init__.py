"""coditect: parallel workstreams for AI coding agents on one codebase."""

from __future__ import annotations

__version__ = "0.1.0"
