#!/usr/bin/env python3
"""Benchmark of the autopilot: one pass over 50 streams in 10 repositories on the local forge, and the git
processes a pass starts per repository at 20 and at 50 streams.

    python3 scripts/bench_autopilot.py               # 7 runs, medians
    python3 scripts/bench_autopilot.py --runs 3 --json

The project is scripts/bench_day.py's (a superproject and 9 submodules with bare origins, every stream set
up, one commit each, a PR each on the local forge). Measured:

- one pass in-process (``Autopilot.run_pass``; the facts gathered, conditions read, decisions journaled):
  the median of the passes after the first (what the running autopilot does every poll; target: at most
  0.5 s at 50 streams), the first pass of a new autopilot (nothing known yet) beside it, and
  ``coditect autopilot --once --json`` on the command line (Python start-up included);
- git processes per repository of ``coditect autopilot --once --json`` (a ``git`` shim first on PATH): the
  same at 20 and at 50 streams;
- the event path (scripts/bench_reactions.py): GitHub requests of a pass when nothing changed (target: none
  counted against the rate limit), and the time from a failing check or a review to the message in the
  agent's pane, on GitHub (target: one poll interval) and on the local forge (target: 2 s).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_day import _SHIM, PHASE, REPOS, _coditect, _time_cmd, build_project, count_git, repo_ids

Row = dict[str, object]
TARGET_SECONDS = 0.5
ARGV = ["autopilot", "--once", "--json", "--socket", "coditect-bench-autopilot-none"]
# Two passes of one autopilot in one process; only the second one's git processes are logged.
STEADY = f"""
import os
from pathlib import Path
from coditect_cli.project import Project
from coditect_cli.services.autopilot import Autopilot
from coditect_cli.services.autopilot_agents import TmuxAgents
project = Project(Path.cwd())
pilot = Autopilot(project, {PHASE!r}, TmuxAgents(project, {ARGV[-1]!r}), socket={ARGV[-1]!r})
log, os.environ["GIT_COUNT_LOG"] = os.environ["GIT_COUNT_LOG"], os.devnull
pilot.run_pass()
os.environ["GIT_COUNT_LOG"] = log
pilot.run_pass()
"""


def _cpu() -> float:
    """CPU seconds of this process and of the children it has waited for (git, tmux)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _pass_seconds(root: Path, runs: int) -> tuple[float, float, float]:
    """The first pass of a new autopilot (nothing known yet), the median of the passes after it, and their
    median CPU time (this process and its git and tmux children: what the load of the machine leaves alone)."""
    from coditect_cli.project import Project
    from coditect_cli.services.autopilot import Autopilot
    from coditect_cli.services.autopilot_agents import TmuxAgents

    project = Project(root)
    socket = "coditect-bench-autopilot-none"
    pilot = Autopilot(project, PHASE, TmuxAgents(project, socket), socket=socket)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        samples, cpu = [], []
        for _ in range(runs + 1):
            started, cpu_started = time.perf_counter(), _cpu()
            pilot.run_pass()
            samples.append(time.perf_counter() - started)
            cpu.append(_cpu() - cpu_started)
    finally:
        os.chdir(cwd)
    return samples[0], statistics.median(samples[1:]), statistics.median(cpu[1:])


def bench_autopilot(runs: int, workdir: Path) -> list[Row]:
    """Build the projects (20 and 50 streams); time a pass at 50; count git processes at both."""
    real_git = shutil.which("git") or "/usr/bin/git"
    shim_dir = workdir / "shim"
    shim_dir.mkdir(parents=True, exist_ok=True)
    (shim_dir / "git").write_text(_SHIM.format(git=real_git))
    (shim_dir / "git").chmod(0o755)
    rows: list[Row] = []
    counted = {}
    for streams in (20, 50):
        root = build_project(workdir / f"autopilot-{streams}", streams)
        counts = count_git(root, ARGV, shim_dir, workdir / f"git-{streams}.log")
        steady = count_git(
            root, [], shim_dir, workdir / f"steady-{streams}.log", command=[sys.executable, "-c", STEADY]
        )
        counted[("once", streams)] = counts
        counted[("steady", streams)] = steady
        for label, found in (("autopilot --once", counts), ("a pass after the first, in-process", steady)):
            rows.append(
                {
                    "benchmark": "autopilot",
                    "case": f"git processes: {label} ({streams} streams, {REPOS} repos)",
                    "seconds": 0.0,
                    "git_processes": sum(found[rid] for rid in [*repo_ids(), "?"]),
                    "per_repo": {rid: found[rid] for rid in repo_ids()},
                    "unattributed": found["?"],
                }
            )
        if streams == 50:
            first, seconds, cpu = _pass_seconds(root, runs)
            rows.append(
                {
                    "benchmark": "autopilot",
                    "case": f"one autopilot pass in-process ({streams} streams, {REPOS} repos)",
                    "seconds": seconds,
                    "first_pass_seconds": round(first, 3),
                    "cpu_seconds": round(cpu, 3),
                    "target": f"<= {TARGET_SECONDS:g} s",
                    "met": seconds <= TARGET_SECONDS,
                }
            )
            rows.append(
                {
                    "benchmark": "autopilot",
                    "case": f"coditect autopilot --once --json ({streams} streams, {REPOS} repos)",
                    "seconds": _time_cmd([*_coditect(), *ARGV], runs, root),
                }
            )
    from bench_reactions import bench_reactions

    rows += bench_reactions(runs, workdir / "reactions")  # GitHub requests per pass; event to pane
    same = all(
        counted[(kind, 20)][rid] == counted[(kind, 50)][rid]
        for kind in ("once", "steady")
        for rid in [*repo_ids(), "?"]
    )
    rows.append(
        {
            "benchmark": "autopilot",
            "case": "git processes per repository independent of the stream count: autopilot --once, "
            "and a pass after the first",
            "seconds": 0.0,
            "same_at_20_and_50": same,
        }
    )
    return rows


def main() -> int:
    from bench import standalone

    return standalone(bench_autopilot, runs=7, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
