#!/usr/bin/env python3
"""Benchmark of the ownership guard: what its hooks cost a stream worktree's everyday git commands.

    python3 scripts/bench_guard.py              # 7 runs, medians
    python3 scripts/bench_guard.py --runs 5 --json

The example sandbox, set up (``--no-push``); in the backend stream's worktree, each command is timed with
the guard's hooks and, as the baseline, with every hook off (``git -c core.hooksPath=/dev/null``): a commit
of one owned file (pre-commit check + reference-transaction check), a rebase of 50 of the stream's commits
onto a new integration commit (one check, when the branch moves at the end, whatever the number of commits;
every detached-HEAD step costs a shell script only), and a fetch updating 20 remote-tracking branches (no
Python at all: only ``refs/heads/`` updates wake the check).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coditect_cli.adapters import proc  # noqa: E402

Row = dict[str, object]
OFF = ("-c", "core.hooksPath=/dev/null")
COMMITS = 50
FETCHED = 20


def _git(worktree: Path, *args: str) -> str:
    return proc.run(["git", "-C", str(worktree), *args]).stdout.strip()


def _timed(prepare: Callable[[], None], command: list[str], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system, the command and every process it waited
    for: hooks included) of ``command``. CPU time is the figure to compare on a loaded machine."""
    import resource

    walls, cpus = [], []
    for _ in range(runs):
        prepare()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc.run(command)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def _row(case: str, timed: tuple[float, float]) -> Row:
    return {"benchmark": "guard", "case": case, "seconds": timed[0], "cpu_ms": round(timed[1] * 1000, 1)}


def bench_guard(runs: int, workdir: Path) -> list[Row]:
    """Guarded vs unhooked: a commit, a rebase of 50 commits, a fetch of 20 branches."""
    from coditect_cli.adapters.git import commit_file
    from coditect_cli.sandbox import build_sandbox
    from coditect_cli.services.demo import example_manifest

    root = build_sandbox(workdir / "sandbox", example_manifest()).root
    proc.run([sys.executable, "-m", "coditect_cli", "streams", "setup", "--no-push"], cwd=root)
    worktree = root / ".coditect" / "worktrees" / "phase-1" / "backend" / "backend"
    branch = _git(worktree, "symbolic-ref", "--short", "HEAD")
    target = worktree / "src" / "api" / "v1" / "bench.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    counter = iter(range(10**6))

    def touch() -> None:
        target.write_text(f"# {next(counter)}\n", encoding="utf-8")
        _git(worktree, "add", "--", str(target.relative_to(worktree)))

    for label, off in (("guarded", ()), ("hooks off (baseline)", OFF)):
        timed = _timed(touch, ["git", "-C", str(worktree), *off, "commit", "-q", "-m", "bench"], runs)
        rows.append(_row(f"commit of one owned file, {label}", timed))

    # The stream's 50 commits, and a new commit on the integration branch to rebase them onto.
    start = _git(worktree, "rev-parse", "HEAD")
    for _ in range(COMMITS):
        touch()
        _git(worktree, *OFF, "commit", "-q", "-m", "bench")
    tip = _git(worktree, "rev-parse", "HEAD")
    repo = root / "submodules" / "cloud" / "coditect-cloud-backend"
    integration = "phase-1-integration"
    commit_file(repo, integration, "docs/bench.md", "bench\n", "bench: integration moves")

    def back_to_tip() -> None:
        _git(worktree, *OFF, "reset", "-q", "--hard", tip)

    for label, off in (("guarded", ()), ("hooks off (baseline)", OFF)):
        timed = _timed(back_to_tip, ["git", "-C", str(worktree), *off, "rebase", "-q", integration], runs)
        rows.append(_row(f"rebase of {COMMITS} commits onto integration, {label}", timed))
    rebased = _git(worktree, "rev-list", "--count", f"{integration}..{branch}")
    assert rebased == str(2 * runs + COMMITS), rebased  # the commits of the first cases, plus the 50

    # A second "origin": this repository itself, with 20 branches to fetch as remote-tracking refs.
    for i in range(FETCHED):
        _git(repo, "branch", "-f", f"bench/{i}", start)
    _git(worktree, "remote", "add", "bench", str(repo))

    def drop_fetched() -> None:
        refs = _git(worktree, "for-each-ref", "--format=delete %(refname)", "refs/remotes/bench/")
        if refs:
            proc.run(["git", "-C", str(worktree), *OFF, "update-ref", "--stdin"], input=refs + "\n")

    for label, off in (("guarded", ()), ("hooks off (baseline)", OFF)):
        command = [
            "git",
            "-C",
            str(worktree),
            *off,
            "fetch",
            "-q",
            "bench",
            "refs/heads/bench/*:refs/remotes/bench/*",
        ]
        rows.append(_row(f"fetch of {FETCHED} branches, {label}", _timed(drop_fetched, command, runs)))
    return rows


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import standalone

    return standalone(bench_guard, runs=7, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
