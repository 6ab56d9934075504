#!/usr/bin/env python3
"""Benchmark of reading hostile and large manifests: `coditect validate` at 200 and 2,000 streams, and the
alias-bomb manifest.

    python3 scripts/bench_validate.py              # 5 runs, medians
    python3 scripts/bench_validate.py --runs 3 --json

The scaled manifests are the example's repositories with N streams, each owning its own committed
``area-<i>/`` (so the ownership checks match real tracked files). Targets: validate linear in the streams,
2,000 streams <= 2 s; the 342-byte alias bomb (9 levels of 9 aliases, 9^9 values) refused with file:line
in <= 0.5 s.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench import Row, _coditect, _scaled_sandbox, _time_cmd, standalone  # noqa: E402


def alias_bomb() -> str:
    """The "billion laughs" manifest of the issue: 9 levels, each listing 9 aliases of the one before."""
    names = "abcdefghi"
    lines = ["a: &a [" + ",".join(['"lol"'] * 9) + "]"]
    for prev, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _refused(argv: list[str], cwd: Path, runs: int) -> tuple[float, str]:
    """Median time of a command that must exit 2, and its first problem line."""
    samples = []
    first = ""
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=120)
        samples.append(time.perf_counter() - start)
        if proc.returncode != 2:
            raise SystemExit(f"expected exit 2 from {argv}, got {proc.returncode}:\n{proc.stderr}")
        first = next((line for line in proc.stderr.splitlines() if "yaml-too-large" in line), proc.stderr)
    samples.sort()
    return samples[len(samples) // 2], first.strip()


def bench_validate(runs: int, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    per_stream: dict[int, float] = {}
    for n in (200, 2000):
        root = _scaled_sandbox(workdir, f"validate-{n}", n)
        seconds = _time_cmd([*_coditect(), "validate"], max(1, runs), cwd=root)
        per_stream[n] = seconds
        rows.append(
            {
                "benchmark": "validate",
                "case": f"coditect validate, {n} streams / 4 repos (tracked files checked)",
                "seconds": seconds,
                **({"target": "<= 2 s"} if n == 2000 else {}),
            }
        )
    rows.append(
        {
            "benchmark": "validate",
            "case": "growth 200 -> 2,000 streams (10x the streams; linear is <= 10x)",
            "seconds": 0.0,
            "ratio": per_stream[2000] / per_stream[200],
        }
    )
    root = _scaled_sandbox(workdir, "bomb", 5)
    (root / "workstreams" / "bench.yaml").write_text(alias_bomb(), encoding="utf-8")
    seconds, problem = _refused([*_coditect(), "validate", "bench"], root, runs)
    rows.append(
        {
            "benchmark": "validate",
            "case": f"alias bomb ({len(alias_bomb())} bytes, 9^9 values): refused, exit 2",
            "seconds": seconds,
            "target": "<= 0.5 s",
            "problem": problem,
        }
    )
    (root / "workstreams" / "other.yaml").write_text(alias_bomb(), encoding="utf-8")
    (root / "workstreams" / "bench.yaml").write_text(
        (REPO / "workstreams" / "phase-1.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    start = time.perf_counter()
    subprocess.run([*_coditect(), "doctor"], cwd=root, capture_output=True, check=False, timeout=300)
    rows.append(
        {
            "benchmark": "validate",
            "case": "coditect doctor with an alias bomb among the manifests (reads every manifest)",
            "seconds": time.perf_counter() - start,
        }
    )
    return rows


if __name__ == "__main__":
    raise SystemExit(standalone(bench_validate, runs=5, doc=__doc__))
