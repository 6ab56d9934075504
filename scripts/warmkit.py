"""A warm server (coditect_cli.warm) for the benchmarks: its own short TMPDIR, its environment, its CPU time.

    with WarmServer() as warm:
        warm.start(argv, cwd)            # the first run starts the server; then it answers
        before = warm.cpu()
        ... run argv with warm.env ...
        warm.settle(); spent = warm.cpu() - before

The CPU time of a served run is split: the caller (a Python start-up and a socket) and the server's worker,
a child of the server (waited for by it, so counted in the server's children's time): :meth:`cpu` reads the
server's own and its children's time from /proc.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


class WarmServer:
    def __init__(self) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix="cb-", dir="/tmp"))  # short: socket paths are
        self.env = {
            **os.environ,
            "CODITECT_SERVER": "1",
            "TMPDIR": str(self.tmpdir),
            "CODITECT_SERVER_IDLE": "600",
        }
        self.off = {**os.environ, "CODITECT_SERVER": "0"}
        self.pid: int | None = None

    def __enter__(self) -> WarmServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, argv: list[str], cwd: Path) -> int:
        """Run ``argv`` until a server answers it (and once more, so its memos are warm); the server's pid."""
        folder = self.tmpdir / f"coditect-{os.getuid()}"
        deadline = time.monotonic() + 60
        while True:
            done = subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True, text=True, check=False)
            pid_file = next(folder.glob("warm-*.sock.pid"), None) if folder.is_dir() else None
            if pid_file is not None:
                self.pid = int(pid_file.read_text())
                break
            if time.monotonic() > deadline:
                found = sorted(p.name for p in self.tmpdir.rglob("*"))
                raise SystemExit(f"the warm server did not start ({found}; last run: {done.stderr[-2000:]})")
            time.sleep(0.1)
        for _ in range(2):
            subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True, check=False)
        self.settle()
        return self.pid

    def cpu(self) -> float:
        """The server's CPU seconds so far: its own and its waited-for workers'."""
        assert self.pid is not None
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        return ticks / os.sysconf("SC_CLK_TCK")

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the server has no worker left (each one's time then counts in :meth:`cpu`)."""
        assert self.pid is not None
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        deadline = time.monotonic() + timeout
        while children.read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop the server and any worker of it; remove its directory."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if str(self.tmpdir).encode() in (entry / "cmdline").read_bytes():
                    os.kill(int(entry.name), signal.SIGTERM)
            except OSError:
                continue
        shutil.rmtree(self.tmpdir, ignore_errors=True)
