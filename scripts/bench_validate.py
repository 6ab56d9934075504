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
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench import Row, _coditect, _scaled_sandbox, standalone  # noqa: E402


def alias_bomb() -> str:
    """The "billion laughs" manifest of the issue: 9 levels, each listing 9 aliases of the one before."""
    names = "abcdefghi"
    lines = ["a: &a [" + ",".join(['"lol"'] * 9) + "]"]
    for prev, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _timed(argv: list[str], cwd: Path, runs: int, expect: int | None) -> tuple[float, float, str]:
    """Median wall time and median CPU time (user + sys) of ``argv`` over ``runs`` runs after a warm-up,
    checking its exit code; and its stderr. CPU time is reported beside wall time because a loaded
    machine stretches the wall clock of every process alike."""
    walls: list[float] = []
    cpus: list[float] = []
    stderr = ""
    for i in range(max(1, runs) + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, timeout=300)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if expect is not None and proc.returncode != expect:
            raise SystemExit(f"expected exit {expect} from {argv}, got {proc.returncode}:\n{proc.stderr}")
        stderr = proc.stderr
        if i:  # the first run warms the caches
            walls.append(wall)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus), stderr


def _in_process(text: str, root: Path | None, runs: int) -> float:
    """Median seconds of load + validate of ``text`` in this process (no interpreter start-up)."""
    from coditect_cli.adapters.git import GitReader
    from coditect_cli.domain.loader import load_manifest_text
    from coditect_cli.domain.validate import validate
    from coditect_cli.errors import ManifestError

    samples = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        try:
            loaded = load_manifest_text(text, "bench.yaml")
            validate(loaded, root or Path("/nonexistent"), GitReader() if root else None)
        except ManifestError:
            pass
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_validate(runs: int, workdir: Path) -> list[Row]:
    """The rows: validate at 200 and 2,000 streams, their growth, the alias bomb, doctor beside a bomb."""
    rows: list[Row] = []
    cpu_of: dict[int, float] = {}
    base_wall, base_cpu, _ = _timed([*_coditect(), "--help"], workdir, runs, 0)
    rows.append(
        {
            "benchmark": "validate",
            "case": "coditect --help (start-up baseline)",
            "seconds": base_wall,
            "cpu": base_cpu,
        }
    )
    for n in (200, 2000):
        root = _scaled_sandbox(workdir, f"validate-{n}", n)
        wall, cpu, _ = _timed([*_coditect(), "validate"], root, runs, 0)
        cpu_of[n] = cpu
        text = (root / "workstreams" / "bench.yaml").read_text(encoding="utf-8")
        rows.append(
            {
                "benchmark": "validate",
                "case": f"coditect validate, {n} streams / 4 repos (tracked files checked)",
                "seconds": wall,
                "cpu": cpu,
                "in_process": _in_process(text, root, runs),
                **({"target": "<= 2 s"} if n == 2000 else {}),
            }
        )
    rows.append(
        {
            "benchmark": "validate",
            "case": "growth 200 -> 2,000 streams, CPU time (10x the streams; linear is <= 10x)",
            "seconds": 0.0,
            "ratio": cpu_of[2000] / cpu_of[200],
        }
    )
    root = workdir / "bomb"
    (root / "workstreams").mkdir(parents=True)
    bomb = alias_bomb()
    (root / "workstreams" / "bomb.yaml").write_text(bomb, encoding="utf-8")
    wall, cpu, stderr = _timed([*_coditect(), "validate"], root, runs, 2)
    problem = next((line for line in stderr.splitlines() if "yaml-too-large" in line), stderr.strip())
    rows.append(
        {
            "benchmark": "validate",
            "case": f"alias bomb ({len(bomb)} bytes, 9^9 values): refused, exit 2",
            "seconds": wall,
            "cpu": cpu,
            "in_process": _in_process(bomb, None, runs),
            "target": "<= 0.5 s",
            "problem": problem,
        }
    )
    example = (REPO / "workstreams" / "phase-1.yaml").read_text(encoding="utf-8")
    (root / "workstreams" / "phase-1.yaml").write_text(example, encoding="utf-8")
    wall, cpu, _ = _timed([*_coditect(), "doctor"], root, runs, None)
    rows.append(
        {
            "benchmark": "validate",
            "case": "coditect doctor, an alias bomb among the manifests (it reads every one)",
            "seconds": wall,
            "cpu": cpu,
        }
    )
    return rows


if __name__ == "__main__":
    raise SystemExit(standalone(bench_validate, runs=5, doc=__doc__))
