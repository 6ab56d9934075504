#!/usr/bin/env python3
"""Benchmark of the day's read commands: `status --json` and `sync morning --json` as curves over the number
of streams (10, 50, 100) in 1 and in 10 repositories, each against the Python start-up baseline measured
interleaved in the same run, and the git and tmux processes they start per repository.

    python3 scripts/bench_day.py                 # 5 runs per point, medians
    python3 scripts/bench_day.py --runs 3 --json

The project: a superproject and 9 submodules (or the superproject alone), each with a bare origin on disk
(`main`, `develop`), and a manifest whose streams are spread round-robin over the repositories, each owning
its own `area-<i>/` (a committed file there), with three tasks each that depend on the stream's previous task
and on the previous stream's first one. `streams setup` creates and pushes every branch, each stream commits
once in its worktree (the ownership guard runs), and `services.prs.open_all` opens a PR per stream on the
local forge. Then, on the command line (Python start-up included), at every size:

- `coditect status --json --day 2` and `coditect sync morning --json --day 2`: median wall time, run by run
  interleaved with the baseline `python -c 'import typer, rich.console'` (what any typer CLI pays to start),
  both in one process (`CODITECT_SERVER=0`) and as a user gets them from the second run on, answered by the
  warm server the first one started (`(served)`: coditect_cli.warm; its CPU time includes the worker's);
  the ratio to it (target: at most 2x up to 100 streams over 10 repositories), and the same for CPU time
  (the process and every child it waited for: a figure the machine's load changes less);
- git processes per repository and tmux processes, counted with `git` and `tmux` shims first on PATH: the
  same at every size for a given number of repositories (one `for-each-ref`, one history walk, one batched
  change listing and merge prediction per repository, the local forge's origin check), whatever the number
  of streams.

The children may keep bytecode caches (in the run's temporary directory), as an installed coditect and the
baseline's libraries do. `bench_day(runs, workdir)` returns the rows (`{"benchmark": "day", "case", "seconds",
...}`) for scripts/bench.py-style reporting.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

Row = dict[str, object]

PHASE = "bench"
REPOS = 10
SIZES = tuple(int(n) for n in os.environ.get("CODITECT_BENCH_DAY_SIZES", "10,50,100").split(","))
REPO_COUNTS = (1, 10)
TARGET_RATIO = 2.0
_ALLOW_FILE = ["-c", "protocol.file.allow=always"]
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}
_SHIM = """#!/bin/sh
printf '%s\\t%s\\n' "$PWD" "$*" >> "$GIT_COUNT_LOG"
exec {git} "$@"
"""
_TMUX_SHIM = """#!/bin/sh
printf '%s\\n' "$*" >> "$TMUX_COUNT_LOG"
exec {tmux} "$@"
"""


def _coditect() -> list[str]:
    """The installed ``coditect`` script beside this Python (not a version manager's shim in front of it,
    which would add its own start-up), else ``python -m coditect_cli``."""
    beside = Path(sys.executable).with_name("coditect")
    exe = str(beside) if beside.is_file() else shutil.which("coditect")
    return [exe] if exe else [sys.executable, "-m", "coditect_cli"]


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **_IDENTITY}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed in {cwd}: {done.stderr}")
    return done.stdout.strip()


def repo_ids(repos: int = REPOS) -> list[str]:
    return ["root", *(f"r{k}" for k in range(1, repos))]


def repo_path(rid: str) -> str:
    return "." if rid == "root" else f"repos/{rid}"


def manifest_text(streams: int, repos: int = REPOS) -> str:
    """The manifest: ``streams`` streams round-robin over the repositories, three tasks each."""
    import yaml

    ids = repo_ids(repos)
    data: dict[str, object] = {
        "version": 1,
        "phase": PHASE,
        "title": f"Bench: {streams} streams over {repos} repositories",
        "project": "bench-day",
        "forge": "local",
        "schedule": {"start": "2026-12-01", "days": 10, "slack": 2},
        "repositories": [{"id": rid, "path": repo_path(rid)} for rid in ids],
        "streams": [
            {
                "id": f"s{i:02d}",
                "terminal": i + 1,
                "name": f"Stream {i}",
                "agent": f"agent-{i}",
                "run": "shell",
                "work": [{"repo": ids[i % repos], "topic": f"topic-{i}", "owns": [f"area-{i}/"]}],
                "deliverables": [
                    {
                        "id": f"s{i:02d}-a",
                        "days": "1-2",
                        "title": f"first part of {i}",
                        **({"depends_on": [f"s{i - 1:02d}-a"]} if i else {}),
                    },
                    {
                        "id": f"s{i:02d}-b",
                        "days": "3-4",
                        "title": f"second part of {i}",
                        "depends_on": [f"s{i:02d}-a"],
                    },
                    {
                        "id": f"s{i:02d}-c",
                        "days": "5-6",
                        "title": f"third part of {i}",
                        "depends_on": [f"s{i:02d}-b"],
                    },
                ],
            }
            for i in range(streams)
        ],
        "checkpoints": [
            {
                "id": 1,
                "day": 3,
                "title": "first half",
                "streams": [f"s{i:02d}" for i in range(0, streams, 2)],
            },
            {"id": 2, "day": 6, "title": "everything", "streams": [f"s{i:02d}" for i in range(streams)]},
        ],
    }
    return yaml.safe_dump(data, sort_keys=False)


def build_project(workdir: Path, streams: int, repos: int = REPOS) -> Path:
    """The repositories with bare origins, the superproject cloned with its submodules, ``streams setup``
    done, one commit per stream, a PR per stream on the local forge. Returns the project root."""
    from coditect_cli.project import Project
    from coditect_cli.services import prs

    ids = repo_ids(repos)
    origins = workdir / "origins"
    staging = workdir / "staging"
    areas: dict[str, list[int]] = {
        rid: [i for i in range(streams) if i % repos == k] for k, rid in enumerate(ids)
    }
    for rid in ids[1:]:
        work = staging / rid
        work.mkdir(parents=True)
        _git(work, "init", "-q", "-b", "main")
        (work / "README.md").write_text(f"# {rid}\n")
        for i in areas[rid]:
            (work / f"area-{i}").mkdir()
            (work / f"area-{i}" / "notes.md").write_text(f"area {i}\n")
        _git(work, "add", "-A")
        _git(work, "commit", "-qm", f"initial {rid}")
        _git(work, "checkout", "-qb", "develop")
        (work / "CHANGELOG.md").write_text("# Changelog\n")
        _git(work, "add", "-A")
        _git(work, "commit", "-qm", "open the changelog")
        _git(workdir, "clone", "-q", "--bare", str(work), str(origins / f"{rid}.git"))
    root_stage = staging / "root"
    root_stage.mkdir(parents=True)
    _git(root_stage, "init", "-q", "-b", "main")
    (root_stage / ".gitignore").write_text(".coditect/\nworkstreams/reports/\n")
    (root_stage / "README.md").write_text("# bench superproject\n")
    (root_stage / "workstreams").mkdir()
    (root_stage / "workstreams" / f"{PHASE}.yaml").write_text(manifest_text(streams, repos))
    for i in areas["root"]:
        (root_stage / f"area-{i}").mkdir()
        (root_stage / f"area-{i}" / "notes.md").write_text(f"area {i}\n")
    for rid in ids[1:]:
        _git(
            root_stage,
            *_ALLOW_FILE,
            "submodule",
            "add",
            "-q",
            "-b",
            "develop",
            str(origins / f"{rid}.git"),
            repo_path(rid),
        )
    _git(root_stage, "add", "-A")
    _git(root_stage, "commit", "-qm", "superproject")
    _git(root_stage, "branch", "develop")
    _git(workdir, "clone", "-q", "--bare", str(root_stage), str(origins / "root.git"))

    root = workdir / "project"
    _git(
        workdir,
        *_ALLOW_FILE,
        "clone",
        "-q",
        "--branch",
        "develop",
        "--recurse-submodules",
        str(origins / "root.git"),
        str(root),
    )
    for rid in ids:
        checkout = root / repo_path(rid)
        if rid != "root":
            _git(checkout, "checkout", "-q", "develop")
        _git(checkout, "config", "user.name", "Bench")
        _git(checkout, "config", "user.email", "bench@example.invalid")
    shutil.rmtree(staging)

    setup = subprocess.run(
        [*_coditect(), "streams", "setup"], cwd=root, capture_output=True, text=True, check=False
    )
    if setup.returncode != 0:
        raise SystemExit(f"streams setup failed: {setup.stdout}{setup.stderr}")
    for i in range(streams):
        rid = ids[i % repos]
        worktree = root / ".coditect" / "worktrees" / PHASE / f"s{i:02d}" / rid
        (worktree / f"area-{i}" / "work.md").write_text(f"work of stream {i}\n")
        _git(worktree, "add", "-A")
        _git(worktree, "commit", "-qm", f"feat(s{i:02d}): first work")  # the ownership guard runs
    cwd = os.getcwd()
    os.chdir(root)
    try:
        opened = prs.open_all(Project(root), PHASE)
    finally:
        os.chdir(cwd)
    if len(opened) != streams:
        raise SystemExit(f"expected {streams} PRs, opened {len(opened)}")
    return root


def _time_cmd(argv: list[str], runs: int, cwd: Path) -> float:
    """Median wall time of ``argv`` over ``runs`` runs (one warm-up run first); fails on a non-zero exit."""
    samples: list[float] = []
    for n in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"benchmark command failed ({done.returncode}): {argv}\n{done.stderr.decode()}")
        if n:
            samples.append(elapsed)
    return statistics.median(samples)


COMMANDS = {
    "status --json --day 2": ["status", "--json", "--day", "2"],
    "sync morning --json --day 2": ["sync", "morning", "--json", "--day", "2"],
}


def child_env(workdir: Path) -> dict[str, str]:
    """The timed children's environment: bytecode caches allowed (kept under ``workdir``), as an installed
    coditect and the baseline's libraries have them."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    env["CODITECT_SERVER"] = "0"  # in one process; the served runs say otherwise (scripts/warmkit.py)
    return env


def time_interleaved(
    commands: dict[str, list[str]], runs: int, cwd: Path, env: dict[str, str], warm: object | None = None
) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of the baseline and of each command, run in turn in every round (one
    warm-up round first), so that all of them see the same load. With ``warm`` (a scripts/warmkit.py
    WarmServer already started), each command is also timed as served (``<case> (served)``), its CPU time
    including its worker's (a mean: the server's children's time is read around each run)."""
    from bench_status import BASELINE, _timed

    argvs: dict[str, tuple[list[str], dict[str, str]]] = {"baseline": (BASELINE, env)}
    for case, argv in commands.items():
        argvs[case] = ([*_coditect(), *argv], {**env, "CODITECT_SERVER": "0"})
        if warm is not None:
            argvs[f"{case} (served)"] = ([*_coditect(), *argv], {**env, **warm.env, "PATH": env["PATH"]})  # type: ignore[attr-defined]
    samples: dict[str, list[tuple[float, float]]] = {case: [] for case in argvs}
    for n in range(runs + 1):
        for case, (argv, case_env) in argvs.items():
            served = case.endswith("(served)")
            if served:
                warm.settle()  # type: ignore[union-attr]
                start = warm.cpu()  # type: ignore[union-attr]
            wall, cpu = _timed(argv, cwd, case_env)
            if served:
                warm.settle()  # type: ignore[union-attr]
                cpu += warm.cpu() - start  # type: ignore[union-attr]
            if n:
                samples[case].append((wall, cpu))
    return {
        case: (
            statistics.median(w for w, _ in got),
            statistics.mean(c for _, c in got)
            if case.endswith("(served)")
            else statistics.median(c for _, c in got),
        )
        for case, got in samples.items()
    }


def write_shims(workdir: Path) -> Path:
    """``git`` and ``tmux`` shims that log each call, in a directory to put first on PATH."""
    shim_dir = workdir / "shim"
    shim_dir.mkdir(parents=True, exist_ok=True)
    for name, text, real in (
        ("git", _SHIM, {"git": shutil.which("git") or "/usr/bin/git"}),
        ("tmux", _TMUX_SHIM, {"tmux": shutil.which("tmux") or "/usr/bin/tmux"}),
    ):
        (shim_dir / name).write_text(text.format(**real))
        (shim_dir / name).chmod(0o755)
    return shim_dir


def count_git(
    root: Path,
    argv: list[str],
    shim_dir: Path,
    log: Path,
    repos: int = REPOS,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
) -> Counter[str]:
    """Git processes ``coditect argv`` (or ``command``, a whole command line) starts, by repository id
    (``?``: outside the checkouts, e.g. in an origin); with the tmux shim in ``shim_dir`` too, the tmux
    processes under ``tmux``."""
    base = env if env is not None else dict(os.environ)
    full = command if command is not None else [*_coditect(), *argv]
    # A warm-up run first: the first one after the PRs were opened also fetches their heads from origin.
    subprocess.run(full, cwd=root, env=base, capture_output=True, check=False)
    tmux_log = log.with_suffix(".tmux.log")
    counted = {
        **base,
        "PATH": f"{shim_dir}{os.pathsep}{base['PATH']}",
        "GIT_COUNT_LOG": str(log),
        "TMUX_COUNT_LOG": str(tmux_log),
    }
    done = subprocess.run(full, cwd=root, env=counted, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed: {done.stderr.decode()}")
    paths = sorted(((root / repo_path(rid)).resolve(), rid) for rid in repo_ids(repos))
    paths.sort(key=lambda p: len(str(p[0])), reverse=True)  # the deepest checkout first
    counts: Counter[str] = Counter()
    for line in log.read_text().split("\n") if log.exists() else []:  # not splitlines: \x1e in --format
        if not line:
            continue
        pwd, _, args = line.partition("\t")
        words = args.split()
        where = Path(words[words.index("-C") + 1]) if "-C" in words[:-1] else Path(pwd)
        rid = next((r for p, r in paths if where == p or p in where.parents), "?")
        counts[rid] += 1
    if tmux_log.exists():
        counts["tmux"] = len([line for line in tmux_log.read_text().splitlines() if line])
    return counts


def bench_day(runs: int, workdir: Path) -> list[Row]:
    """At every size and repository count: build the project, count processes, time the commands against
    the baseline (interleaved)."""
    shim_dir = write_shims(workdir)
    env = child_env(workdir)
    rows: list[Row] = []
    counted: dict[tuple[int, int, str], Counter[str]] = {}
    for repos in REPO_COUNTS:
        for streams in SIZES:
            started = time.perf_counter()
            root = build_project(workdir / f"day-{repos}-{streams}", streams, repos)
            built = time.perf_counter() - started
            for case, argv in COMMANDS.items():
                log = workdir / f"git-{repos}-{streams}-{case.split()[0]}.log"
                counted[(repos, streams, case)] = counts = count_git(root, argv, shim_dir, log, repos, env)
                per_repo = sorted(counts[rid] for rid in repo_ids(repos))
                rows.append(
                    {
                        "benchmark": "day",
                        "case": f"processes: {case} ({streams} streams, {repos} repos)",
                        "seconds": 0.0,
                        "streams": streams,
                        "repos": repos,
                        "git_processes": sum(counts[rid] for rid in [*repo_ids(repos), "?"]),
                        "git_per_repo_min_max": [per_repo[0], per_repo[-1]],
                        "git_unattributed": counts["?"],
                        "tmux_processes": counts["tmux"],
                    }
                )
            from warmkit import WarmServer

            with WarmServer() as warm:
                warm.env["PYTHONPYCACHEPREFIX"] = env["PYTHONPYCACHEPREFIX"]
                for argv in COMMANDS.values():
                    warm.start([*_coditect(), *argv], root)
                for case, argv in COMMANDS.items():
                    log = workdir / f"git-{repos}-{streams}-{case.split()[0]}-served.log"
                    counts = count_git(
                        root, argv, shim_dir, log, repos, {**env, **warm.env, "PATH": env["PATH"]}
                    )
                    per_repo = sorted(counts[rid] for rid in repo_ids(repos))
                    rows.append(
                        {
                            "benchmark": "day",
                            "case": f"processes: {case}, served ({streams} streams, {repos} repos)",
                            "seconds": 0.0,
                            "git_processes": sum(counts[rid] for rid in [*repo_ids(repos), "?"]),
                            "git_per_repo_min_max": [per_repo[0], per_repo[-1]],
                            "tmux_processes": counts["tmux"],
                        }
                    )
                times = time_interleaved(COMMANDS, runs, root, env, warm)
            base_wall, base_cpu = times["baseline"]
            rows.append(
                {
                    "benchmark": "day",
                    "case": f"baseline: python -c 'import typer, rich.console' ({streams} streams, {repos} repos)",
                    "seconds": base_wall,
                    "cpu_seconds": round(base_cpu, 3),
                    "streams": streams,
                    "repos": repos,
                }
            )
            for case in [*COMMANDS, *(f"{c} (served)" for c in COMMANDS)]:
                wall, cpu = times[case]
                ratio = wall / base_wall
                rows.append(
                    {
                        "benchmark": "day",
                        "case": f"coditect {case} ({streams} streams, {repos} repos)",
                        "seconds": wall,
                        "streams": streams,
                        "repos": repos,
                        "ratio_to_baseline": round(ratio, 2),
                        "cpu_seconds": round(cpu, 3),
                        "cpu_ratio_to_baseline": round(cpu / base_cpu, 2),
                        "target": f"<= {TARGET_RATIO:g}x baseline",
                        "met": ratio <= TARGET_RATIO,
                        "build_seconds": round(built, 2),
                    }
                )
    for repos in REPO_COUNTS:
        for case in COMMANDS:
            by_size = [counted[(repos, n, case)] for n in SIZES]
            keys = [*repo_ids(repos), "?", "tmux"]
            same = all(c[k] == by_size[0][k] for c in by_size for k in keys)
            rows.append(
                {
                    "benchmark": "day",
                    "case": f"git and tmux processes per repository independent of the stream count: {case} "
                    f"({repos} repos, {'/'.join(map(str, SIZES))} streams)",
                    "seconds": 0.0,
                    "same_at_every_size": same,
                }
            )
    return rows


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import standalone

    return standalone(bench_day, runs=5, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
