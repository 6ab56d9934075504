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


def _time_cmd(
    argv: list[str], runs: int, cwd: Path | None = None, env: dict[str, str] | None = None
) -> float:
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
        {
            "benchmark": "startup",
            "case": "python -c 'import typer, rich.console' (baseline)",
            "seconds": baseline,
        },
        {
            "benchmark": "startup",
            "case": "coditect --help",
            "seconds": help_time,
            "ratio_to_baseline": help_time / baseline,
            "target": "<= 1.3x baseline",
        },
        {
            "benchmark": "startup",
            "case": "coditect validate (sandbox, 4 repos)",
            "seconds": validate_time,
            "ratio_to_baseline": validate_time / baseline,
        },
    ]


def _many_streams_manifest(base_text: str, n: int) -> str:
    """The example manifest with its streams replaced by ``n`` streams spread over the four repositories.

    Each stream owns its own directory ``area-<i>/`` (created and committed by the caller) in one repository,
    so the plan and ownership checks scale with ``n`` while staying valid.
    """
    import yaml

    data = yaml.safe_load(base_text)
    repos = [r["id"] for r in data["repositories"]]
    data["shared"] = []
    data["checkpoints"] = []
    data["merge"]["suite"] = []
    data["streams"] = [
        {
            "id": f"s{i:02d}",
            "terminal": i + 1,
            "name": f"Stream {i}",
            "agent": "shell-agent",
            "work": [{"repo": repos[i % len(repos)], "topic": f"topic-{i}", "owns": [f"area-{i}/"]}],
            "deliverables": [{"id": f"t{i:02d}", "days": "1-2", "title": f"task {i}"}],
        }
        for i in range(n)
    ]
    return yaml.safe_dump(data, sort_keys=False)


def _scaled_sandbox(workdir: Path, name: str, n: int) -> Path:
    """A sandbox whose manifest ``bench.yaml`` has ``n`` streams, each with a committed ``area-<i>/``."""
    from coditect_cli.adapters import proc
    from coditect_cli.sandbox import build_sandbox
    from coditect_cli.services.demo import example_manifest

    sandbox = build_sandbox(workdir / name, example_manifest())
    root = sandbox.root
    text = _many_streams_manifest(example_manifest().read_text(), n)
    (root / "workstreams" / "phase-1.yaml").unlink()
    (root / "workstreams" / "bench.yaml").write_text(text)
    import yaml

    repos = {r["id"]: r["path"] for r in yaml.safe_load(text)["repositories"]}
    for i, stream in enumerate(yaml.safe_load(text)["streams"]):
        repo = root / repos[stream["work"][0]["repo"]]
        (repo / f"area-{i}").mkdir()
        (repo / f"area-{i}" / "README.md").write_text(f"area {i}\n")
    for path in repos.values():
        proc.run(["git", "-C", str(root / path), "add", "-A"])
        proc.run(["git", "-C", str(root / path), "commit", "-qm", "bench areas"])
    return root


def bench_setup(runs: int, workdir: Path) -> list[Row]:
    """`coditect streams setup --no-push` for 20 streams across 4 repositories (fresh sandbox each run)."""
    samples = []
    for i in range(max(1, min(runs, 5))):
        root = _scaled_sandbox(workdir, f"setup-{i}", 20)
        start = time.perf_counter()
        proc = subprocess.run([*_coditect(), "streams", "setup", "--no-push"], cwd=root, capture_output=True)
        samples.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"setup failed: {proc.stderr.decode()}")
    return [
        {
            "benchmark": "setup",
            "case": "streams setup --no-push, 20 streams / 4 repos",
            "seconds": statistics.median(samples),
            "target": "<= 3 s",
        }
    ]


_SHIM = """#!/bin/sh
printf '%s\\t%s\\n' "$PWD" "$*" >> "$GIT_COUNT_LOG"
exec {git} "$@"
"""


def bench_git_processes(runs: int, workdir: Path) -> list[Row]:
    """Git processes started per repository by read-only commands, at 8 and at 32 streams."""
    real_git = shutil.which("git") or "/usr/bin/git"
    shim_dir = workdir / "shim"
    shim_dir.mkdir()
    shim = shim_dir / "git"
    shim.write_text(_SHIM.format(git=real_git))
    shim.chmod(0o755)
    rows: list[Row] = []
    commands = [["validate"], ["plan"], ["codeowners", "check"], ["conflicts"]]
    for n in (8, 32):
        root = _scaled_sandbox(workdir, f"count-{n}", n)
        subprocess.run(
            [*_coditect(), "streams", "setup", "--no-push"], cwd=root, capture_output=True, check=True
        )
        for command in commands:
            log = workdir / f"git-{n}-{'-'.join(command)}.log"
            env = {**os.environ, "PATH": f"{shim_dir}:{os.environ['PATH']}", "GIT_COUNT_LOG": str(log)}
            subprocess.run([*_coditect(), *command], cwd=root, env=env, capture_output=True)
            calls = log.read_text().splitlines() if log.exists() else []
            rows.append(
                {
                    "benchmark": "git-processes",
                    "case": f"coditect {' '.join(command)} ({n} streams, 4 repos)",
                    "seconds": 0.0,
                    "git_processes": len(calls),
                    "per_repo": round(len(calls) / 4, 2),
                }
            )
    return rows


def _lazy(module: str, function: str) -> Callable[[int, Path], list[Row]]:
    """A benchmark group defined in another script of scripts/ (imported only when it runs)."""

    def run(runs: int, workdir: Path) -> list[Row]:
        import importlib

        sys.path.insert(0, str(REPO / "scripts"))
        bench: Callable[[int, Path], list[Row]] = getattr(importlib.import_module(module), function)
        return bench(runs, workdir)

    return run


BENCHMARKS: dict[str, Callable[[int, Path], list[Row]]] = {
    "startup": bench_startup,
    "conflicts": _lazy("bench_conflicts", "bench_conflicts"),
    "forge": _lazy("bench_forge", "bench_forge"),
    "launch": _lazy("bench_launch", "bench_launch"),
    "agents": _lazy("bench_agents", "bench_agents"),
    "status": _lazy("bench_status", "bench_status"),
    "day": _lazy("bench_day", "bench_day"),
    "gating": _lazy("bench_gating", "bench_gating"),
    "guard": _lazy("bench_guard", "bench_guard"),
    "agent": _lazy("bench_agent", "bench_agent"),
    "validate": _lazy("bench_validate", "bench_validate"),
    "autopilot": _lazy("bench_autopilot", "bench_autopilot"),
    "hosts": _lazy("bench_hosts", "bench_hosts"),
    "setup": bench_setup,
    "git-processes": bench_git_processes,
}


def isolate(tmp: Path) -> None:
    """Run the benchmarks in a private environment: their own HOME and git config, no tmux client around."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    os.environ["HOME"] = str(home)
    os.environ["XDG_CONFIG_HOME"] = str(home / ".config")
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ.pop("TMUX", None)
    # Commands that read panes look at a server that does not exist rather than the user's own.
    os.environ["CODITECT_TMUX_SOCKET"] = f"coditect-bench-none-{os.getpid()}"
    # No warm server behind a measured command unless the benchmark starts one (scripts/warmkit.py).
    os.environ["CODITECT_SERVER"] = "0"


def print_rows(rows: list[Row], as_json: bool) -> None:
    """Every row: its case, its time, and every other figure it carries."""
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        seconds = row.get("seconds")
        timing = (
            f"{float(seconds) * 1000:9.1f} ms" if isinstance(seconds, (int, float)) and seconds else " " * 12
        )
        extras = ", ".join(
            f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in row.items()
            if k not in ("benchmark", "case", "seconds")
        )
        print(f"{row['benchmark']:<14} {row['case']}\n{'':<14} {timing}  {extras}")


def standalone(bench: Callable[[int, Path], list[Row]], *, runs: int, doc: str | None) -> int:
    """The ``main`` of a ``scripts/bench_*.py``: ``--runs N``, ``--json``, in an isolated environment."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--runs", type=int, default=runs, help="runs per measurement (the median is reported)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coditect-bench-") as tmp:
        isolate(Path(tmp))
        work = Path(tmp) / "work"
        work.mkdir()
        rows = bench(args.runs, work)
    print_rows(rows, args.json)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append", help="run only these groups")
    parser.add_argument("--runs", type=int, default=15, help="runs per measured command (median is reported)")
    parser.add_argument("--json", action="store_true", help="print JSON rows")
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="coditect-bench-") as tmp:
        isolate(Path(tmp))
        for name in args.only or sorted(BENCHMARKS):
            work = Path(tmp) / name
            work.mkdir()
            rows.extend(BENCHMARKS[name](args.runs, work))
    print_rows(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
