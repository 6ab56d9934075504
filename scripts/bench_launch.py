#!/usr/bin/env python3
"""Benchmark of `coditect streams launch`: 20 stream panes vs tmuxp loading an equivalent workspace.

    python3 scripts/bench_launch.py              # 7 runs, medians
    python3 scripts/bench_launch.py --runs 3 --json

A sandbox with 20 streams (agent `shell`, i.e. `$SHELL -l`), set up once, so every launch finds setup done.
Each run launches on a fresh private tmux server (`tmux -L <unique>`) that is killed afterwards; tmuxp
builds the same session on another private server from the YAML written next to the sandbox
(`tmuxp-<layout>.yaml`): the same 20 panes, directories, environment, command (`$SHELL -l` as the pane's
own command, so tmuxp does not type anything) and `remain-on-exit`. coditect does more per pane (titles,
user options, border, a `pipe-pane` log) and still builds everything with one tmux process.

Cases, for both layouts (`windows`, the default above 6 streams, and `tiled`, forced by the manifest):

- in process: `services.launch.launch()` (manifest validation, setup check, prompt files, state store,
  the tmux session) vs tmuxp's `WorkspaceBuilder.build()` (the tmux session only);
- command line: `coditect streams launch --no-attach` vs `tmuxp load -d` (Python start-up included);
- the tmux part alone: `Tmux.create_session()` (one `tmux` process per ~15 KB of commands: tmux caps what
  one client may send at 16 KiB, so 20 panes take 2);
- tmux processes started per launch, counted with a `tmux` shim on PATH.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

Row = dict[str, object]
STREAMS = 20
TARGET_SECONDS = 1.5


def manifest_text(phase: str, layout: str, streams: int = STREAMS) -> str:
    """A one-repository manifest with ``streams`` shell streams, each owning its own lane."""
    lines = [
        "version: 1",
        f"phase: {phase}",
        "project: bench",
        f"layout: {layout}",
        "schedule: {start: 2026-12-01, days: 10}",
        "repositories:",
        "  - {id: root, path: .}",
        "streams:",
    ]
    for i in range(1, streams + 1):
        sid = f"s{i:02d}"
        lines += [
            f"  - id: {sid}",
            f"    terminal: {i}",
            f"    name: Stream {i}",
            "    agent: dev",
            "    run: shell",
            f"    env: {{LANE: {sid}, API_URL: 'http://localhost:{4000 + i}'}}",
            f"    work: [{{repo: root, topic: {sid}, owns: [lanes/{sid}/]}}]",
        ]
    return "\n".join(lines) + "\n"


def build_project(workdir: Path, layout: str) -> Path:
    """A sandbox whose only manifest has 20 shell streams, with `streams setup` done. Returns its root."""
    from coditect_cli.sandbox import build_sandbox
    from coditect_cli.services.setup import setup

    phase = f"bench-{layout}"
    source = workdir / "manifests" / f"{phase}.yaml"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(manifest_text(phase, layout))
    root = build_sandbox(workdir / f"sandbox-{layout}", source).root
    from coditect_cli.project import Project

    cwd = os.getcwd()
    os.chdir(root)  # setup's CODEOWNERS header names the manifest relative to the cwd
    try:
        setup(Project(root), phase, push=True)
    finally:
        os.chdir(cwd)
    return root


def _spec(root: Path) -> Any:
    """The SessionSpec coditect builds for the project at ``root`` (no side effects)."""
    from coditect_cli.project import Project
    from coditect_cli.services.launch import prepare
    from coditect_cli.services.manifest import load
    from coditect_cli.services.setup import project_common_dir

    project = Project(root)
    manifest = load(project, None).manifest
    return prepare(project, manifest, project_common_dir(project), path=os.environ.get("PATH")).spec


def tmuxp_config(spec: Any) -> dict[str, Any]:
    """The tmuxp workspace equivalent to ``spec``: same panes, directories, environment, command."""
    options = {"remain-on-exit": "on"}
    panes = [
        {
            "start_directory": str(p.cwd),
            "environment": dict(p.env),
            "shell": " ".join(p.agent.argv),
            "shell_command": [],
        }
        for p in spec.panes
    ]
    if spec.layout == "tiled":
        windows = [{"window_name": spec.window_name, "layout": "tiled", "options": options, "panes": panes}]
    else:
        windows = [
            {"window_name": p.stream, "options": options, "panes": [pane]}
            for p, pane in zip(spec.panes, panes, strict=True)
        ]
    return {"session_name": f"tmuxp-{spec.name}", "windows": windows}


def _kill(socket: str) -> None:
    subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)


def _panes(socket: str) -> list[str]:
    out = subprocess.run(
        ["tmux", "-L", socket, "list-panes", "-a", "-F", "#{pane_current_path}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.splitlines()


_counter = 0


def _fresh_socket() -> str:
    global _counter
    _counter += 1
    return f"coditect-bench-{os.getpid()}-{_counter}"


def _median(build: Callable[[str], object], runs: int, expect: int = STREAMS) -> float:
    """Median wall time of ``build(socket)`` on a fresh private server per run (plus one warm-up)."""
    samples: list[float] = []
    for i in range(runs + 1):
        socket = _fresh_socket()
        try:
            start = time.perf_counter()
            build(socket)
            elapsed = time.perf_counter() - start
            got = len(_panes(socket))
            if got != expect:
                raise SystemExit(f"expected {expect} panes on {socket}, found {got}")
        finally:
            _kill(socket)
        if i:
            samples.append(elapsed)
    return statistics.median(samples)


def _coditect() -> list[str]:
    exe = shutil.which("coditect")
    return [exe] if exe else [sys.executable, "-m", "coditect_cli"]


def _tmuxp() -> list[str]:
    exe = shutil.which("tmuxp")
    return [exe] if exe else [sys.executable, "-m", "tmuxp"]


def _run(argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed ({done.returncode}): {argv}\n{done.stderr.decode()}")


def _count_tmux(workdir: Path, run: Callable[[dict[str, str]], None]) -> int:
    """How many tmux processes ``run`` starts, counted by a ``tmux`` shim first on PATH."""
    shim_dir = workdir / "shim"
    shim_dir.mkdir(exist_ok=True)
    log = shim_dir / "calls.log"
    log.write_text("")
    real = shutil.which("tmux")
    shim = shim_dir / "tmux"
    shim.write_text(f'#!/bin/sh\necho x >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    run({"PATH": f"{shim_dir}{os.pathsep}{os.environ['PATH']}"})
    return len(log.read_text().splitlines())


def bench_launch(runs: int, workdir: Path) -> list[Row]:
    """coditect's launch of 20 streams vs tmuxp, in process and on the command line, both layouts."""
    import yaml
    from libtmux.server import Server
    from tmuxp.workspace import loader
    from tmuxp.workspace.builder import WorkspaceBuilder

    from coditect_cli.adapters.tmux import Tmux
    from coditect_cli.project import Project
    from coditect_cli.services.launch import launch

    os.environ.setdefault(
        "COLUMNS", "240"
    )  # tmuxp sizes a detached session from the terminal (80x24 fallback)
    os.environ.setdefault("LINES", "80")
    rows: list[Row] = []
    for layout in ("windows", "tiled"):
        root = build_project(workdir, layout)
        project = Project(root)
        spec = _spec(root)
        config = tmuxp_config(spec)
        config_file = workdir / f"tmuxp-{layout}.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))

        def ours_service(socket: str, project: Project = project) -> None:
            launch(project, None, attach=False, agent=None, socket=socket, day=None)

        def tmuxp_builder(socket: str, config_file: Path = config_file) -> None:
            raw = yaml.safe_load(config_file.read_text())
            conf = loader.trickle(loader.expand(raw, cwd=str(config_file.parent)))
            WorkspaceBuilder(session_config=conf, server=Server(socket_name=socket)).build()

        invocations: list[int] = []

        def tmux_only(socket: str, spec: Any = spec, invocations: list[int] = invocations) -> None:
            tmux = Tmux(socket)
            tmux.create_session(spec)
            invocations.append(tmux.invocations)

        def ours_cli(socket: str, root: Path = root) -> None:
            _run([*_coditect(), "streams", "launch", "--no-attach", "--socket", socket], cwd=root)

        def tmuxp_cli(socket: str, config_file: Path = config_file) -> None:
            _run([*_tmuxp(), "load", "-d", "-y", "-L", socket, str(config_file)])

        prev = os.getcwd()
        os.chdir(root)
        try:
            service_s = _median(ours_service, runs)
            builder_s = _median(tmuxp_builder, runs)
            tmux_s = _median(tmux_only, runs)
            cli_s = _median(ours_cli, runs)
            tmuxp_cli_s = _median(tmuxp_cli, runs)
        finally:
            os.chdir(prev)
        socket = _fresh_socket()
        ours_n = _count_tmux(
            workdir,
            lambda env, s=socket, r=root: _run(
                [*_coditect(), "streams", "launch", "--no-attach", "--socket", s], cwd=r, env=env
            ),
        )
        _kill(socket)
        socket = _fresh_socket()
        tmuxp_n = _count_tmux(
            workdir,
            lambda env, s=socket, c=config_file: _run(
                [*_tmuxp(), "load", "-d", "-y", "-L", s, str(c)], env=env
            ),
        )
        _kill(socket)
        common = {"benchmark": "launch", "layout": layout, "panes": STREAMS}
        rows += [
            {
                **common,
                "case": f"{layout}: coditect launch service, in process (validate, setup check, prompts, session)",
                "seconds": service_s,
                "speedup_vs_tmuxp": builder_s / service_s,
                "target": f"<= {TARGET_SECONDS} s and faster than tmuxp",
                "meets_target": service_s <= TARGET_SECONDS and service_s < builder_s,
            },
            {**common, "case": f"{layout}: tmuxp WorkspaceBuilder.build(), in process", "seconds": builder_s},
            {
                **common,
                "case": f"{layout}: coditect tmux part alone: Tmux.create_session ({invocations[-1]} tmux processes)",
                "seconds": tmux_s,
                "speedup_vs_tmuxp": builder_s / tmux_s,
                "tmux_processes": invocations[-1],
            },
            {
                **common,
                "case": f"{layout}: `coditect streams launch --no-attach` (command line)",
                "seconds": cli_s,
                "speedup_vs_tmuxp": tmuxp_cli_s / cli_s,
                "tmux_processes": ours_n,
            },
            {
                **common,
                "case": f"{layout}: `tmuxp load -d` (command line)",
                "seconds": tmuxp_cli_s,
                "tmux_processes": tmuxp_n,
            },
        ]
    return rows


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import standalone

    return standalone(bench_launch, runs=7, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
