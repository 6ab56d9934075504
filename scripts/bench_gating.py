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
pair (two PRs failing only together) next to one bad PR, against ceil(log2 n) + 1; and gate *command* runs
with three commands (lint, unit, e2e; each bad PR breaks one of them), the failing command first in every
split and a probe stopping at its first failure, against two baselines: the manifest's order (stopping at
the first failure) and every command every time. The command rows run real checkpoints at n = 16 with those
three commands (one bad PR at the first, middle and last positions; their counts must equal the simulated
ones) and a gate marked flaky that fails once on an all-green batch (retried once, merged, one flake).
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coditect_cli.adapters import proc  # noqa: E402

Row = dict[str, object]
STREAMS = 10
GATE = """import os, pathlib, sys
command = (sys.argv[1:] or ["gate"])[0]
with open(os.environ["GATE_COUNTER"], "a") as fh:
    fh.write(os.environ.get("CODITECT_COMMIT", "?") + " " + command + "\\n")
texts = [p.read_text() for p in pathlib.Path(".").glob("s*/*") if p.is_file()]
flaky = os.environ.get("GATE_FLAKY")  # a file: the first run of `gate.py unit` fails (and makes it)
if flaky and command == "unit" and not os.path.exists(flaky):
    open(flaky, "w").write("failed once")
    sys.exit(1)
sys.exit(1 if any("FAIL_GATE" in t or f"FAIL_ON {command}" in t for t in texts) else 0)
"""


def _git(repo: Path, *args: str) -> str:
    return proc.run(["git", "-C", str(repo), *args]).stdout.strip()


def _manifest(n: int, commands: tuple[str, ...] = (), flaky: str = "") -> str:
    """``n`` streams sharing one gate (``python3 gate.py``); with ``commands``, no stream gate but these
    checkpoint gates (``python3 gate.py <command>``, ``flaky`` marked flaky)."""
    gate = "[]" if commands else "[{name: gate, run: python3 gate.py}]"
    streams = "".join(
        f"  - {{id: s{k}, terminal: {k}, name: S{k}, agent: agent{k}, run: shell,\n"
        f"     work: [{{repo: app, topic: t{k}, owns: [s{k}/]}}], gates: {gate}}}\n"
        for k in range(1, n + 1)
    )
    names = ", ".join(f"s{k}" for k in range(1, n + 1))
    gates = ", ".join(
        f"{{name: {c}, run: python3 gate.py {c}{', flaky: true' if c == flaky else ''}}}" for c in commands
    )
    return (
        "version: 1\nphase: bench\nforge: local\nschedule: {start: 2026-12-01, days: 10}\n"
        "pass_env: [GATE_COUNTER, GATE_FLAKY]\n"
        f"repositories:\n  - {{id: app, path: .}}\nstreams:\n{streams}"
        f"checkpoints:\n  - {{id: 1, day: 3, title: All, streams: [{names}], gates: [{gates}]}}\n"
        "merge: {target: develop, strategy: squash, tag: v0.1.0}\n"
    )


def build_project(base: Path, n: int = STREAMS, manifest: str | None = None) -> Path:
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
    files = {
        ".gitignore": ".coditect/\n",
        "gate.py": GATE,
        "workstreams/bench.yaml": manifest or _manifest(n),
    }
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


def _break(root: Path, position: int, text: str) -> None:
    """Stream ``position`` pushes a commit adding ``text`` (a switch of gate.py) and its owner approves the
    new head (an approval counts only for the head it reviewed)."""
    from coditect_cli.project import Project
    from coditect_cli.services import prs, reviews
    from coditect_cli.services.demo import _commit

    worktree = root / ".coditect" / "worktrees" / "bench" / f"s{position}" / "app"
    ok, out = _commit(worktree, f"s{position}/work.txt", text + "\n", "feat: breaks a gate")
    assert ok, out
    prs.open_all(Project(root), "bench")
    reviews.review(Project(root), "bench", f"s{position}", owner=f"@agent{position}", state="approved")


def _restore(base: Path, pristine: Path) -> None:
    shutil.rmtree(base)
    shutil.copytree(pristine, base, symlinks=True)


def _classic(n: int, position: int) -> int:
    """The classic scheme's gate runs: batch, binary search of prefixes, re-test without the culprit (that
    re-test is the last probe when the culprit is the last PR)."""
    return 1 + math.ceil(math.log2(n)) + (0 if position == n else 1)


COMMANDS = ("lint", "unit", "e2e")  # the gate commands of the simulated checkpoints, in the manifest's order


def _simulate(
    items: list[str], fails: Callable[[frozenset[str]], set[str]], *, first: bool = True, stop: bool = True
) -> tuple[int, int, Any]:
    """The bisection (coditect_cli/domain/gating.py, the code a checkpoint drives) against simulated gates:
    ``fails(probe)`` is the set of commands that fail on it. Returns (gate runs, command runs, outcome).

    ``first``: a command seen failing runs first in later probes (what a checkpoint does); ``stop``: a probe
    stops at its first failing command (what a checkpoint does); without them, the baselines."""
    from coditect_cli.domain.gating import CommandOrder, GateSpec, search

    specs = [GateSpec("app", c, (c,), 60) for c in COMMANDS]
    order = CommandOrder()
    gen = search(items)
    probe = next(gen)
    runs = commands = 0
    while True:
        runs += 1
        failing = fails(frozenset(probe))
        passed = True
        for spec in order.arrange(specs) if first else specs:
            commands += 1
            if spec.run in failing:
                passed = False
                order.note(spec)
                if stop:
                    break
        try:
            probe = gen.send(passed)
        except StopIteration as done:
            return runs, commands, done.value


def _breaks(
    bad: dict[str, str], pair: tuple[str, str, str] | None = None
) -> Callable[[frozenset[str]], set[str]]:
    """``fails`` for PRs that each break one command (``bad``: PR -> command) and a ``pair`` (a, b, command)
    of PRs that break it only together."""

    def fails(probe: frozenset[str]) -> set[str]:
        out = {command for pr, command in bad.items() if pr in probe}
        if pair is not None and {pair[0], pair[1]} <= probe:
            out.add(pair[2])
        return out

    return fails


def bench_search(sizes: tuple[int, ...] = (8, 16, 32)) -> list[Row]:
    """Gate runs and gate command runs of the bisection (simulated gates: three commands, lint, unit, e2e),
    per case and size: worst, mean, per PR; and the command runs two baselines cost (every probe running
    the commands in the manifest's order and stopping at the first failure; every probe running all)."""
    from itertools import combinations

    rows: list[Row] = []
    for n in sizes:
        items = [f"p{i}" for i in range(n)]
        bound = 1 + math.ceil(math.log2(n))
        cases: dict[str, list[Callable[[frozenset[str]], set[str]]]] = {
            "0 bad": [_breaks({})],
            "1 bad breaking e2e (every position)": [_breaks({b: "e2e"}) for b in items],
            "2 bad breaking unit, e2e (every pair)": [
                _breaks({a: "unit", b: "e2e"}) for a, b in combinations(items, 2)
            ],
            "interaction pair breaking e2e + 1 bad breaking unit (every pair)": [
                _breaks({next(x for x in reversed(items) if x not in (a, b)): "unit"}, (a, b, "e2e"))
                for a, b in combinations(items, 2)
            ],
        }
        for case, oracles in cases.items():
            found = [_simulate(items, f) for f in oracles]
            runs = [r for r, _c, _o in found]
            commands = [c for _r, c, _o in found]
            in_order = [_simulate(items, f, first=False)[1] for f in oracles]
            every = [_simulate(items, f, first=False, stop=False)[1] for f in oracles]
            row: Row = {
                "benchmark": "gating",
                "case": f"bisection, n = {n}, {case}",
                "seconds": None,
                "gate_runs": max(runs),
                "gate_runs_mean": round(statistics.mean(runs), 2),
                "gate_runs_per_pr": round(statistics.mean(runs) / n, 3),
                "ceil_log2_n_plus_1": bound,
                "within_bound": f"{sum(r <= bound for r in runs)}/{len(runs)}",
                "commands_mean": round(statistics.mean(commands), 2),
                "commands_per_pr": round(statistics.mean(commands) / n, 3),
                "commands_mean_manifest_order": round(statistics.mean(in_order), 2),
                "commands_mean_all_commands": round(statistics.mean(every), 2),
            }
            if case.startswith("interaction"):
                pairs = [(a, b) for a, b in combinations(items, 2)]
                reported = sum(o.pairs == (pair,) for (_r, _c, o), pair in zip(found, pairs, strict=True))
                row["pairs_reported"] = f"{reported}/{len(found)}"
            rows.append(row)
    return rows


def bench_commands(workdir: Path, n: int = 16) -> list[Row]:
    """Real checkpoints over ``n`` PRs with three gate commands (lint, unit, e2e): one bad PR breaking e2e at
    the first, middle and last positions (gate and command runs, counted by the gate itself, against the
    simulation of :func:`bench_search` and the manifest-order baseline), and unit, marked flaky, failing once."""
    from coditect_cli.project import Project
    from coditect_cli.services.checkpoint import run_checkpoint

    base = workdir / "commands"
    base.mkdir(parents=True, exist_ok=True)
    counter = workdir / "command-runs.txt"
    os.environ["GATE_COUNTER"] = str(counter)
    root = build_project(base, n, _manifest(n, COMMANDS, flaky="unit"))
    pristine = workdir / "commands.pristine"
    shutil.copytree(base, pristine, symlinks=True)
    items = [f"p{i}" for i in range(n)]

    def checkpoint(case: str, expected: tuple[int, int, int] | None) -> Row:
        counter.write_text("")
        started = time.perf_counter()
        result = run_checkpoint(Project(root), "bench", 1, socket="coditect-bench-no-tmux")
        seconds = time.perf_counter() - started
        counted = len(counter.read_text().splitlines())
        assert result.status == "passed" and counted == result.gate_commands, (result.status, counted)
        row: Row = {
            "benchmark": "gating",
            "case": f"checkpoint, {n} PRs, lint/unit/e2e, {case}",
            "seconds": seconds,
            "gate_runs": result.gate_runs,
            "gate_commands": result.gate_commands,
            "left_out": [int(x["number"]) for x in result.left_out],
            "flakes": len(result.flakes),
        }
        if expected is not None:
            runs, commands, in_order = expected
            assert (result.gate_runs, result.gate_commands) == (runs, commands), (row, expected)
            row["commands_manifest_order"] = in_order
        return row

    rows: list[Row] = []
    for position in (1, n // 2, n):
        _restore(base, pristine)
        _break(root, position, "FAIL_ON e2e")
        fails = _breaks({items[position - 1]: "e2e"})
        runs, commands, _found = _simulate(items, fails)
        expected = (runs, commands, _simulate(items, fails, first=False)[1])
        rows.append(checkpoint(f"1 bad breaking e2e at position {position}", expected))
    _restore(base, pristine)
    os.environ["GATE_FLAKY"] = str(workdir / "flaky-failed")
    try:
        rows.append(checkpoint("all green, unit flaky and failing once (batch retried once)", None))
    finally:
        del os.environ["GATE_FLAKY"]
    return rows


def bench_gating(runs: int, workdir: Path) -> list[Row]:
    """Rows: the green batch (median of ``runs``), then one bad PR at each position, then the comparison."""
    from coditect_cli.domain.gating import identify_bound, mean_runs, worst_case_runs

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
        _break(root, position, "FAIL_GATE")
        seconds, reported, _counted, left = _checkpoint(root, counter)
        assert left == [position], left
        by_position[position] = reported
        bad_seconds.append(seconds)
    classic = {p: _classic(STREAMS, p) for p in by_position}
    search_rows = bench_search()
    command_rows = bench_commands(workdir)
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
        *command_rows,
    ]


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import standalone

    return standalone(bench_gating, runs=3, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
