"""Helpers of the gating tests: a tiny one-repository project (fast to build, any number of streams) and a
snapshot that restores a tree in place. The tests run ``coditect`` with ``helpers.coditect``, in a
subprocess (the kill tests need a process to SIGKILL). Imported as ``gating_helpers`` (tests/gating is on
sys.path)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GATE_PY = textwrap.dedent("""\
    import os, pathlib, sys
    counter = os.environ.get("GATE_COUNTER")
    if counter:
        with open(counter, "a") as fh:
            fh.write(os.environ.get("CODITECT_COMMIT", "?") + " " + " ".join(sys.argv[1:]) + "\\n")
    once = os.environ.get("GATE_KILL_ONCE")  # SIGKILL the coditect process running this gate, once
    if once and not os.path.exists(once):
        open(once, "w").write("killed")
        pid = os.getppid()
        while pid > 1:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"-m\\0coditect_cli" in fh.read():  # python -m coditect_cli (helpers.run_cli)
                    os.kill(pid, 9)
                    break
            with open(f"/proc/{pid}/stat") as fh:
                pid = int(fh.read().rpartition(")")[2].split()[1])
    hang = os.environ.get("GATE_HANG")  # write this process's pid there, then run (almost) forever
    if hang:
        pathlib.Path(hang).write_text(str(os.getpid()))
        import time
        time.sleep(600)
    bad = sorted(str(p) for p in pathlib.Path(".").glob("s*/**/*") if p.is_file() and "FAIL_GATE" in p.read_text())
    if bad:
        print("FAIL_GATE in", ", ".join(bad), file=sys.stderr)
        sys.exit(1)
    texts = [p.read_text() for p in pathlib.Path(".").glob("s*/**/*") if p.is_file()]
    command = (sys.argv[1:] or ["gate"])[0]
    if any(f"FAIL_ON {command}" in t for t in texts):  # fails this one command only
        print(f"FAIL_ON {command}", file=sys.stderr)
        sys.exit(1)
    flaky = os.environ.get("GATE_FLAKY")  # a file: `gate.py flaky` fails while it is missing (and makes it)
    if flaky and command == "flaky" and not os.path.exists(flaky):
        open(flaky, "w").write("failed once")
        print("a flaky failure", file=sys.stderr)
        sys.exit(1)
    if any("PAIR_A" in t for t in texts) and any("PAIR_B" in t for t in texts):  # fail only together
        print("PAIR_A and PAIR_B together", file=sys.stderr)
        sys.exit(1)
    print("gate ok")
    """)

IDENTITY = {
    "GIT_AUTHOR_NAME": "Tiny",
    "GIT_AUTHOR_EMAIL": "tiny@example.invalid",
    "GIT_COMMITTER_NAME": "Tiny",
    "GIT_COMMITTER_EMAIL": "tiny@example.invalid",
}


def git(repo: Path, *args: str, input: str | None = None) -> str:
    """``git -C repo args``'s stdout, stripped (asserts success)."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, input=input, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def manifest_text(n: int, *, shared: bool = False, suite: bool = True) -> str:
    """A phase-1 manifest with ``n`` streams s1..sn in one repository, each owning ``sK/``."""
    streams = "".join(
        f"""
  - id: s{k}
    terminal: {k}
    name: Stream {k}
    agent: agent{k}
    run: shell
    work: [{{repo: app, topic: t{k}, owns: [s{k}/]}}]
    gates: [{{name: gate, run: "python3 gate.py"}}]
"""
        for k in range(1, n + 1)
    )
    names = ", ".join(f"s{k}" for k in range(1, n + 1))
    shared_block = "shared:\n  - {repo: app, paths: [shared.txt], streams: [s1, s2]}\n" if shared else ""
    suite_block = '  suite: [{name: suite, repo: app, run: "python3 gate.py suite"}]\n' if suite else ""
    return (
        "version: 1\nphase: phase-1\ntitle: Tiny\nforge: local\n"
        "pass_env: [GATE_COUNTER, GATE_KILL_ONCE, GATE_HANG, GATE_FLAKY]\n"  # gate.py's switches: gates get no other variable
        "schedule: {start: 2026-12-01, days: 10}\n"
        "repositories:\n  - {id: app, path: .}\n"
        f"{shared_block}streams:{streams}"
        f"checkpoints:\n  - {{id: 1, day: 3, title: All streams, streams: [{names}]}}\n"
        f"  - {{id: 2, day: 6, title: Again, streams: [{names}]}}\n"
        f"merge:\n  target: develop\n  strategy: squash\n  tag: v0.1.0\n{suite_block}"
    )


@dataclass
class Tiny:
    """A tiny project: ``root`` (the only repository, also the project), its bare ``origin``."""

    root: Path
    origin: Path
    n: int
    counter: Path

    def worktree(self, k: int) -> Path:
        return self.root / ".coditect" / "worktrees" / "phase-1" / f"s{k}" / "app"

    def commit(self, k: int, path: str, text: str, message: str = "work") -> str:
        """Append to ``path`` in stream k's worktree and commit (the ownership guard runs)."""
        from coditect_cli.services.demo import _commit

        ok, out = _commit(self.worktree(k), path, text, message)
        assert ok, out
        return git(self.worktree(k), "rev-parse", "HEAD")

    def gate_runs(self) -> list[str]:
        """One line per gate command run since the counter was last reset."""
        return self.counter.read_text().splitlines() if self.counter.exists() else []

    def command_runs(self) -> list[list[str]]:
        """The gate commands run, one list per gate run (consecutive lines on one commit), by argument
        (``gate`` for ``python3 gate.py``)."""
        groups: list[tuple[str, list[str]]] = []
        for line in self.gate_runs():
            commit, _sp, args = line.partition(" ")
            if not groups or groups[-1][0] != commit:
                groups.append((commit, []))
            groups[-1][1].append(args.split()[0] if args.split() else "gate")
        return [names for _commit, names in groups]

    def set_checkpoint_gates(self, gates: str) -> None:
        """Give checkpoint 1 these gates (a YAML flow list); they run before the streams' ``gate``."""
        path = self.root / "workstreams" / "phase-1.yaml"
        text = path.read_text(encoding="utf-8")
        old = "{id: 1, day: 3, title: All streams,"
        assert text.count(old) == 1
        path.write_text(text.replace(old, f"{{id: 1, day: 3, title: All streams, gates: {gates},"))

    def refs(self) -> dict[str, str]:
        """Every ref of the repository and of origin (``origin:`` prefixed)."""
        out: dict[str, str] = {}
        for prefix, repo in (("", self.root), ("origin:", self.origin)):
            for line in git(repo, "for-each-ref", "--format=%(objectname) %(refname)").splitlines():
                sha, name = line.split(" ", 1)
                out[prefix + name] = sha
        return out


def build_tiny(base: Path, n: int, *, shared: bool = False, open_prs: bool = True) -> Tiny:
    """The tiny project under ``base``, set up, every stream with one commit, its PR open and approved."""
    from coditect_cli.project import Project
    from coditect_cli.services import prs, reviews
    from coditect_cli.services.setup import setup

    origin, root = base / "origin.git", base / "proj"
    git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    git(base, "init", "-q", "-b", "main", str(root))
    for key, value in (("user.name", "Tiny"), ("user.email", "tiny@example.invalid")):
        git(root, "config", key, value)
    files = {
        ".gitignore": ".coditect/\n__pycache__/\n",
        "README.md": "# tiny\n",
        "gate.py": GATE_PY,
        "shared.txt": "version: 1\n",
        "workstreams/phase-1.yaml": manifest_text(n, shared=shared),
        **{f"s{k}/README.md": f"stream {k}\n" for k in range(1, n + 1)},
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    git(root, "branch", "develop")
    git(root, "checkout", "-q", "develop")
    git(root, "remote", "add", "origin", str(origin))
    git(root, "push", "-q", "-u", "origin", "main", "develop")
    tiny = Tiny(root, origin, n, base / "gate-runs.txt")
    project = Project(root)
    setup(project, "phase-1")
    for k in range(1, n + 1):
        tiny.commit(k, f"s{k}/work.txt", f"work of stream {k}\n", f"feat(s{k}): work")
    if open_prs:
        prs.open_all(project, "phase-1")
        for k in range(1, n + 1):
            reviews.review(project, "phase-1", f"s{k}", owner=f"@agent{k}", state="approved")
    return tiny


def move_to_github(tiny: Tiny, fake: Any, slug: str) -> Any:
    """Put ``tiny``'s origin on the fake GitHub ``fake`` as ``slug`` (git still reaches the bare origin through
    ``url.<bare>.insteadOf``) and switch its manifest to ``forge: github``; returns the fake's repository."""
    repo = fake.add_repo(slug, git_dir=tiny.origin)
    url = f"{fake.root_url}/{slug}.git"
    git(tiny.root, "config", "remote.origin.url", url)
    git(tiny.root, "config", f"url.{tiny.origin}.insteadOf", url)
    manifest = tiny.root / "workstreams" / "phase-1.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("forge: local", f"forge: github\nforge_url: {fake.base_url}"))
    return repo


class Snapshot:
    """A copy of a directory tree restored *at the same path* (absolute paths in git config stay valid)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.copy = base.with_name(base.name + ".pristine")
        shutil.copytree(base, self.copy, symlinks=True)

    def restore(self) -> None:
        shutil.rmtree(self.base)
        shutil.copytree(self.copy, self.base, symlinks=True)


MakeTiny = Callable[..., tuple[Tiny, Snapshot]]
"""The type of the ``make_tiny`` fixture (conftest.py): ``make_tiny(n, ...) -> (tiny, snapshot)``."""


SUPER_MANIFEST = """\
version: 1
phase: phase-1
title: Super
forge: local
schedule: {start: 2026-12-01, days: 10}
repositories:
  - {id: root, path: .}
  - {id: lib, path: sub}
streams:
  - id: s1
    terminal: 1
    name: Library
    agent: agent1
    run: shell
    work: [{repo: lib, topic: t1, owns: [lib/]}]
  - id: s2
    terminal: 2
    name: App
    agent: agent2
    run: shell
    work: [{repo: root, topic: t2, owns: [app/]}]
checkpoints:
  - id: 1
    day: 3
    title: Both
    streams: [s1, s2]
    gates: [{name: combo, repo: root, run: "python3 check.py"}]
merge:
  target: develop
  strategy: squash
  tag: v0.1.0
  suite: [{name: suite, repo: root, run: "python3 check.py suite"}]
"""

# The superproject's check reads a file of its submodule: it passes only with the submodule checked out at a
# commit whose lib/version.txt says NEW (and not BROKEN).
SUPER_CHECK = """\
import pathlib, sys
text = pathlib.Path("sub/lib/version.txt").read_text() if pathlib.Path("sub/lib/version.txt").exists() else ""
if "NEW" not in text or "BROKEN" in text:
    sys.exit(f"sub/lib/version.txt is {text!r}: not the staged library")
print("combination ok")
"""


@dataclass
class Super:
    """A superproject ``root`` with one submodule ``sub`` (repository ``lib``), their bare origins."""

    root: Path
    origin: Path
    sub_origin: Path

    @property
    def sub(self) -> Path:
        return self.root / "sub"


def build_super(base: Path, library_change: str = "NEW\n") -> Super:
    """A set-up superproject with a submodule: s1 changes the library (``library_change`` appended to
    ``lib/version.txt``), s2 the app; both PRs open and approved."""
    from coditect_cli.project import Project
    from coditect_cli.services import prs, reviews
    from coditect_cli.services.demo import _commit
    from coditect_cli.services.setup import setup

    allow = ("-c", "protocol.file.allow=always")
    sub_origin, origin, staging, root = base / "lib.git", base / "super.git", base / "lib", base / "super"
    for bare in (sub_origin, origin):
        git(base, "init", "-q", "--bare", "-b", "main", str(bare))
    git(base, "init", "-q", "-b", "main", str(staging))
    (staging / "lib").mkdir()
    (staging / "lib" / "version.txt").write_text("v1\n")
    (staging / "README.md").write_text("# lib\n")
    git(staging, "add", "-A")
    git(staging, "-c", "user.name=T", "-c", "user.email=t@e.invalid", "commit", "-q", "-m", "initial lib")
    git(staging, "branch", "develop")
    git(staging, "push", "-q", str(sub_origin), "main", "develop")
    git(base, "init", "-q", "-b", "main", str(root))
    for key, value in (("user.name", "Super"), ("user.email", "super@example.invalid")):
        git(root, "config", key, value)
    files = {
        ".gitignore": ".coditect/\n__pycache__/\n",
        "README.md": "# super\n",
        "check.py": SUPER_CHECK,
        "app/README.md": "app\n",
        "workstreams/phase-1.yaml": SUPER_MANIFEST,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    git(root, *allow, "submodule", "add", "-q", "-b", "develop", str(sub_origin), "sub")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial super")
    git(root, "branch", "develop")
    git(root, "checkout", "-q", "develop")
    git(root, "remote", "add", "origin", str(origin))
    git(root, "push", "-q", "-u", "origin", "main", "develop")
    sub = root / "sub"
    git(sub, "checkout", "-q", "develop")
    for key, value in (("user.name", "Super"), ("user.email", "super@example.invalid")):
        git(sub, "config", key, value)
    project = Project(root)
    setup(project, "phase-1")
    worktrees = root / ".coditect" / "worktrees" / "phase-1"
    for where, path, text in (
        (worktrees / "s1" / "lib", "lib/version.txt", library_change),
        (worktrees / "s2" / "root", "app/feature.txt", "feature\n"),
    ):
        ok, out = _commit(where, path, text, f"feat: {path}")
        assert ok, out
    prs.open_all(project, "phase-1")
    for k in (1, 2):
        reviews.review(project, "phase-1", f"s{k}", owner=f"@agent{k}", state="approved")
    return Super(root, origin, sub_origin)
