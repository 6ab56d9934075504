#!/usr/bin/env python3
"""Benchmark of `coditect conflicts`: one `git merge-tree --stdin` process per repository vs one process per pair.

    python3 scripts/bench_conflicts.py              # 15 runs, medians
    python3 scripts/bench_conflicts.py --runs 5 --json

One repository, 50 feature branches off the integration branch, each committing its own file; branches 7
and 19 edit the same line of shared.txt, 23 and 41 the same line of notes.txt, and 30 edits config.txt,
which the integration branch changed after the branches were cut: 3 conflicts among 1,225 pairs + 50
branches vs integration = 1,275 merges. The rendering rows run the CLI on the same layout with 99 streams
(4,950 merges) and compare the CPU time (user + system of the process) of the human output, which
summarises a repository above 12 streams, of `--all` (the full matrix) and of `--json`. The per-pair baseline times a sample of pairs (one
`git merge-tree --write-tree A B` process each) and extrapolates to all 1,275; its row says so.
"""

from __future__ import annotations

import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from itertools import combinations
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coditect_cli.adapters import proc  # noqa: E402

Row = dict[str, object]

BRANCHES = 50
SAMPLE = 200
PHASE = "bench"
INTEGRATION = f"{PHASE}-integration"
PLANTED = {(7, 19): "shared.txt", (23, 41): "notes.txt"}  # pairs editing line 20 of the same file
AGAINST_INTEGRATION = 30  # edits config.txt, which integration changes too


def _branch(i: int) -> str:
    return f"feature/{PHASE}/s{i:02d}/work"


def _git(repo: Path, *args: str) -> str:
    return proc.run(["git", "-C", str(repo), *args]).stdout.strip()


def _commit(repo: Path, branch: str, files: dict[str, str], message: str) -> None:
    _git(repo, "checkout", "-q", branch)
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


def build_project(root: Path, branches: int = BRANCHES) -> Path:
    """A one-repository coditect project with ``branches`` streams and their feature branches."""
    root.mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.name", "Bench")
    _git(root, "config", "user.email", "bench@example.invalid")
    streams = "".join(
        f"  - id: s{i:02d}\n    terminal: {i}\n    name: Stream {i}\n    agent: agent-{i}\n"
        f"    work:\n      - {{repo: app, topic: work, owns: [s{i:02d}/]}}\n"
        for i in range(1, branches + 1)
    )
    files = {
        f"workstreams/{PHASE}.yaml": f"version: 1\nphase: {PHASE}\nschedule: {{start: 2027-01-04, days: 10}}\n"
        f"repositories:\n  - {{id: app, path: .}}\nstreams:\n{streams}",
        "shared.txt": "".join(f"line {n}\n" for n in range(40)),
        "notes.txt": "".join(f"note {n}\n" for n in range(40)),
        "config.txt": "debug = false\nworkers = 4\n",
        **{f"s{i:02d}/README.md": f"# Stream {i}\n" for i in range(1, branches + 1)},
    }
    _git(root, "checkout", "-q", "-b", "develop")
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "initial")
    _git(root, "branch", INTEGRATION, "develop")
    planted = {n: path for pair, path in PLANTED.items() for n in pair}
    for i in range(1, branches + 1):
        _git(root, "branch", _branch(i), INTEGRATION)
        change = {f"s{i:02d}/work.py": f"VALUE = {i}\n"}
        if i in planted:
            lines = files[planted[i]].splitlines(keepends=True)
            lines[20] = f"edited by stream {i}\n"
            change[planted[i]] = "".join(lines)
        if i == AGAINST_INTEGRATION:
            change["config.txt"] = "debug = false\nworkers = 8\n"
        _commit(root, _branch(i), change, f"s{i:02d}: work")
        _git(root, "checkout", "-q", "-f", "develop")
    _commit(root, INTEGRATION, {"config.txt": "debug = true\nworkers = 4\n"}, "integration: debug on")
    _git(root, "checkout", "-q", "-f", "develop")
    return root


def _median(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    result = fn()  # warm-up (page cache, imports)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


RENDER_STREAMS = 99


def _cli_cpu(args: list[str]) -> float:
    """CPU seconds (user + system) of one `coditect` process running ``args``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "1000", "NO_COLOR": "1"}
    proc.run([sys.executable, "-m", "coditect_cli", *args], cwd=REPO, check=False, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_render(runs: int, workdir: Path) -> list[Row]:
    """`conflicts` at 99 streams: CPU of the human output (summary), of `--all` and of `--json`."""
    root = build_project(workdir / "render-project", RENDER_STREAMS)
    cases = {
        "human (summary + conflicting pairs)": ["--root", str(root), "conflicts"],
        "human --all (full 99x100 matrix)": ["--root", str(root), "conflicts", "--all"],
        "--json": ["--root", str(root), "conflicts", "--json"],
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(max(1, runs)):  # interleaved, so that load hits every case alike
        for name, args in cases.items():
            samples[name].append(_cli_cpu(args))
    json_cpu = statistics.median(samples["--json"])
    return [
        {
            "benchmark": "conflicts",
            "case": f"CLI at {RENDER_STREAMS} streams, {name}: CPU seconds (median)",
            "seconds": statistics.median(samples[name]),
            "ratio_vs_json": statistics.median(samples[name]) / json_cpu,
        }
        for name in cases
    ]


def bench_conflicts(runs: int, workdir: Path) -> list[Row]:
    """Full conflict check of 50 branches (1,275 merges) vs one merge-tree process per pair."""
    from coditect_cli.adapters.mergetree import merge_tree_batch, verify_refs
    from coditect_cli.project import Project
    from coditect_cli.services.conflicts import predict

    root = build_project(workdir / "conflicts-project")
    branches = [_branch(i) for i in range(1, BRANCHES + 1)]
    pairs = [*combinations(branches, 2), *((b, INTEGRATION) for b in branches)]
    refs = [f"refs/heads/{b}" for b in [*branches, INTEGRATION]]

    service_s, report = _median(lambda: predict(Project(root), PHASE), runs)
    conflicts = report.conflicts  # type: ignore[attr-defined]
    if conflicts != len(PLANTED) + 1:
        raise SystemExit(f"expected {len(PLANTED) + 1} predicted conflicts, got {conflicts}")

    def adapter() -> int:
        verify_refs(root, refs)
        return sum(r.conflict for r in merge_tree_batch(root, pairs))

    adapter_s, found = _median(adapter, runs)

    def adapter_in_repo() -> int:
        verify_refs(root, refs)
        return sum(r.conflict for r in merge_tree_batch(root, pairs, keep_objects=True))

    in_repo_s, _ = _median(adapter_in_repo, runs)

    sample = random.Random(1275).sample(pairs, min(SAMPLE, len(pairs)))

    def per_pair() -> int:
        conflicted = 0
        for a, b in sample:
            done = proc.run(["git", "-C", str(root), "merge-tree", "--write-tree", a, b], check=False)
            conflicted += done.returncode == 1
        return conflicted

    sample_s, _ = _median(per_pair, runs)
    per_pair_s = sample_s * len(pairs) / len(sample)
    extrapolated = len(sample) < len(pairs)
    rendering = bench_render(min(runs, 3), workdir)
    return [
        *rendering,
        {
            "benchmark": "conflicts",
            "case": f"coditect conflicts service: {len(pairs)} pairs checked (history filter, then one merge-tree for the rest; incl. validation)",
            "seconds": service_s,
            "pairs": len(pairs),
            "conflicts": conflicts,
            "speedup_vs_per_pair": per_pair_s / service_s,
        },
        {
            "benchmark": "conflicts",
            "case": f"adapter: verify_refs + merge_tree_batch, {len(pairs)} merges in one --stdin process",
            "seconds": adapter_s,
            "merges": len(pairs),
            "conflicts": found,
            "speedup_vs_per_pair": per_pair_s / adapter_s,
        },
        {
            "benchmark": "conflicts",
            "case": "adapter, keep_objects=True: merged trees written into the repository (present after run 1)",
            "seconds": in_repo_s,
            "merges": len(pairs),
            "speedup_vs_per_pair": per_pair_s / in_repo_s,
        },
        {
            "benchmark": "conflicts",
            "case": (
                f"baseline: one `git merge-tree --write-tree A B` per pair, {len(sample)} sampled pairs "
                f"extrapolated to {len(pairs)}"
                if extrapolated
                else f"baseline: one `git merge-tree --write-tree A B` per pair, all {len(pairs)} pairs"
            ),
            "seconds": per_pair_s,
            "sample_pairs": len(sample),
            "sample_seconds": sample_s,
            "extrapolated": extrapolated,
        },
    ]


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import standalone

    return standalone(bench_conflicts, runs=15, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
