#!/usr/bin/env python3
"""Benchmark of the agents' edge: `streams status --json` at 12, 50 and 100 panes, and messages delivered to
real Claude Code panes.

    python3 scripts/bench_agents.py                 # status: 5 runs per size, medians; 100 sends
    python3 scripts/bench_agents.py --runs 3 --json

- status: a one-repository sandbox with N `shell` streams launched on a private tmux server; the median
  wall time of `coditect streams status --json` (Python start-up included) and of the service call in
  process, and the tmux and git processes one call starts (counted by shims first on PATH). Target: at most
  0.3 s at 50 panes; tmux processes must not grow per pane (one list, one capture for all panes).
- delivery: `CODITECT_BENCH_CLAUDE_PANES` (default 2) streams running the real Claude Code against the fake
  Messages API (tests/fakeanthropic); `CODITECT_BENCH_SENDS` (default 100) messages of 300 characters, each
  with its number, sent round-robin through `services.agents.deliver`; counted: delivered, queued,
  unconfirmed, lost (never reached the model), glued (two numbers in one user message). Target: all
  delivered, 0 lost, 0 glued.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

Row = dict[str, object]
SIZES = (12, 50, 100)
TARGET_AT_50 = 0.3


def _manifest(phase: str, streams: int, run: str = "shell") -> str:
    lines = [
        "version: 1",
        f"phase: {phase}",
        "project: bench",
        "schedule: {start: 2026-12-01, days: 10}",
        "repositories:",
        "  - {id: root, path: .}",
        "streams:",
    ]
    for i in range(1, streams + 1):
        sid = f"s{i:03d}"
        lines += [
            f"  - id: {sid}",
            f"    terminal: {i}",
            f"    name: Stream {i}",
            "    agent: dev",
            f"    run: {run}",
            f"    work: [{{repo: root, topic: {sid}, owns: [lanes/{sid}/]}}]",
        ]
    return "\n".join(lines) + "\n"


def _project(workdir: Path, phase: str, streams: int, run: str = "shell") -> Path:
    from coditect_cli.sandbox import build_sandbox

    source = workdir / "manifests" / f"{phase}.yaml"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(_manifest(phase, streams, run))
    return build_sandbox(workdir / f"sandbox-{phase}", source).root


def _cli(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coditect_cli", *args],
        cwd=root,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


def _shims(workdir: Path) -> tuple[dict[str, str], dict[str, Path]]:
    shim_dir = workdir / "shims"
    shim_dir.mkdir(exist_ok=True)
    logs: dict[str, Path] = {}
    for program in ("tmux", "git"):
        real = shutil.which(program)
        assert real is not None
        logs[program] = shim_dir / f"{program}.log"
        shim = shim_dir / program
        shim.write_text(f'#!/bin/sh\necho x >> "{logs[program]}"\nexec "{real}" "$@"\n')
        shim.chmod(0o755)
    return {"PATH": f"{shim_dir}{os.pathsep}{os.environ['PATH']}"}, logs


def bench_status(runs: int, workdir: Path) -> list[Row]:
    """`streams status --json` at 12, 50 and 100 panes."""
    from coditect_cli.project import Project
    from coditect_cli.services import launch, streams

    rows: list[Row] = []
    for size in SIZES:
        phase = f"status-{size}"
        root = _project(workdir, phase, size)
        socket = f"coditect-bench-{uuid.uuid4().hex[:8]}"
        try:
            os.chdir(root)
            launch.launch(Project(root), None, attach=False, agent=None, socket=socket, day=None, push=False)
            cli: list[float] = []
            for _ in range(runs):
                start = time.perf_counter()
                done = _cli(root, "streams", "status", "--json", "--socket", socket)
                cli.append(time.perf_counter() - start)
                assert done.returncode == 0, done.stderr
                assert len(json.loads(done.stdout)["data"]["streams"]) == size
            inproc: list[float] = []
            for _ in range(runs):
                start = time.perf_counter()
                streams.status(Project(root), None, socket=socket)
                inproc.append(time.perf_counter() - start)
            env, logs = _shims(workdir)
            for log in logs.values():
                log.write_text("")
            _cli(root, "streams", "status", "--json", "--socket", socket, env=env)
            counts = {p: len(log.read_text().splitlines()) for p, log in logs.items()}
            median = statistics.median(cli)
            rows.append(
                {
                    "benchmark": "agents",
                    "case": f"streams status --json, {size} panes",
                    "seconds": round(median, 3),
                    "in_process_seconds": round(statistics.median(inproc), 3),
                    "tmux_processes": counts["tmux"],
                    "git_processes": counts["git"],
                    "target": f"<= {TARGET_AT_50} s" if size == 50 else "",
                    "ok": median <= TARGET_AT_50 if size == 50 else None,
                }
            )
        finally:
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    return rows


def bench_delivery(runs: int, workdir: Path) -> list[Row]:
    """Messages of 300 characters delivered to real Claude Code panes."""
    from fakeanthropic.conversation import responder, user_texts
    from fakeanthropic.server import FakeAnthropic

    from coditect_cli.project import Project
    from coditect_cli.services.agents import deliver

    if not shutil.which("claude"):
        return [{"benchmark": "agents", "case": "delivery to Claude Code", "note": "claude is not installed"}]
    panes = int(os.environ.get("CODITECT_BENCH_CLAUDE_PANES", "2"))
    sends = int(os.environ.get("CODITECT_BENCH_SENDS", "100"))
    home = Path(os.environ["HOME"])
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True}))
    root = _project(workdir, "deliver", panes, run="claude")
    socket = f"coditect-bench-{uuid.uuid4().hex[:8]}"
    with FakeAnthropic(respond=responder([], default="Noted.")) as api:
        os.environ.update(api.env())
        try:
            done = _cli(root, "streams", "launch", "--no-attach", "--trust", "--socket", socket, "--no-push")
            assert done.returncode == 0, done.stdout + done.stderr
            project = Project(root)
            from coditect_cli.services.agents import agent_states

            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                states = agent_states(project, None, socket=socket)
                if all(s.state == "idle" for s in states.values()):
                    break
                time.sleep(0.2)
            streams = sorted(states)
            counts: dict[str, int] = {}
            start = time.perf_counter()
            for n in range(sends):
                body = f"MSG-{n:04d} " + "lorem ipsum dolor sit amet, consectetur adipiscing elit; " * 6
                text = body[:300]
                _, out = deliver(project, None, {streams[n % len(streams)]: text}, socket=socket)
                for d in out:
                    counts[d.status] = counts.get(d.status, 0) + 1
            seconds = time.perf_counter() - start
            deadline = time.monotonic() + 120
            seen: list[str] = []
            while time.monotonic() < deadline:
                seen = user_texts(api.message_requests())
                if sum(1 for t in seen if t.startswith("MSG-")) >= sends:
                    break
                time.sleep(0.5)
            numbers = [re.findall(r"MSG-(\d{4})", t) for t in seen]
            arrived = {n for ns in numbers for n in ns}
            glued = sum(1 for ns in numbers if len(ns) > 1)
            exact = sum(1 for t in seen if t.startswith("MSG-") and len(t) == 300)
        finally:
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    return [
        {
            "benchmark": "agents",
            "case": f"{sends} sends of 300 chars to {panes} Claude Code panes",
            "seconds": round(seconds, 1),
            "per_send_seconds": round(seconds / max(sends, 1), 2),
            "delivered": counts.get("delivered", 0),
            "queued": counts.get("queued", 0),
            "unconfirmed": counts.get("unconfirmed", 0),
            "held": counts.get("held", 0),
            "arrived": len(arrived),
            "arrived_exactly": exact,
            "lost": sends - len(arrived),
            "glued": glued,
            "target": "all delivered, 0 lost, 0 glued",
            "ok": counts.get("delivered", 0) == sends and len(arrived) == sends and glued == 0,
        }
    ]


def bench_agents(runs: int, workdir: Path) -> list[Row]:
    """Both groups."""
    rows = bench_status(runs, workdir)
    delivery = workdir / "delivery"
    delivery.mkdir()
    return rows + bench_delivery(runs, delivery)


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import standalone

    return standalone(bench_agents, runs=5, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
