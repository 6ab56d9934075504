#!/usr/bin/env python3
"""Benchmark of streams on remote hosts: 20 streams over 2 SSH hosts (real sshd on 127.0.0.1).

    python3 scripts/bench_hosts.py              # 5 runs, medians
    python3 scripts/bench_hosts.py --runs 3 --json

Two sshd on 127.0.0.1 (two ports, two host keys; tests/hosts/sshkit.py), a generated key pair, coditect's own
known_hosts. A one-repository project with 20 shell streams, 10 on each host, set up once.

- `streams launch` of the 20 (in process): per host (the hosts in parallel) one SSH call for the setup
  check, the prompts and the pane listing, one creating the panes; each run on sessions killed before;
- `streams status` (in process) with cold connections (every master connection closed first) and warm ones:
  its time, SSH processes run (one per host: panes, screens and the agents' events files at once) and SSH
  connections opened (target: one per host, and <= 0.5 s warm);
- `coditect streams status --json` on the command line, warm (Python start-up included).
"""

from __future__ import annotations

import getpass
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "hosts"))

Row = dict[str, object]
STREAMS = 20
TARGET_STATUS = 0.5


def _manifest(ports: dict[str, int], workdirs: dict[str, Path]) -> str:
    user = getpass.getuser()
    lines = ["version: 1", "phase: phase-1", "project: bench", "forge: local",
             "schedule: {start: 2026-12-01, days: 10}", "repositories:", "  - {id: app, path: .}", "hosts:"]  # fmt: skip
    for name, port in ports.items():
        lines.append(f"  - {{name: {name}, ssh: {user}@127.0.0.1, port: {port}, workdir: {workdirs[name]}}}")
    lines.append("streams:")
    for k in range(1, STREAMS + 1):
        host = "h1" if k % 2 else "h2"
        lines += [f"  - id: s{k}", f"    terminal: {k}", f"    name: Stream {k}", f"    agent: a{k}",
                  f"    host: {host}", "    run: shell",
                  f"    work: [{{repo: app, topic: t{k}, owns: [s{k}/]}}]"]  # fmt: skip
    return "\n".join(lines) + "\n"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _close_masters(common: Path) -> None:
    from coditect_cli.services import hosts

    for host in hosts._connections.values():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={host.control_path}", "-O", "exit", "x"],
            capture_output=True,
            check=False,
        )


def bench_hosts(runs: int, workdir: Path) -> list[Row]:
    """Launch and status of 20 streams on 2 SSH hosts."""
    import sshkit

    from coditect_cli.project import Project
    from coditect_cli.services import hosts
    from coditect_cli.services.launch import launch
    from coditect_cli.services.streams import status

    kit = sshkit.start_kit(workdir / "ssh")
    rows: list[Row] = []
    sockets: list[str] = []
    try:
        workdirs = {name: workdir / f"remote-{name}" for name in kit.hosts}
        origin, root = workdir / "origin.git", workdir / "bench"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
        _git(root, "config", "user.name", "B")
        _git(root, "config", "user.email", "b@e.invalid")
        (root / "workstreams").mkdir()
        (root / "workstreams" / "phase-1.yaml").write_text(
            _manifest({n: h.port for n, h in kit.hosts.items()}, workdirs)
        )
        (root / ".gitignore").write_text(".coditect/\n")
        _git(root, "add", "-A")
        _git(root, "-c", "user.name=B", "-c", "user.email=b@e.invalid", "commit", "-qm", "init")
        _git(root, "branch", "develop")
        _git(root, "remote", "add", "origin", str(origin))
        _git(root, "push", "-q", "-u", "origin", "main", "develop")
        common = root / ".git"
        (common / "coditect" / "ssh").mkdir(parents=True)
        (common / "coditect" / "ssh" / "known_hosts").write_text(kit.known_hosts())
        os.environ["CODITECT_SSH_CONFIG"] = str(kit.config)
        project = Project(root)
        from coditect_cli.services.manifest import load

        manifest = load(project, None).manifest
        sockets = [hosts.layout(manifest, project, n).socket for n in kit.hosts]

        from coditect_cli.services.setup import setup

        setup(project, "phase-1")  # clones and the 20 worktrees on the hosts, once
        launches: list[float] = []
        calls: list[int] = []
        for _ in range(runs):
            for sock in sockets:
                subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)
            before = sum(h.calls for h in hosts._connections.values())
            start = time.perf_counter()
            launch(project, "phase-1", attach=False, agent=None, socket=None, day=1)
            launches.append(time.perf_counter() - start)
            calls.append(sum(h.calls for h in hosts._connections.values()) - before)
        rows.append({"benchmark": "hosts", "case": f"streams launch: {STREAMS} streams on 2 SSH hosts",
                     "seconds": statistics.median(launches), "ssh_calls": statistics.median(calls)})  # fmt: skip

        def measure(cold: bool) -> Row:
            times, calls, opened = [], [], []
            for _ in range(runs):
                if cold:
                    _close_masters(common)
                c0 = sum(h.calls for h in hosts._connections.values())
                o0 = sum(h.opened for h in hosts._connections.values())
                start = time.perf_counter()
                result = status(project, "phase-1")
                times.append(time.perf_counter() - start)
                calls.append(sum(h.calls for h in hosts._connections.values()) - c0)
                opened.append(sum(h.opened for h in hosts._connections.values()) - o0)
                assert sum(s.state == "running" for s in result.streams) == STREAMS, result.to_json()
            return {"benchmark": "hosts",
                    "case": f"streams status: {STREAMS} streams on 2 SSH hosts, {'cold' if cold else 'warm'} connections",
                    "seconds": statistics.median(times), "ssh_calls": statistics.median(calls),
                    "connections_opened": statistics.median(opened),
                    **({} if cold else {"target_seconds": TARGET_STATUS})}  # fmt: skip

        rows.append(measure(cold=True))
        rows.append(measure(cold=False))
        env = {**os.environ, "CODITECT_TMUX_SOCKET": f"coditect-bench-none-{os.getpid()}"}
        argv = [sys.executable, "-m", "coditect_cli", "streams", "status", "--json"]
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(argv, cwd=root, env=env, capture_output=True, check=True)
            samples.append(time.perf_counter() - start)
        rows.append({"benchmark": "hosts", "case": "coditect streams status --json (CLI, warm connections)",
                     "seconds": statistics.median(samples)})  # fmt: skip
    finally:
        for sock in sockets:
            subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True, check=False)
        if (workdir / "bench" / ".git").exists():
            _close_masters(workdir / "bench" / ".git")
        kit.close()
    return rows


if __name__ == "__main__":
    from bench import standalone

    sys.exit(standalone(bench_hosts, runs=5, doc=__doc__))
