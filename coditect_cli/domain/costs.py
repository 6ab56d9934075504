"""Token usage and what it costs: the price table, sums, and the budget rule (pure).

Prices are US dollars per million tokens, per model. The built-in table holds Anthropic's published list
prices; a manifest's ``prices:`` mapping overrides or adds models. A model missing from both is priced with
the most expensive known model's prices (never free), and the cost is marked as an estimate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from coditect_cli.domain.manifest import Price

MILLION = 1_000_000

# USD per million tokens (input, output, 5-minute cache write, cache read).
BUILTIN_PRICES: dict[str, Price] = {
    "claude-opus-4": Price(input=15.0, output=75.0, cache_write=18.75, cache_read=1.5),
    "claude-opus-4-1": Price(input=15.0, output=75.0, cache_write=18.75, cache_read=1.5),
    "claude-opus-4-5": Price(input=5.0, output=25.0, cache_write=6.25, cache_read=0.5),
    "claude-sonnet-4": Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.3),
    "claude-sonnet-4-5": Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.3),
    "claude-3-7-sonnet": Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.3),
    "claude-haiku-4-5": Price(input=1.0, output=5.0, cache_write=1.25, cache_read=0.1),
    "claude-3-5-haiku": Price(input=0.8, output=4.0, cache_write=1.0, cache_read=0.08),
}

WARN_AT = 0.8
"""The share of a budget at which a warning is given."""

BudgetState = Literal["none", "ok", "warning", "over"]


@dataclass(frozen=True)
class Usage:
    """Tokens of one or more requests: uncached input, output, cache writes and cache reads."""

    input: int = 0
    output: int = 0
    cache_write: int = 0
    cache_read: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.cache_write + other.cache_write,
            self.cache_read + other.cache_read,
        )

    @property
    def total(self) -> int:
        """Every token counted (input of all kinds, and output)."""
        return self.input + self.output + self.cache_write + self.cache_read

    def to_json(self) -> dict[str, int]:
        return {
            "input": self.input,
            "output": self.output,
            "cache_write": self.cache_write,
            "cache_read": self.cache_read,
        }


def total(usages: Iterable[Usage]) -> Usage:
    """The sum of ``usages``."""
    out = Usage()
    for usage in usages:
        out = out + usage
    return out


def price_for(model: str, overrides: Mapping[str, Price] | None = None) -> tuple[Price, bool]:
    """The price of ``model`` and whether it is known (an override, a table entry, or a dated variant of one).

    ``claude-sonnet-4-5-20250929`` is priced as ``claude-sonnet-4-5``: the longest known name it starts with.
    """
    table = {**BUILTIN_PRICES, **(overrides or {})}
    if model in table:
        return table[model], True
    prefixes = [name for name in table if model.startswith(name + "-")]
    if prefixes:
        return table[max(prefixes, key=len)], True
    return max(table.values(), key=lambda p: p.output), False


def cost(usage: Usage, price: Price) -> float:
    """What ``usage`` costs at ``price``, in US dollars."""
    return (
        usage.input * price.input
        + usage.output * price.output
        + usage.cache_write * price.cache_write
        + usage.cache_read * price.cache_read
    ) / MILLION


def budget_state(spent: float, budget: float | None) -> BudgetState:
    """``none`` without a budget, else ``ok``, ``warning`` (from 80 %) or ``over`` (spent reaches it)."""
    if budget is None:
        return "none"
    if spent >= budget:
        return "over"
    if spent >= WARN_AT * budget:
        return "warning"
    return "ok"
