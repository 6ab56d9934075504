#!/usr/bin/env python3
"""coditect benchmarks: wall-clock figures measured side by side with a baseline in the same run.

    python3 scripts/bench.py                 # every benchmark
    python3 scripts/bench.py --only startup  # one group
    python3 scripts/bench.py --json          # machine-readable

Speed is measured here, never in timed tests. Each figure is the median of several runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

Row = dict[str, object]


def _time_cmd(argv: list[str], runs: int, cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    """Median wall time of ``argv`` over ``runs`` runs (one warm-up run first)."""
    full_env = {**os.environ, **(env or {})}
    subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, check=False)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=full_env, capture_output=True, check=False)
        samples.append(time.perf_counter() - start)
        if proc.returncode not in (0,):
            raise SystemExit(f"benchmark command failed ({proc.returncode}): {argv}\n{proc.stderr.decode()}")
    return statistics.median(samples)


def _coditect() -> list[str]:
    exe = shutil.which("coditect")
    return [exe] if exe else [sys.executable, "-m", "coditect_cli"]


def bench_startup(runs: int, workdir: Path) -> list[Row]:
    """`coditect --help` and `coditect validate` on the sandbox vs `import typer, rich.console`."""
    from coditect_cli.sandbox import build_sandbox
    from coditect_cli.services.demo import example_manifest

    sandbox = build_sandbox(workdir / "sandbox", example_manifest())
    baseline = _time_cmd([sys.executable, "-c", "import typer, rich.console"], runs)
    help_time = _time_cmd([*_coditect(), "--help"], runs)
    validate_time = _time_cmd([*_coditect(), "validate"], runs, cwd=sandbox.root)
    return [
        {"benchmark": "startup", "case": "python -c 'import typer, rich.console' (baseline)", "seconds": baseline},
        {"benchmark": "startup", "case": "coditect --help", "seconds": help_time,
         "ratio_to_baseline": help_time / baseline, "target": "<= 1.3x baseline"},
        {"benchmark": "startup", "case": "coditect validate (sandbox, 4 repos)", "seconds": validate_time,
         "ratio_to_baseline": validate_time / baseline},
    ]


BENCHMARKS: dict[str, Callable[[int, Path], list[Row]]] = {
    "startup": bench_startup,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append", help="run only these groups")
    parser.add_argument("--runs", type=int, default=15, help="runs per measured command (median is reported)")
    parser.add_argument("--json", action="store_true", help="print JSON rows")
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="coditect-bench-") as tmp:
        env_home = Path(tmp) / "home"
        env_home.mkdir()
        os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
        for name in args.only or sorted(BENCHMARKS):
            work = Path(tmp) / name
            work.mkdir()
            rows.extend(BENCHMARKS[name](args.runs, work))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        extra = ""
        if "ratio_to_baseline" in row:
            extra += f"  ({float(row['ratio_to_baseline']):.2f}x baseline)"  # type: ignore[arg-type]
        if "target" in row:
            extra += f"  target {row['target']}"
        seconds = float(row["seconds"])  # type: ignore[arg-type]
        print(f"{row['benchmark']:<10} {row['case']:<58} {seconds * 1000:8.1f} ms{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
