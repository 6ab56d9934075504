#!/usr/bin/env python3
"""Benchmark of the built-in agent (``run: anthropic``) against the fake Messages API (tests/fakeanthropic).

    python3 scripts/bench_agent.py              # 5 runs, medians
    python3 scripts/bench_agent.py --runs 3 --json

A 20-turn task (19 tool calls reading, listing and searching the stream's worktree, then a final answer) on a
one-repository project set up once. Figures:

- overhead per turn excluding the model: the run's wall time minus the time spent inside the model call
  (``LLM.complete``), divided by the turns: the loop, the tools, the store and the transcript (target <= 20 ms);
  the model call's round trip to the local fake (SDK, HTTP, SSE parsing and the fake's own work) beside it;
- import cost kept off the start-up path: whether ``coditect --help`` imports ``anthropic`` (it must not),
  and what importing the SDK costs;
- tokens saved by prompt caching over the 20 turns, counted from the usage the fake returns: the same task
  with and without ``cache_control``; input tokens billed at the full rate, tokens read from the cache, and
  what both cost at claude-sonnet-4-5's prices.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "agent"))

Row = dict[str, object]
TURNS = 20
TARGET_MS = 20.0


def _script() -> list[object]:
    from fakeanthropic.server import Turn

    calls = [
        Turn.tool("read_file", "Reading.", path="s1/README.md"),
        Turn.tool("list_files", path="s1"),
        Turn.tool("search", pattern="stream", path="s1"),
    ]
    return [calls[i % len(calls)] for i in range(TURNS - 1)] + [Turn.text("Done: nothing to change.")]


class Timed:
    """An LLM that measures the time spent in the wrapped one."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.seconds = 0.0

    def complete(self, request: object) -> object:
        start = time.perf_counter()
        try:
            return self.inner.complete(request)  # type: ignore[attr-defined]
        finally:
            self.seconds += time.perf_counter() - start


def _run(root: Path, *, cache: bool) -> tuple[float, float, int, list[object]]:
    from fakeanthropic.server import DEFAULT_KEY, FakeAnthropic

    from coditect_cli.adapters.llm import AnthropicLLM
    from coditect_cli.project import Project
    from coditect_cli.services.agent import run_task

    with FakeAnthropic(_script()) as fake:  # type: ignore[arg-type]
        llm = Timed(AnthropicLLM(DEFAULT_KEY, base_url=fake.base_url, prompt_cache=cache))
        start = time.perf_counter()
        result = run_task(Project(root), "phase-1", "s1", llm=llm)  # type: ignore[arg-type]
        total = time.perf_counter() - start
        assert result.status == "done" and result.turns == TURNS, result.reason
        return total, llm.seconds, result.turns, list(fake.usages)


def bench_agent(runs: int, workdir: Path) -> list[Row]:
    import agentkit

    from coditect_cli.domain.costs import BUILTIN_PRICES, Usage, cost, total

    root = agentkit.build(workdir, options="      max_turns: 40").root
    _run(root, cache=True)  # warm-up: imports, first store open
    overheads, models = [], []
    for _ in range(max(1, runs)):
        wall, model, turns, _ = _run(root, cache=True)
        overheads.append((wall - model) / turns)
        models.append(model / turns)
    overhead = statistics.median(overheads)
    rows: list[Row] = [
        {
            "benchmark": "agent",
            "case": f"overhead per turn excluding the model ({TURNS}-turn task, tools included)",
            "seconds": overhead,
            "target": f"<= {TARGET_MS:g} ms",
            "ok": overhead * 1000 <= TARGET_MS,
        },
        {
            "benchmark": "agent",
            "case": "model call per turn against the local fake (SDK + HTTP + SSE + the fake)",
            "seconds": statistics.median(models),
        },
    ]
    probe = (
        "import sys\nfrom coditect_cli.cli.app import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('anthropic' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    imported = done.stderr.strip().splitlines()[-1] == "True"
    cost_import = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; t = time.perf_counter(); import anthropic; print(time.perf_counter() - t)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows.append(
        {
            "benchmark": "agent",
            "case": "coditect --help imports anthropic",
            "seconds": 0.0,
            "imports_anthropic": imported,
            "target": "False",
        }
    )
    rows.append(
        {
            "benchmark": "agent",
            "case": "import anthropic (paid by agent run only)",
            "seconds": float(cost_import.stdout),
        }
    )
    price = BUILTIN_PRICES["claude-sonnet-4-5"]
    sums: dict[bool, Usage] = {}
    for cache in (False, True):
        _, _, _, usages = _run(root, cache=cache)
        sums[cache] = total(
            Usage(u.input_tokens, u.output_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens)  # type: ignore[attr-defined]
            for u in usages
        )
    plain, cached = sums[False], sums[True]
    rows.append(
        {
            "benchmark": "agent",
            "case": f"prompt caching over a {TURNS}-turn task (tokens from the fake's usage)",
            "seconds": 0.0,
            "input_tokens_without_cache": plain.input,
            "full_rate_input_with_cache": cached.input + cached.cache_write,
            "read_from_cache": cached.cache_read,
            "saved_share": round(cached.cache_read / max(1, plain.input), 3),
            "usd_without_cache": round(cost(plain, price), 4),
            "usd_with_cache": round(cost(cached, price), 4),
        }
    )
    return rows


def main() -> int:
    from bench import standalone

    return standalone(bench_agent, runs=5, doc=__doc__)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
