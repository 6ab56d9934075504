"""The warm server (coditect_cli.warm): served commands behave as in-process ones, faster.

Real processes throughout: `python -m coditect_cli` as a user runs it, the server it starts in the background
on a Unix socket under a private TMPDIR, git shims on PATH counting what the worker starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from coditect_cli import warm
from tests.helpers import alive, retry_until, run_cli, served, server_pid

ROOT = Path(__file__).resolve().parents[2]


def _without_volatile(text: str) -> object:
    """A JSON report without the figures that change between two runs a moment apart (idle times)."""

    def clean(value: object) -> object:
        if isinstance(value, dict):
            return {
                k: clean(v) for k, v in value.items() if k not in ("idle_seconds", "since", "age_seconds")
            }
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(json.loads(text))


def test_which_commands_are_served() -> None:
    assert warm.served(["status", "--json"])
    assert warm.served(["--root", "status", "streams", "status"])  # --root's value is not a command word
    assert warm.served(["--json", "streams", "status", "--socket", "x"])
    assert warm.served(["sync", "morning", "--day", "2"])
    assert warm.served(["streams", "launch", "--no-attach"])
    assert not warm.served(["streams", "attach"])
    assert not warm.served(["sync", "evening"])
    assert not warm.served(["status", "--help"])
    assert not warm.served(["--version"])
    assert not warm.served([])


def test_a_served_command_answers_as_in_process(shared_sandbox: Path, served_env: dict[str, str]) -> None:
    args = ["--root", str(shared_sandbox), "status", "--json", "--verbose"]
    alone = run_cli(args, env={**served_env, "CODITECT_SERVER": "0"})
    first = run_cli(args, env=served_env)  # no server yet: in-process, and one is started
    assert not served(alone) and not served(first)
    pid = server_pid(served_env)
    second = run_cli(args, env=served_env)
    assert served(second), second.stderr
    assert (alone.code, first.code, second.code) == (0, 0, 0)
    assert _without_volatile(second.stdout) == _without_volatile(alone.stdout)
    # Human output too: the same table at the width asked for.
    human = ["--root", str(shared_sandbox), "status"]
    assert (
        run_cli(human, env={**served_env, "CODITECT_SERVER": "0"}).stdout
        == run_cli(human, env=served_env).stdout
    )
    assert alive(pid)


def test_errors_and_exit_codes_come_back(tmp_path: Path, served_env: dict[str, str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    alone = run_cli(["status", "--verbose"], cwd=empty, env={**served_env, "CODITECT_SERVER": "0"})
    run_cli(["status"], cwd=empty, env=served_env)
    server_pid(served_env)
    answer = run_cli(["status", "--verbose"], cwd=empty, env=served_env)
    assert served(answer)
    assert alone.code == answer.code == 2
    assert answer.stderr.replace(answer.stderr.splitlines()[0] + "\n", "", 1) == alone.stderr
    assert "no manifest" in answer.stderr and "Traceback" not in answer.stderr


def test_the_worker_gets_the_callers_environment_and_the_server_keeps_none_of_it(
    shared_sandbox: Path, served_env: dict[str, str]
) -> None:
    canary = "ghp_" + "warmcanary" * 3
    env = {**served_env, "GH_TOKEN": canary, "COLUMNS": "61"}
    args = ["--root", str(shared_sandbox), "status", "--verbose"]
    run_cli(args, env=env)
    pid = server_pid(served_env)
    answer = run_cli(args, env=env)
    assert served(answer)
    # The caller's COLUMNS shaped the table the worker drew.
    assert max(len(line) for line in answer.stdout.splitlines()) <= 61
    for name in ("cmdline", "environ"):
        assert canary.encode() not in Path(f"/proc/{pid}/{name}").read_bytes()


def test_a_changed_source_retires_the_server(
    tmp_path: Path, shared_sandbox: Path, served_env: dict[str, str]
) -> None:
    copy = tmp_path / "code"
    shutil.copytree(
        ROOT / "coditect_cli", copy / "coditect_cli", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {**served_env, "PYTHONPATH": str(copy)}
    args = ["--root", str(shared_sandbox), "status", "--json", "--verbose"]
    run_cli(args, env=env)
    pid = server_pid(served_env)
    assert served(run_cli(args, env=env))
    with (copy / "coditect_cli" / "render" / "day.py").open("a") as source:
        source.write("\n# changed\n")
    after = run_cli(args, env=env)
    assert after.code == 0 and not served(after)  # refused by the stale server: run in-process
    retry_until(lambda: alive(pid), lambda alive: not alive)


def test_an_idle_server_leaves_and_removes_its_socket(
    shared_sandbox: Path, served_env: dict[str, str]
) -> None:
    env = {**served_env, "CODITECT_SERVER_IDLE": "1"}
    run_cli(["--root", str(shared_sandbox), "status", "--json"], env=env)
    pid = server_pid(env)
    folder = Path(env["TMPDIR"]) / f"coditect-{os.getuid()}"
    retry_until(lambda: alive(pid), lambda alive: not alive)
    assert list(folder.iterdir()) == []


def test_no_server_in_a_directory_others_can_write(shared_sandbox: Path, served_env: dict[str, str]) -> None:
    folder = Path(served_env["TMPDIR"]) / f"coditect-{os.getuid()}"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    for _ in range(2):
        done = run_cli(["--root", str(shared_sandbox), "status", "--json", "--verbose"], env=served_env)
        assert done.code == 0 and not served(done)
    time.sleep(0.5)  # a server started by mistake would have bound by now
    assert list(folder.iterdir()) == []


@contextlib.contextmanager
def _watching(sandbox: Path, served_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A served ``status --watch`` refreshing in the background, and its worker's pid (killed afterwards)."""
    env = {**os.environ, **served_env, "COLUMNS": "200"}
    argv = [sys.executable, "-m", "coditect_cli", "--root", str(sandbox), "status", "--verbose"]
    subprocess.run(argv, env=env, capture_output=True, check=False, timeout=120)
    server_pid(served_env)
    watch = subprocess.Popen(
        [*argv, "--watch", "--interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watch.stderr is not None
        line = watch.stderr.readline()
        assert "run by the warm server (worker pid" in line
        worker = int(line.rsplit("pid ", 1)[1].rstrip(")\n"))
        assert alive(worker)
        yield watch, worker
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()


def test_ctrl_c_reaches_the_worker(shared_sandbox: Path, served_env: dict[str, str]) -> None:
    with _watching(shared_sandbox, served_env) as (watch, worker):
        watch.send_signal(signal.SIGINT)
        # The worker stops as `status --watch` does on Ctrl-C: 0 between two refreshes, 130 (interrupted)
        # when the signal lands while a refresh is read; it would refresh for ever had it not arrived.
        assert watch.wait(timeout=60) in (0, 130)
        retry_until(lambda: alive(worker), lambda running: not running)


def test_a_worker_whose_caller_is_gone_stops(shared_sandbox: Path, served_env: dict[str, str]) -> None:
    with _watching(shared_sandbox, served_env) as (watch, worker):
        watch.kill()  # no chance to pass anything on
        watch.wait()
        # The worker sees its caller hang up and ends, rather than refreshing for ever for nobody.
        retry_until(lambda: alive(worker), lambda running: not running)
