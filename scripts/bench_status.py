#!/usr/bin/env python3
"""Benchmark of `coditect streams status --json` with a live tmux session: a curve at 10, 50 and 100 streams
over 1 and over 10 repositories, against the Python start-up baseline, interleaved in one run.

    python3 scripts/bench_status.py                 # 5 runs per point, medians
    python3 scripts/bench_status.py --runs 3 --json
    CODITECT_BENCH_STATUS_SIZES=10,50 python3 scripts/bench_status.py
    CODITECT_BENCH_BEFORE=/path/to/older/checkout python3 scripts/bench_status.py   # and that code, interleaved

The projects: one repository (the sandbox's superproject, `streams setup` without push: no branch has an
upstream) and ten repositories (scripts/bench_day.py's superproject and 9 submodules with bare origins,
every branch pushed, one commit per stream, a PR per stream), each stream `run: shell` in its own pane on
a private tmux server. Per point:

- wall time: median of `coditect streams status --json` as a user gets it from the second run on (answered
  by the warm server the first run started, coditect_cli.warm), of the same with `CODITECT_SERVER=0` (all
  in one process: `in_process_*`) and of the baseline `python -c 'import typer, rich.console'`, run
  alternately (so load hits all alike), and their ratios (target: at most 2x); CPU time likewise (user +
  system of the command and its children; a served run adds its worker's, read from the server's children
  time), the figure to read on a loaded machine;
- work: the median of `services.streams.status()` alone, in this process;
- processes one call starts, counted by `git` and `tmux` shims first on PATH: git per repository
  (attributed through the repository's git dir), min and max over the repositories, and tmux per call
  (target: constant in the number of streams; at most one capture-pane per pane). Warm: the worktrees'
  kept statuses are valid (nothing changed since the last call); cold: the kept statuses deleted first,
  so every worktree gets its `git status` once.

With `CODITECT_BENCH_BEFORE` naming another checkout of coditect (e.g. `git worktree add /tmp/before
<commit>`), its `streams status --json` is timed too, in the same interleaved loop, with its processes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

Row = dict[str, object]
SIZES = tuple(int(n) for n in os.environ.get("CODITECT_BENCH_STATUS_SIZES", "10,50,100").split(","))
TARGET_RATIO = 2.0
BASELINE = [sys.executable, "-c", "import typer, rich.console"]
SETTLE = (
    2.5  # seconds after a change before a worktree's kept status may be trusted (worktree_state.SETTLE_NS)
)

_SHIM = """#!/bin/sh
printf '%s\\t%s\\n' "$PWD" "$*" >> "{log}"
exec "{real}" "$@"
"""


def _coditect() -> list[str]:
    return [sys.executable, "-m", "coditect_cli"]


def _timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``argv``; CPU is user + system of it and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed ({done.returncode}): {argv}\n{done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _one_repo(workdir: Path, streams: int) -> tuple[Path, str]:
    from bench_agents import _project

    phase = f"status-{streams}"
    return _project(workdir, phase, streams), phase


def _ten_repos(workdir: Path, streams: int) -> tuple[Path, str]:
    from bench_day import PHASE, build_project

    return build_project(workdir / f"day-{streams}", streams), PHASE


def _launch(root: Path, socket: str) -> None:
    from coditect_cli.project import Project
    from coditect_cli.services import launch

    cwd = os.getcwd()
    os.chdir(root)
    try:
        launch.launch(Project(root), None, attach=False, agent=None, socket=socket, day=None, push=False)
    finally:
        os.chdir(cwd)


def _shims(workdir: Path) -> tuple[Path, dict[str, Path]]:
    shim_dir = workdir / "shims"
    shim_dir.mkdir(exist_ok=True)
    logs: dict[str, Path] = {}
    for program in ("git", "tmux"):
        real = shutil.which(program)
        assert real is not None, f"{program} is not installed"
        logs[program] = shim_dir / f"{program}.log"
        (shim_dir / program).write_text(_SHIM.format(log=logs[program], real=real))
        (shim_dir / program).chmod(0o755)
    return shim_dir, logs


def _git_dir_of(where: Path) -> str:
    """The git common dir a git process ran in (``-C`` path or cwd), as a repository's name."""
    from coditect_cli.adapters.worktree_state import layout

    for path in (where, *where.parents):
        lay = layout(path) if (path / ".git").exists() else None
        if lay is not None:
            return str(lay.common)
        if (path / "HEAD").is_file() and (path / "objects").is_dir():
            return str(path)
    return "?"


def _count(
    root: Path, argv: list[str], shim_dir: Path, logs: dict[str, Path], base: dict[str, str] | None = None
) -> dict[str, object]:
    for log in logs.values():
        log.write_text("")
    env = {**(base or os.environ), "PATH": f"{shim_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed: {done.stderr.decode()}")
    per_repo: Counter[str] = Counter()
    for line in logs["git"].read_text().split("\n"):
        if not line:
            continue
        pwd, _, args = line.partition("\t")
        words = args.split()
        where = Path(words[words.index("-C") + 1]) if "-C" in words[:-1] else Path(pwd)
        per_repo[_git_dir_of(where)] += 1
    tmux = [line for line in logs["tmux"].read_text().splitlines() if line]
    counts = sorted(per_repo.values())
    return {
        "git": sum(per_repo.values()),
        "git_per_repo_min_max": [counts[0], counts[-1]] if counts else [0, 0],
        "tmux": len(tmux),
        "capture_pane": sum(line.count("capture-pane") for line in tmux),
    }


def _env(checkout: str | None) -> dict[str, str] | None:
    """The environment running the coditect of ``checkout`` (None: this one)."""
    if checkout is None:
        return None
    return {**os.environ, "PYTHONPATH": checkout}


def _point(root: Path, phase: str, socket: str, runs: int, workdir: Path, repos: int) -> Row:
    from warmkit import WarmServer

    from coditect_cli.project import Project
    from coditect_cli.services import streams as svc
    from coditect_cli.services.session import status_cache_path
    from coditect_cli.services.setup import project_common_dir

    argv = [*_coditect(), "streams", "status", "--json", "--socket", socket]
    with WarmServer() as warm:
        done = subprocess.run(argv, cwd=root, env=warm.off, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        size = len(json.loads(done.stdout)["data"]["streams"])
        time.sleep(SETTLE)  # what setup and launch wrote settles; then the next call keeps every status
        _timed(argv, root, warm.off)
        warm.start(argv, root)
        shim_dir, logs = _shims(workdir)
        warm_counts = _count(root, argv, shim_dir, logs, warm.env)
        before = os.environ.get("CODITECT_BENCH_BEFORE")
        if before:
            _timed(argv, root, _env(before))
            before_counts = _count(root, argv, shim_dir, logs, _env(before))
        samples: dict[str, list[tuple[float, float]]] = {
            "baseline": [],
            "served": [],
            "alone": [],
            "before": [],
        }
        server_cpu = 0.0
        for _ in range(runs):
            samples["baseline"].append(_timed(BASELINE, root))
            warm.settle()
            start = warm.cpu()
            samples["served"].append(_timed(argv, root, warm.env))
            warm.settle()
            server_cpu += warm.cpu() - start
            samples["alone"].append(_timed(argv, root, warm.off))
            if before:
                samples["before"].append(_timed(argv, root, _env(before)))
        inproc: list[float] = []
        cwd = os.getcwd()
        os.chdir(root)
        try:
            for _ in range(runs):
                start = time.perf_counter()
                svc.status(Project(root), None, socket=socket)
                inproc.append(time.perf_counter() - start)
        finally:
            os.chdir(cwd)
        status_cache_path(project_common_dir(Project(root))).unlink(missing_ok=True)
        cold = _count(root, argv, shim_dir, logs, warm.off)

    def med(case: str, i: int) -> float:
        return statistics.median(x[i] for x in samples[case])

    base, base_cpu = med("baseline", 0), med("baseline", 1)
    wall = med("served", 0)
    cpu = statistics.mean(c for _, c in samples["served"]) + server_cpu / runs
    alone, alone_cpu = med("alone", 0), med("alone", 1)
    compared: Row = {}
    if before:
        old_wall, old_cpu = med("before", 0), med("before", 1)
        compared = {
            "before_seconds": round(old_wall, 3),
            "before_ratio": round(old_wall / base, 2),
            "before_cpu_seconds": round(old_cpu, 3),
            "before_cpu_ratio": round(old_cpu / base_cpu, 2),
            "before_processes": before_counts,
        }
    return {
        "benchmark": "status",
        "case": f"streams status --json, {size} streams over {repos} repositories ({phase})",
        "seconds": round(wall, 3),
        "baseline_seconds": round(base, 3),
        "ratio": round(wall / base, 2),
        "cpu_seconds": round(cpu, 3),
        "baseline_cpu_seconds": round(base_cpu, 3),
        "cpu_ratio": round(cpu / base_cpu, 2),
        "in_process_seconds": round(alone, 3),
        "in_process_ratio": round(alone / base, 2),
        "in_process_cpu_seconds": round(alone_cpu, 3),
        "in_process_cpu_ratio": round(alone_cpu / base_cpu, 2),
        "work_seconds": round(statistics.median(inproc), 3),
        "warm_processes": warm_counts,
        "cold_processes": cold,
        **compared,
        "target": f"<= {TARGET_RATIO:g}x baseline",
        "ok": wall / base <= TARGET_RATIO,
    }


def bench_status(runs: int, workdir: Path) -> list[Row]:
    """Every point of the curve (see the module docstring)."""
    rows: list[Row] = []
    for repos, build in ((1, _one_repo), (10, _ten_repos)):
        for streams in SIZES:
            place = workdir / f"r{repos}-s{streams}"
            place.mkdir(parents=True)
            root, phase = build(place, streams)
            socket = f"coditect-bench-{uuid.uuid4().hex[:8]}"
            try:
                _launch(root, socket)
                rows.append(_point(root, phase, socket, runs, place, repos))
            finally:
                subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    return rows


def main() -> int:
    from bench import standalone

    return standalone(bench_status, runs=5, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
