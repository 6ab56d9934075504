"""Rendering of the built-in agent's results and transcripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coditect_cli.domain.costs import Usage

if TYPE_CHECKING:
    from rich.console import Console

    from coditect_cli.services.agent import TaskResult


def tokens_label(usage: Usage) -> str:
    """``12.3k in, 1.2k out, 40.1k cached`` (cache reads; writes count as input)."""

    def k(n: int) -> str:
        return f"{n / 1000:.1f}k" if n >= 1000 else str(n)

    return f"{k(usage.input + usage.cache_write)} in, {k(usage.output)} out, {k(usage.cache_read)} cached"


def print_result(console: Console, result: TaskResult) -> None:
    """The end of a task run: status, reason, turns, tokens, cost against the budget, commits."""
    style = {"done": "green", "over-budget": "red", "failed": "red"}.get(result.status, "yellow")
    console.print(f"[{style}]{result.status}[/]: {result.stream}/{result.task}: {result.reason}", markup=True)
    budget = f" of ${result.budget_usd:g} budget ({result.budget})" if result.budget_usd is not None else ""
    console.print(
        f"{result.turns} turn(s), {tokens_label(result.usage)}, ${result.cost_usd:.4f} "
        f"(stream ${result.stream_cost_usd:.4f}{budget})"
    )
    for commit in result.commits:
        console.print(f"commit {commit[:12]}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", markup=True)
    console.print(f"transcript: {result.transcript}", style="dim")


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def print_transcript(console: Console, path: Path, entries: list[dict[str, Any]]) -> None:
    """One line per transcript entry."""
    console.print(f"transcript: {path}", style="dim")
    for e in entries:
        kind = e.get("kind")
        if kind == "start":
            console.print(f"start {e.get('stream')}/{e.get('task')} with {e.get('model')}")
        elif kind == "request":
            console.print(f"→ turn {e.get('turn')}: {_short(e.get('content'))}")
        elif kind == "reply":
            texts = [b.get("text", "") for b in e.get("content", []) if b.get("type") == "text"]
            usage = e.get("usage", {})
            console.print(
                f"← turn {e.get('turn')} ({e.get('stop_reason')}, {usage.get('input', 0)}+{usage.get('cache_read', 0)}"
                f" cached in, {usage.get('output', 0)} out, ${e.get('cost_usd', 0):.4f}): {_short(' '.join(texts))}"
            )
        elif kind == "tool":
            flag = " [error]" if e.get("is_error") else ""
            console.print(
                f"  {e.get('name')}({_short(e.get('input'), 120)}){flag}: {_short(e.get('result'))}"
            )
        elif kind in ("warning", "error"):
            console.print(f"{kind}: {e.get('message')}")
        elif kind == "end":
            console.print(f"end: {e.get('status')} ({e.get('reason')}), ${e.get('cost_usd', 0):.4f}")
