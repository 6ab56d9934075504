#!/usr/bin/env python3
"""Benchmark of `coditect streams launch`: a curve from 5 to 100 streams, against `tmuxp load -d` of the
same panes, measured interleaved in one run.

    python3 scripts/bench_launch.py              # 3 runs, medians
    python3 scripts/bench_launch.py --runs 5 --json
    CODITECT_BENCH_LAUNCH="20x10,50x1" python3 scripts/bench_launch.py   # only these streams x repositories
    CODITECT_BENCH_BEFORE=/path/to/older/checkout python3 scripts/bench_launch.py  # and that code, interleaved

One project per size (5, 10, 20, 50, 100 streams; 1 and 10 repositories): a superproject and its submodules,
each with a bare origin on disk, and one manifest whose streams (agent `shell`, i.e. `$SHELL -l`) each work
in EVERY repository, owning `lanes/<stream>/` there (20 streams over 10 repositories is 200 worktrees), with
`streams setup` done, so every launch finds setup done. Layout `auto`: one tiled window up to 6 streams, a
window per stream above.

Each run launches on a fresh private tmux server (`tmux -L <unique>`) that is killed afterwards, after
checking that it holds one pane per stream. tmuxp builds the same session on another private server from
the YAML written next to the project (`tmuxp.yaml`): the same panes, windows, directories, environment,
command (`$SHELL -l` as the pane's own command, so tmuxp types nothing) and `remain-on-exit`. coditect does
more per pane (titles, user options, border, a `pipe-pane` log) plus its own checks (manifest validation,
the setup plan against every repository, prompt files, the state store).

Both run from bytecode compiled by the warm-up round (into the work directory: `PYTHONPYCACHEPREFIX`, even
when `PYTHONDONTWRITEBYTECODE` is set, under which the editable checkout would be compiled on every run).
Per size: the median wall time of `coditect streams launch --no-attach` (in one process, and answered by a
warm server that a served command started first: `coditect (served)`, whose CPU time includes its worker's)
and of `tmuxp load -d` (Python start-up included in both; the runs of all sizes and both tools alternate), their ratio (target: at most 1),
their CPU time (user + system of the command and its children: the figure to read on a loaded machine, where
wall time follows CPU time), and the tmux and git processes one launch starts, counted with `tmux` and `git`
shims first on PATH. Also each program's start-up floor, `--version`, measured in the same rounds. With
`CODITECT_BENCH_BEFORE`
naming another checkout of coditect (e.g. `git worktree add /tmp/before <commit>`), its launch is timed too,
in the same rounds (it must write the same ownership hooks, or each launch would set the phase up again).
"""

from __future__ import annotations

import os
import resource
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
SERVED = "coditect (served)"
SIZES = (5, 10, 20, 50, 100)
REPOSITORIES = (1, 10)
PHASE = "bench"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}
_ALLOW_FILE = ["-c", "protocol.file.allow=always"]


def repo_ids(repos: int) -> list[str]:
    """``root`` (the superproject) and ``r1``... (its submodules under ``repos/``)."""
    return ["root", *(f"r{k}" for k in range(1, repos))]


def manifest_text(repos: int, streams: int) -> str:
    """``streams`` shell streams, each working in every one of the ``repos`` repositories."""
    ids = repo_ids(repos)
    lines = [
        "version: 1",
        f"phase: {PHASE}",
        "project: bench",
        "forge: local",
        "schedule: {start: 2026-12-01, days: 10}",
        "repositories:",
        *(f"  - {{id: {rid}, path: {'.' if rid == 'root' else f'repos/{rid}'}}}" for rid in ids),
        "streams:",
    ]
    for i in range(1, streams + 1):
        sid = f"s{i:03d}"
        lines += [
            f"  - id: {sid}",
            f"    terminal: {i}",
            f"    name: Stream {i}",
            "    agent: dev",
            "    run: shell",
            f"    env: {{LANE: {sid}, API_URL: 'http://localhost:{4000 + i}'}}",
            "    work:",
            *(f"      - {{repo: {rid}, topic: {sid}, owns: [lanes/{sid}/]}}" for rid in ids),
        ]
    return "\n".join(lines) + "\n"


def _git(cwd: Path, *args: str) -> None:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **_IDENTITY}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed in {cwd}: {done.stderr}")


def _publish(work: Path, origin: Path, files: dict[str, str]) -> None:
    """A repository in ``work`` with ``files`` committed on ``main`` and ``develop``, cloned bare to ``origin``."""
    work.mkdir(parents=True)
    _git(work, "init", "-q", "-b", "main")
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "initial")
    _git(work, "branch", "develop")
    _git(work.parent, "clone", "-q", "--bare", str(work), str(origin))


def build_project(workdir: Path, repos: int, streams: int) -> Path:
    """The superproject and its ``repos - 1`` submodules with bare origins, cloned, ``streams setup`` done.
    Returns the project root."""
    from coditect_cli.project import Project
    from coditect_cli.services.setup import setup

    ids = repo_ids(repos)
    origins = workdir / "origins"
    staging = workdir / "staging"
    for rid in ids[1:]:
        _publish(staging / rid, origins / f"{rid}.git", {"README.md": f"# {rid}\n"})
    superproject = {
        ".gitignore": ".coditect/\nworkstreams/reports/\n",
        "README.md": "# bench superproject\n",
        f"workstreams/{PHASE}.yaml": manifest_text(repos, streams),
    }
    _publish(staging / "root", origins / "root.git", superproject)
    root = workdir / "project"
    _git(workdir, "clone", "-q", "--branch", "develop", str(origins / "root.git"), str(root))
    for rid in ids[1:]:
        _git(
            root,
            *_ALLOW_FILE,
            "submodule",
            "add",
            "-q",
            "-b",
            "develop",
            str(origins / f"{rid}.git"),
            f"repos/{rid}",
        )
    if repos > 1:
        _git(root, "commit", "-qm", "submodules")
        _git(root, "push", "-q", "origin", "develop")
    for rid in ids:
        checkout = root if rid == "root" else root / "repos" / rid
        _git(checkout, "checkout", "-q", "develop")
        _git(checkout, "config", "user.name", "Bench")
        _git(checkout, "config", "user.email", "bench@example.invalid")
    shutil.rmtree(staging)
    cwd = os.getcwd()
    os.chdir(root)  # setup's CODEOWNERS header names the manifest relative to the cwd
    try:
        setup(Project(root), PHASE, push=True)
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


def _pane_count(socket: str) -> int:
    out = subprocess.run(
        ["tmux", "-L", socket, "list-panes", "-a", "-F", "#{pane_id}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return len(out.stdout.splitlines())


_counter = 0


def _fresh_socket() -> str:
    global _counter
    _counter += 1
    return f"coditect-bench-{os.getpid()}-{_counter}"


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


def _timed(
    command: Callable[[str, dict[str, str] | None], None], panes: int, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """(wall, CPU) seconds of ``command(socket, env)`` on a fresh private tmux server, checked to hold ``panes``
    panes. CPU is user + system of the command and its children (not of the tmux server, which detaches)."""
    socket = _fresh_socket()
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        command(socket, env)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        got = _pane_count(socket)
        if got != panes:
            raise SystemExit(f"expected {panes} panes on {socket}, found {got}")
    finally:
        _kill(socket)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


_SHIM = '#!/bin/sh\necho "$PWD" >> "{log}"\nexec "{real}" "$@"\n'


def _count(
    workdir: Path,
    command: Callable[[str, dict[str, str] | None], None],
    panes: int,
    env: dict[str, str] | None = None,
) -> dict[str, list[str]]:
    """The tmux and git processes one ``command`` starts (the working directory of each), counted by shims
    first on PATH (a served launch's worker takes its caller's PATH)."""
    shims = workdir / "shims"
    shims.mkdir(exist_ok=True)
    logs = {tool: shims / f"{tool}.log" for tool in ("tmux", "git")}
    for tool, log in logs.items():
        real = shutil.which(tool)
        if real and Path(real).parent != shims:
            (shims / tool).write_text(_SHIM.format(log=log, real=real))
            (shims / tool).chmod(0o755)
        log.write_text("")
    _timed(command, panes, {**(env or {}), "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}"})
    return {tool: log.read_text().splitlines() for tool, log in logs.items()}


def _cases() -> list[tuple[int, int]]:
    """(streams, repositories) to measure: every size for both repository counts, or
    ``$CODITECT_BENCH_LAUNCH`` (``STREAMSxREPOS,...``)."""
    chosen = os.environ.get("CODITECT_BENCH_LAUNCH", "")
    if chosen:
        return [(int(s), int(r)) for s, _, r in (c.partition("x") for c in chosen.split(","))]
    return [(s, r) for r in REPOSITORIES for s in SIZES]


def bench_launch(runs: int, workdir: Path) -> list[Row]:
    """`coditect streams launch` vs `tmuxp load -d` at 5 to 100 streams over 1 and 10 repositories."""
    import yaml

    # Both programs run from compiled bytecode, as installed programs do: none is written with
    # PYTHONDONTWRITEBYTECODE, and coditect's editable checkout would be compiled on every run.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    os.environ.setdefault("COLUMNS", "240")  # tmuxp sizes a detached session from the terminal (80x24)
    os.environ.setdefault("LINES", "80")
    runs = max(1, min(runs, 5))  # 100 windows take tmuxp about 10 s a run
    commands: dict[tuple[int, int], dict[str, Callable[[str, dict[str, str] | None], None]]] = {}
    built: dict[tuple[int, int], float] = {}
    for streams, repos in _cases():
        started = time.perf_counter()
        root = build_project(workdir / f"launch-{streams}x{repos}", repos, streams)
        built[(streams, repos)] = time.perf_counter() - started
        config = root.parent / "tmuxp.yaml"
        config.write_text(yaml.safe_dump(tmuxp_config(_spec(root)), sort_keys=False))

        def ours(socket: str, env: dict[str, str] | None, root: Path = root) -> None:
            _run([*_coditect(), "streams", "launch", "--no-attach", "--socket", socket], cwd=root, env=env)

        def tmuxp(socket: str, env: dict[str, str] | None, config: Path = config) -> None:
            _run([*_tmuxp(), "load", "-d", "-y", "-L", socket, str(config)], env=env)

        commands[(streams, repos)] = {"coditect": ours, "tmuxp": tmuxp}

    # The same launch served by a warm server (coditect_cli.warm), which a served command started first.
    from warmkit import WarmServer

    with WarmServer() as warm:
        warm.start([*_coditect(), "status", "--json"], root)  # any project will do: the last one built
        return _measure(runs, workdir, commands, built, warm)


def _measure(
    runs: int,
    workdir: Path,
    commands: dict[tuple[int, int], dict[str, Callable[[str, dict[str, str] | None], None]]],
    built: dict[tuple[int, int], float],
    warm: Any,
) -> list[Row]:
    # Another checkout's coditect (the code before a change), timed in the same rounds.
    before = os.environ.get("CODITECT_BENCH_BEFORE")
    envs: dict[str, dict[str, str] | None] = {"coditect": None, SERVED: warm.env, "tmuxp": None}
    if before:
        envs["coditect before"] = {"PYTHONPATH": before}
    floors = {"coditect": [*_coditect(), "--version"], "tmuxp": [*_tmuxp(), "--version"]}
    samples: dict[tuple[int, int, str], list[tuple[float, float]]] = {}
    for n in range(runs + 1):  # the first round warms up; the sizes and tools alternate
        for tool, argv in floors.items():
            started = time.perf_counter()
            _run(argv)
            if n:
                samples.setdefault((0, 0, tool), []).append((time.perf_counter() - started, 0.0))
        for (streams, repos), tools in commands.items():
            for name, env in envs.items():
                if name == SERVED:
                    warm.settle()
                    spent = warm.cpu()
                    wall, cpu = _timed(tools["coditect"], streams, env)
                    warm.settle()  # the worker's CPU time counts in the server's children's
                    timed = (wall, cpu + warm.cpu() - spent)
                else:
                    timed = _timed(tools[name.split()[0]], streams, env)
                if n:
                    samples.setdefault((streams, repos, name), []).append(timed)

    def median(key: tuple[int, int, str], i: int = 0) -> float:
        return statistics.median(sample[i] for sample in samples[key])

    rows: list[Row] = [
        {
            "benchmark": "launch",
            "case": f"start-up floor: `{tool} --version` (Python start-up and the command-line module)",
            "seconds": median((0, 0, tool)),
        }
        for tool in floors
    ]
    for (streams, repos), tools in commands.items():
        ours_n = _count(workdir, tools["coditect"], streams)
        served_n = _count(workdir, tools["coditect"], streams, warm.env)
        tmuxp_n = _count(workdir, tools["tmuxp"], streams)
        tmuxp_s, tmuxp_cpu = median((streams, repos, "tmuxp")), median((streams, repos, "tmuxp"), 1)
        common = {
            "benchmark": "launch",
            "streams": streams,
            "repositories": repos,
            "worktrees": streams * repos,
        }
        for name in envs:
            if name == "tmuxp":
                continue
            ours_s, ours_cpu = median((streams, repos, name)), median((streams, repos, name), 1)
            row: Row = {
                **common,
                "case": f"{streams} streams, {repos} repos: `{name} streams launch --no-attach`",
                "seconds": ours_s,
                "ratio_to_tmuxp": ours_s / tmuxp_s,
                "cpu_seconds": ours_cpu,
                "cpu_ratio_to_tmuxp": ours_cpu / tmuxp_cpu,
                "target": "<= tmuxp load -d",
                "meets_target": ours_s <= tmuxp_s,
            }
            if name in ("coditect", SERVED):
                counted = ours_n if name == "coditect" else served_n
                row.update(
                    tmux_processes=len(counted["tmux"]),
                    git_processes=len(counted["git"]),
                    git_per_repo=len(counted["git"]) / repos,
                    build_seconds=round(built[(streams, repos)], 1),
                )
            rows.append(row)
        rows.append(
            {
                **common,
                "case": f"{streams} streams, {repos} repos: `tmuxp load -d` (same panes)",
                "seconds": tmuxp_s,
                "cpu_seconds": tmuxp_cpu,
                "tmux_processes": len(tmuxp_n["tmux"]),
            }
        )
    return rows


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import standalone

    return standalone(bench_launch, runs=3, doc=__doc__)


if __name__ == "__main__":
    sys.exit(main())
