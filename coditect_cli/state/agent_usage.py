"""The built-in agent's token usage and cost, one row per API request (migration 5).

Rows are per phase, stream and task; the sums by stream and for the phase are what ``status``, the syncs and
the budgets read. Costs are stored as computed when the request was made (with the prices then in force).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coditect_cli.domain.costs import Usage
from coditect_cli.state.store import Store, utc_now


@dataclass(frozen=True)
class Spend:
    """Tokens and dollars of a set of requests."""

    requests: int
    usage: Usage
    cost_usd: float

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "tokens": self.usage.to_json(),
            "cost_usd": round(self.cost_usd, 6),
        }


NOTHING = Spend(0, Usage(), 0.0)

_SUMS = "COUNT(*), SUM(input), SUM(output), SUM(cache_write), SUM(cache_read), SUM(cost_usd)"


def _spend(row: tuple[Any, ...]) -> Spend:
    n, i, o, w, r, c = (v or 0 for v in row)
    return Spend(int(n), Usage(int(i), int(o), int(w), int(r)), float(c))


def record(
    store: Store, phase: str, stream: str, task: str, model: str, usage: Usage, cost_usd: float
) -> None:
    """Store one request's usage and cost."""
    store.execute(
        "INSERT INTO agent_usage (phase, stream, task, model, input, output, cache_write, cache_read, cost_usd,"
        " time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            phase,
            stream,
            task,
            model,
            usage.input,
            usage.output,
            usage.cache_write,
            usage.cache_read,
            cost_usd,
            utc_now(),
        ],
    )


def stream_spend(store: Store, phase: str, stream: str, task: str | None = None) -> Spend:
    """What ``stream`` (or one of its tasks) has spent in ``phase``."""
    if task is None:
        rows = store.query(f"SELECT {_SUMS} FROM agent_usage WHERE phase = ? AND stream = ?", [phase, stream])
    else:
        rows = store.query(
            f"SELECT {_SUMS} FROM agent_usage WHERE phase = ? AND stream = ? AND task = ?",
            [phase, stream, task],
        )
    return _spend(rows[0]) if rows else NOTHING


def phase_spend(store: Store, phase: str) -> dict[str, Spend]:
    """What each stream has spent in ``phase`` (streams that never ran the agent are absent)."""
    rows = store.query(f"SELECT stream, {_SUMS} FROM agent_usage WHERE phase = ? GROUP BY stream", [phase])
    return {str(row[0]): _spend(row[1:]) for row in rows}
