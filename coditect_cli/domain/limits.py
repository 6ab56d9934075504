"""Bounds on every number a manifest or a command line may give, so no accepted value overflows later.

Kept free of imports: the command-line layer uses them for its options without loading the model.
"""

from __future__ import annotations

MAX_DAY = 1000  # phase days (a phase is at most 366 days plus 366 of slack)
MAX_TIMEOUT = 7 * 24 * 3600  # a gate's timeout, in seconds
MAX_TERMINAL = 9999
MAX_CHECKPOINT = 9999
MAX_PRICE = 1_000_000.0  # US dollars per million tokens
MAX_BUDGET = 1_000_000.0  # US dollars


def day_problem(day: int) -> str | None:
    """Why ``day`` cannot be a ``--day``, or None when it can."""
    if not 1 <= day <= MAX_DAY:
        return f"--day must be 1 to {MAX_DAY} (got {day})"
    return None
