#!/usr/bin/env python3
"""Benchmark of `coditect checkpoint`: gate runs and wall time over 10 approved PRs.

    python3 scripts/bench_gating.py              # 3 runs of the green case, every bad position once
    python3 scripts/bench_gating.py --runs 5 --json

One repository with a bare origin, 10 streams, each with one approved PR; the gate (one `python3 gate.py`
per gate run, shared by every stream) fails when a stream's file holds FAIL_GATE. Cases: every PR green
(target: 1 gate run); one bad PR, at each of the 10 positions (target: <= 5 gate runs; the proven optimum is
6 at worst, see coditect_cli/domain/gating.py); and, for comparison, what the classic scheme costs (whole
batch, binary search of prefixes, then a re-test without the culprit). Gate runs are counted by the gate
itself (a line per run in a counter file), and checked against what the checkpoint reports.

The search rows count gate runs of the bisection itself (coditect_cli/domain/gating.py, the code a
checkpoint drives; tests/gating/test_checkpoint.py checks that a real checkpoint runs exactly as many) at
n = 8, 16, 32 PRs with 0, 1 and 2 bad PRs (every position or pair of positions) and with one interaction
pair (two PRs failing only together) next to one bad PR, against ceil(log2 n) + 1.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coditect_cli.adapters import proc  # noqa: E402

Row = dict[str, object]
STREAMS = 10
GATE = """import os, pathlib, sys
with open(os.environ["GATE_COUNTER"], "a") as fh:
    fh.write(os.environ.get("CODITECT_COMMIT", "?") + "\\n")
sys.exit(1 if any("FAIL_GATE" in p.read_text() for p in pathlib.Path(".").glob("s*/*") if p.is_file()) else 0)
"""


def _git(repo: Path, *args: str) -> str:
    return proc.run(["git", "-C", str(repo), *args]).stdout.strip()


def _manifest(n: int) -> str:
    streams = "".join(
        f"  - {{id: s{k}, terminal: {k}, name: S{k}, agent: agent{k}, run: shell,\n"
        f"     work: [{{repo: app, topic: t{k}, owns: [s{k}/]}}], gates: [{{name: gate, run: python3 gate.py}}]}}\n"
        for k in range(1, n + 1)
    )
    names = ", ".join(f"s{k}" for k in range(1, n + 1))
    return (
        "version: 1\nphase: bench\nforge: local\nschedule: {start: 2026-12-01, days: 10}\n"
        f"repositories:\n  - {{id: app, path: .}}\nstreams:\n{streams}"
        f"checkpoints:\n  - {{id: 1, day: 3, title: All, streams: [{names}]}}\n"
        "merge: {target: develop, strategy: squash, tag: v0.1.0}\n"
    )


def build_project(base: Path, n: int = STREAMS) -> Path:
    """The project: set up, each stream with one commit and an approved PR. Returns its root."""
    from coditect_cli.project import Project
    from coditect_cli.services import prs, reviews
    from coditect_cli.services.demo import _commit
    from coditect_cli.services.setup import setup

    origin, root = base / "origin.git", base / "proj"
    proc.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)])
    proc.run(["git", "init", "-q", "-b", "main", str(root)])
    _git(root, "config", "user.name", "Bench")
    _git(root, "config", "user.email", "bench@example.invalid")
    files = {".gitignore": ".coditect/\n", "gate.py": GATE, "workstreams/bench.yaml": _manifest(n)}
    files |= {f"s{k}/README.md": f"stream {k}\n" for k in range(1, n + 1)}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "initial")
    _git(root, "branch", "develop")
    _git(root, "remote", "add", "origin", str(origin))
    _git(root, "push", "-q", "origin", "main", "develop")
    project = Project(root)
    setup(project, "bench")
    for k in range(1, n + 1):
        worktree = root / ".coditect" / "worktrees" / "bench" / f"s{k}" / "app"
        ok, out = _commit(worktree, f"s{k}/work.txt", f"work {k}\n", f"feat(s{k}): work")
        assert ok, out
    prs.open_all(project, "bench")
    for k in range(1, n + 1):
        reviews.review(project, "bench", f"s{k}", owner=f"@agent{k}", state="approved")
    return root


def _checkpoint(root: Path, counter: Path) -> tuple[float, int, int, list[int]]:
    """One checkpoint: (seconds, reported gate runs, counted gate runs, left-out PR numbers)."""
    from coditect_cli.project import Project
    from coditect_cli.services.checkpoint import run_checkpoint

    counter.write_text("")
    started = time.perf_counter()
    result = run_checkpoint(Project(root), "bench", 1, socket="coditect-bench-no-tmux")
    seconds = time.perf_counter() - started
    assert result.status == "passed", result.status
    counted = len(counter.read_text().splitlines())
    assert counted == result.gate_runs, (counted, result.gate_runs)
    return seconds, result.gate_runs, counted, [int(x["number"]) for x in result.left_out]


def _restore(base: Path, pristine: Path) -> None:
    shutil.rmtree(base)
    shutil.copytree(pristine, base, symlinks=True)


def _classic(n: int, position: int) -> int:
    """The classic scheme's gate runs: batch, binary search of prefixes, re-test without the culprit (that
    re-test is the last probe when the culprit is the last PR)."""
    return 1 + math.ceil(math.log2(n)) + (0 if position == n else 1)


def _count(items: list[str], red: object) -> tuple[int, object]:
    from coditect_cli.domain.gating import search

    check = red  # red(probe set) -> bool
    gen = search(items)
    probe = next(gen)
    asked = 1
    try:
        while True:
            probe = gen.send(not check(set(probe)))  # type: ignore[operator]
            asked += 1
    except StopIteration as stop:
        return asked, stop.value


def bench_search(sizes: tuple[int, ...] = (8, 16, 32)) -> list[Row]:
    """Gate runs of the bisection (simulated gates), per case and size: worst, mean, and per PR."""
    from itertools import combinations

    rows: list[Row] = []
    for n in sizes:
        items = [f"p{i}" for i in range(n)]
        bound = 1 + math.ceil(math.log2(n))
        cases: dict[str, list[int]] = {"0 bad": [_count(items, lambda p: False)[0]]}
        cases["1 bad (every position)"] = [_count(items, lambda p, b=b: b in p)[0] for b in items]
        cases["2 bad (every pair)"] = [
            _count(items, lambda p, a=a, b=b: a in p or b in p)[0] for a, b in combinations(items, 2)
        ]
        pair_runs: list[int] = []
        reported = 0
        for a, b in combinations(items, 2):
            other = next(x for x in reversed(items) if x not in (a, b))
            runs_, found = _count(items, lambda p, a=a, b=b, o=other: {a, b} <= p or o in p)
            pair_runs.append(runs_)
            reported += found.pairs == ((a, b),)  # type: ignore[attr-defined]
        cases["interaction pair + 1 bad (every pair)"] = pair_runs
        for case, counts in cases.items():
            rows.append(
                {
                    "benchmark": "gating",
                    "case": f"bisection, n = {n}, {case}",
                    "seconds": None,
                    "gate_runs": max(counts),
                    "gate_runs_mean": round(statistics.mean(counts), 2),
                    "gate_runs_per_pr": round(statistics.mean(counts) / n, 3),
                    "ceil_log2_n_plus_1": bound,
                    "within_bound": f"{sum(c <= bound for c in counts)}/{len(counts)}",
                    **({"pairs_reported": f"{reported}/{len(counts)}"} if "interaction" in case else {}),
                }
            )
    return rows


def bench_gating(runs: int, workdir: Path) -> list[Row]:
    """Rows: the green batch (median of ``runs``), then one bad PR at each position, then the comparison."""
    from coditect_cli.domain.gating import identify_bound, mean_runs, worst_case_runs
    from coditect_cli.project import Project
    from coditect_cli.services import prs
    from coditect_cli.services.demo import _commit

    base = workdir / "gating"
    base.mkdir(parents=True, exist_ok=True)
    counter = workdir / "gate-runs.txt"
    os.environ["GATE_COUNTER"] = str(counter)
    started = time.perf_counter()
    root = build_project(base)
    build_s = time.perf_counter() - started
    pristine = workdir / "gating.pristine"
    shutil.copytree(base, pristine, symlinks=True)

    green: list[float] = []
    green_runs = 0
    for _ in range(runs):
        _restore(base, pristine)
        seconds, green_runs, _counted, left = _checkpoint(root, counter)
        assert left == []
        green.append(seconds)
    by_position: dict[int, int] = {}
    bad_seconds: list[float] = []
    for position in range(1, STREAMS + 1):
        _restore(base, pristine)
        worktree = root / ".coditect" / "worktrees" / "bench" / f"s{position}" / "app"
        ok, out = _commit(worktree, f"s{position}/work.txt", "FAIL_GATE\n", "feat: breaks the gate")
        assert ok, out
        prs.open_all(Project(root), "bench")
        seconds, reported, _counted, left = _checkpoint(root, counter)
        assert left == [position], left
        by_position[position] = reported
        bad_seconds.append(seconds)
    classic = {p: _classic(STREAMS, p) for p in by_position}
    search_rows = bench_search()
    within = sum(1 for r in by_position.values() if r <= identify_bound(STREAMS))
    return [
        {
            "benchmark": "gating",
            "case": f"checkpoint, {STREAMS} approved PRs, all green (target: 1 gate run)",
            "seconds": statistics.median(green),
            "gate_runs": green_runs,
            "prs": STREAMS,
        },
        {
            "benchmark": "gating",
            "case": f"checkpoint, {STREAMS} PRs, one bad, every position (target: <= 5 gate runs)",
            "seconds": statistics.median(bad_seconds),
            "gate_runs": max(by_position.values()),
            "gate_runs_mean": statistics.mean(by_position.values()),
            "gate_runs_by_position": by_position,
            "positions_within_5": within,
            "proven_worst": worst_case_runs(STREAMS),
            "model_mean": mean_runs(STREAMS),
        },
        {
            "benchmark": "gating",
            "case": "comparison: classic (batch, prefix bisection, re-test without the culprit), same positions",
            "seconds": None,
            "gate_runs": max(classic.values()),
            "gate_runs_mean": statistics.mean(classic.values()),
            "gate_runs_by_position": classic,
        },
        {
            "benchmark": "gating",
            "case": "building the project (setup, 10 PRs opened and approved)",
            "seconds": build_s,
            "gate_runs": 0,
        },
        *search_rows,
    ]


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import standalone

    return standalone(bench_gating, runs=3, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
