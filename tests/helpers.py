"""Small helpers shared by the test modules (imported as ``helpers``; tests/ is on sys.path via conftest)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pytest

from coditect_cli.cli.app import main

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_MANIFEST = REPO_ROOT / "workstreams" / "phase-1.yaml"
EXAMPLE_TEXT = EXAMPLE_MANIFEST.read_text(encoding="utf-8")

T = TypeVar("T")


class CliResult(NamedTuple):
    """The outcome of one ``coditect`` run; unpacks as ``(code, stdout, stderr)``. In a subprocess, a
    negative ``code`` means the process was killed by that signal."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> dict[str, Any]:
        """stdout parsed: the ``--json`` envelope."""
        envelope: dict[str, Any] = json.loads(self.stdout)
        return envelope


# Variables a CLI subprocess must not inherit: GitHub tokens (no test may reach the real GitHub; a test
# using the fake server passes its token in ``env``) and NO_COLOR (tests see the default rendering).
_CLI_ENV_DROPPED = ("GH_TOKEN", "GITHUB_TOKEN", "NO_COLOR")


def run_cli(
    args: list[str],
    cwd: Path | None = None,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> CliResult:
    """Run ``python -m coditect_cli ARGS`` in a subprocess with the current (isolated) environment.

    The environment is ``os.environ`` without GitHub tokens and NO_COLOR, 200 columns wide (tables do not
    wrap), then ``env``. Use together with the ``isolated_git`` fixture, which points HOME at a temporary
    directory in ``os.environ`` before this copies it.
    """
    full_env = {k: v for k, v in os.environ.items() if k not in _CLI_ENV_DROPPED}
    full_env.update({"COLUMNS": "200", **(env or {})})
    proc = subprocess.run(
        [sys.executable, "-m", "coditect_cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def coditect(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
    """``coditect ARGS`` in a subprocess from ``cwd``: :func:`run_cli` with the arguments spelled inline."""
    return run_cli(list(args), cwd, env=env, timeout=timeout)


def call_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> CliResult:
    """Run ``main(args)`` in this process; return its exit code and what it printed."""
    capsys.readouterr()  # drop anything printed before
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    code = exc.value.code
    return CliResult(code if isinstance(code, int) else (0 if code is None else 1), out, err)


def line_of(text: str, needle: str, *, after: str | None = None, start: int = 0) -> int:
    """The 1-based line of the first ``needle`` in ``text`` at or after offset ``start`` (and after the
    first ``after`` there, when given)."""
    if after is not None:
        start = text.index(after, start)
    pos = text.index(needle, start)
    return text.count("\n", 0, pos) + 1


def alias_bomb() -> str:
    """A YAML "billion laughs": 9 levels, each listing 9 aliases of the one before (9^9 values, 342 bytes).

    The loader refuses it at level ``f`` (9^6 = 531,441 values pass its bound of 500,000).
    """
    names = "abcdefghi"
    lines = ["a: &a [" + ",".join(['"lol"'] * 9) + "]"]
    lines += [f"{n}: &{n} [" + ",".join([f"*{p}"] * 9) + "]" for p, n in itertools.pairwise(names)]
    return "\n".join(lines) + "\n"


def replace_once(text: str, old: str, new: str) -> str:
    """``text`` with the single occurrence of ``old`` replaced (fails loudly when not exactly one)."""
    count = text.count(old)
    assert count == 1, f"expected exactly one {old!r} in the manifest, found {count}"
    return text.replace(old, new)


def git_refs(repo: Path) -> str:
    """Every ref and its object id in ``repo`` (``git for-each-ref``), for before/after comparisons."""
    return subprocess.run(
        ["git", "-C", str(repo), "for-each-ref", "--format=%(objectname) %(refname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def session_of(root: Path, project: str, phase: str) -> str:
    """The tmux session coditect names for ``phase`` of the checkout at ``root`` (project ``project``)."""
    from coditect_cli.domain.launch import session_name

    return session_name(project, phase, str(root.resolve()))


def retry_until(fetch: Callable[[], T], ok: Callable[[T], bool], timeout: float = 15.0) -> T:
    """Poll ``fetch`` until ``ok`` holds (every 20 ms), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        time.sleep(0.02)


def scripted_run(*extra: str) -> str:
    """A manifest ``run:`` starting the scripted agent (``--serve``) in a stream's pane (placeholders unquoted)."""
    import shlex

    words = [sys.executable, "-m", "coditect_cli.agents.scripted", "{stream}", "{worktree}"]
    words += ["--prompt-file", "{prompt_file}", "--serve", *extra]
    return " ".join(shlex.quote(w) if not w.startswith("{") else w for w in words)


def kill_tmux_server(name: str) -> None:
    """Stop the private tmux server ``name`` (if it runs) and remove its socket file."""
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True, check=False)
    base = Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
    (base / name).unlink(missing_ok=True)


# ----------------------------------------------------------------- streams setup, guard and CODEOWNERS tests

PHASE1 = "phase-1"
PHASE1_INTEGRATION = "phase-1-integration"
PHASE1_REPOS = {  # repository id -> path in the superproject (workstreams/phase-1.yaml)
    "root": ".",
    "infra": "submodules/cloud/coditect-cloud-infra",
    "backend": "submodules/cloud/coditect-cloud-backend",
    "frontend": "submodules/cloud/coditect-cloud-frontend",
}
PHASE1_PAIRS = (  # (stream, repository, feature branch): the manifest's 9 stream/repository pairs
    ("infra", "infra", "feature/phase-1/infra/gcp-foundation"),
    ("backend", "backend", "feature/phase-1/backend/auth-service"),
    ("frontend", "frontend", "feature/phase-1/frontend/auth-ui"),
    ("deploy", "backend", "feature/phase-1/deploy/kubernetes-manifests"),
    ("deploy", "infra", "feature/phase-1/deploy/ci-cd"),
    ("docs", "root", "feature/phase-1/docs/deployment-guides"),
    ("docs", "backend", "feature/phase-1/docs/backend-api-docs"),
    ("docs", "frontend", "feature/phase-1/docs/frontend-user-guide"),
    ("docs", "infra", "feature/phase-1/docs/infra-architecture"),
)
GOLDEN_CODEOWNERS = REPO_ROOT / "codeowners"
WORKTREES_EXCLUDE = "/.coditect/worktrees/"


# Global git options that switch every hook off for one command: how a test (or a user going around the
# ownership guard on purpose) commits a violation; ``--no-verify`` alone no longer gets past the guard.
NO_HOOKS = ("-c", f"core.hooksPath={os.devnull}")


def git_in(repo: Path, *args: str, check: bool = True, strip: bool = True) -> str:
    """``git -C repo args...``'s stdout (stripped unless ``strip`` is False); asserts success when ``check``."""
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if check:
        assert done.returncode == 0, f"git -C {repo} {' '.join(args)} failed: {done.stderr}"
    return done.stdout.strip() if strip else done.stdout


def git_ok(repo: Path, *args: str) -> bool:
    """Whether ``git -C repo args...`` exits 0."""
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False).returncode == 0


def build_phase1_sandbox(target: Path) -> Path:
    """A fresh sandbox built from the shipped example manifest; returns the superproject's root."""
    from coditect_cli.sandbox import build_sandbox
    from coditect_cli.services.demo import example_manifest

    return build_sandbox(target, example_manifest()).root


def repo_dir(root: Path, repo: str) -> Path:
    """The checkout of repository ``repo`` (an id of ``PHASE1_REPOS``) in the sandbox at ``root``."""
    return root / PHASE1_REPOS[repo]


def stream_worktree(root: Path, stream: str, repo: str) -> Path:
    """Where setup puts ``stream``'s worktree of ``repo``."""
    return root / ".coditect" / "worktrees" / PHASE1 / stream / repo


def origin_of(repo: Path) -> Path | None:
    """The bare origin repository of ``repo`` (None when it has no origin remote)."""
    url = git_in(repo, "config", "--get", "remote.origin.url", check=False)
    return Path(url) if url else None


def refs_snapshot(root: Path) -> dict[str, str]:
    """``git for-each-ref`` of the four repositories and of their origins, keyed ``<repo>`` / ``origin:<repo>``."""
    out: dict[str, str] = {}
    for rid in PHASE1_REPOS:
        repo = repo_dir(root, rid)
        out[rid] = git_refs(repo)
        origin = origin_of(repo)
        if origin is not None and origin.is_dir():
            out[f"origin:{rid}"] = git_refs(origin)
    return out


def setup_with_cwd(root: Path, *, push: bool = True):  # -> SetupResult
    """Run ``services.setup.setup`` in-process, from the project root as a user would."""
    from coditect_cli.project import find_project
    from coditect_cli.services.setup import setup

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return setup(find_project(root), PHASE1, push=push)


def assert_streams_set_up(root: Path, *, pushed: bool = True) -> None:
    """Everything a complete ``streams setup phase-1`` leaves behind, checked with git.

    In every repository: ``phase-1-integration`` is develop plus one commit adding the golden
    ``.github/CODEOWNERS``; every feature branch contains it and is checked out in its worktree, whose own
    top level is the worktree and whose ownership guard is installed. The root excludes the worktrees and is
    clean. With ``pushed``, every branch is on origin with upstream tracking.
    """
    from coditect_cli.domain.guard import GUARD_SCRIPT, HOOK_MARKER

    for rid in PHASE1_REPOS:
        repo = repo_dir(root, rid)
        integration = git_in(repo, "rev-parse", PHASE1_INTEGRATION)
        develop = git_in(repo, "rev-parse", "develop")
        assert git_in(repo, "rev-parse", f"{PHASE1_INTEGRATION}^") == develop, rid
        assert git_in(repo, "diff", "--name-only", "develop", PHASE1_INTEGRATION) == ".github/CODEOWNERS", rid
        committed = git_in(repo, "show", f"{PHASE1_INTEGRATION}:.github/CODEOWNERS", strip=False)
        golden = (GOLDEN_CODEOWNERS / rid / "CODEOWNERS").read_text(encoding="utf-8")
        assert committed == golden, f"{rid}: CODEOWNERS on {PHASE1_INTEGRATION} differs from codeowners/{rid}"
        pairs = [(s, b) for s, r, b in PHASE1_PAIRS if r == rid]
        listed = git_in(repo, "worktree", "list", "--porcelain")
        assert listed.count("worktree ") == 1 + len(pairs), f"{rid}: {listed}"
        for stream, branch in pairs:
            assert git_ok(repo, "merge-base", "--is-ancestor", integration, branch), f"{rid}: {branch}"
            worktree = stream_worktree(root, stream, rid)
            assert git_in(worktree, "symbolic-ref", "--short", "HEAD") == branch
            assert git_in(worktree, "rev-parse", "--show-toplevel") == str(worktree)
            assert git_in(worktree, "status", "--porcelain") == "", worktree
            hooks = git_in(worktree, "config", "--worktree", "--get", "core.hooksPath")
            for name in ("pre-commit", "reference-transaction", "commit-msg", "pre-push", GUARD_SCRIPT):
                hook = Path(hooks) / name
                assert hook.is_file() and os.access(hook, os.X_OK), hook
                assert HOOK_MARKER in hook.read_text(encoding="utf-8"), hook
            text = (Path(hooks) / GUARD_SCRIPT).read_text(encoding="utf-8")
            assert f'STREAM = "{stream}"' in text and f'REPO = "{rid}"' in text
        if pushed:
            origin = origin_of(repo)
            assert origin is not None
            for branch in [PHASE1_INTEGRATION, *(b for _s, b in pairs)]:
                local = git_in(repo, "rev-parse", branch)
                assert git_in(origin, "rev-parse", f"refs/heads/{branch}") == local, f"{rid}: {branch}"
                upstream = git_in(repo, "rev-parse", "--abbrev-ref", f"{branch}@{{upstream}}")
                assert upstream == f"origin/{branch}", f"{rid}: {branch}"
    exclude = Path(git_in(root, "rev-parse", "--git-common-dir"))
    exclude = (exclude if exclude.is_absolute() else root / exclude) / "info" / "exclude"
    assert WORKTREES_EXCLUDE in exclude.read_text(encoding="utf-8").splitlines()
    assert git_in(root, "status", "--porcelain") == ""


def command_lines() -> dict[int, bytes]:
    """Every process's command line that this user can read (what `ps` shows)."""
    out: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = (entry / "cmdline").read_bytes()
            except OSError:
                continue
    return out


class Sampler:
    """Every process's command line, read again and again (in a thread) while something runs: what any `ps`
    during that time could have shown. ``hits`` collects the lines holding ``needle``."""

    def __init__(self, needle: bytes) -> None:
        self.needle = needle
        self.hits: dict[int, bytes] = {}
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.hits.update({pid: line for pid, line in command_lines().items() if self.needle in line})
            self.rounds += 1

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        retry_until(lambda: self.rounds, lambda n: n >= 2)  # at least one whole pass during the run
        self._stop.set()
        self._thread.join()


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (exists and is not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def server_pid(env: dict[str, str]) -> int:
    """The pid of the warm server (coditect_cli.warm) answering in ``env``'s TMPDIR, once it listens."""
    folder = Path(env["TMPDIR"]) / f"coditect-{os.getuid()}"
    pid_file = retry_until(lambda: next(folder.glob("warm-*.sock.pid"), None), lambda p: p is not None)
    assert pid_file is not None
    return int(pid_file.read_text())


def served(result: CliResult) -> bool:
    """Whether a ``--verbose`` run was answered by a warm server's worker (it says so first)."""
    return "run by the warm server" in result.stderr


def processes_mentioning(text: str) -> list[int]:
    """Pids of the processes whose command line contains ``text`` (a warm server and its workers, forked
    from it, share its command line)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


def project_with(tmp: Path, runs: dict[str, str]) -> Path:
    """A sandbox whose manifest has one stream per ``runs`` entry (id -> run), all in the superproject."""
    from coditect_cli.sandbox import build_sandbox

    streams = []
    for i, (sid, run) in enumerate(runs.items(), 1):
        streams.append(
            f"  - {{id: {sid}, terminal: {i}, name: {sid}, agent: dev, run: {json.dumps(run)},\n"
            f"     work: [{{repo: root, topic: {sid}, owns: [lanes/{sid}/]}}]}}"
        )
    text = (
        "version: 1\nphase: p1\nproject: cli-demo\nschedule: {start: 2026-12-01, days: 5}\n"
        "repositories:\n  - {id: root, path: .}\nstreams:\n" + "\n".join(streams) + "\n"
    )
    source = tmp / "src" / "p1.yaml"
    source.parent.mkdir()
    source.write_text(text)
    return build_sandbox(tmp / "sandbox", source).root
