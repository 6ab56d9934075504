#!/usr/bin/env python3
"""Benchmark of the GitHub forge against the fake GitHub server (tests/fakegithub), over real HTTP.

    python3 scripts/bench_forge.py              # 15 runs, medians
    python3 scripts/bench_forge.py --runs 5 --json

One coditect project with one repository and N streams (N = 5 and 50), each stream's feature branch one commit
ahead of the integration branch, its origin URL on the fake (pushes go to a bare repository on disk).

* ``pr list`` requests over N streams, counted at the server (target: at most N + 3), next to what the obvious
  REST approach costs (the list, then a PR, a reviews and a combined-status call per PR: 3N + 1).
* The time to open 5 PRs (``open_all`` on the 5-stream project: manifest, git, one list, five creates; target
  0.5 s), and the forge alone (five ``open_pr`` calls). PyGithub's defaults would sleep 1 s between writes.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from coditect_cli.adapters import proc  # noqa: E402

Row = dict[str, object]

PHASE = "bench"
INTEGRATION = f"{PHASE}-integration"
SLUG = "acme/app"
TARGET_OPEN_SECONDS = 0.5


def _git(repo: Path, *args: str) -> str:
    return proc.run(["git", "-C", str(repo), *args]).stdout.strip()


def build_project(root: Path, streams: int, fake: Any, bare: Path) -> Path:
    """A one-repository project with ``streams`` streams, pushed to ``bare``, its origin URL on ``fake``."""
    root.mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.name", "Bench")
    _git(root, "config", "user.email", "bench@example.invalid")
    entries = "".join(
        f"  - id: s{i:02d}\n    terminal: {i}\n    name: Stream {i}\n    agent: agent-{i}\n"
        f"    work:\n      - {{repo: app, topic: work, owns: [s{i:02d}/]}}\n"
        f"    deliverables:\n      - {{id: s{i:02d}-d1, days: 1-2, title: First deliverable of stream {i}}}\n"
        for i in range(1, streams + 1)
    )
    manifest = (
        f"version: 1\nphase: {PHASE}\nforge: github\nforge_url: {fake.base_url}\n"
        f"schedule: {{start: 2027-01-04, days: 10}}\nrepositories:\n  - {{id: app, path: .}}\nstreams:\n{entries}"
    )
    files = {
        f"workstreams/{PHASE}.yaml": manifest,
        **{f"s{i:02d}/README.md": f"# Stream {i}\n" for i in range(1, streams + 1)},
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "initial")
    _git(root, "branch", "develop")
    _git(root, "branch", INTEGRATION)
    for i in range(1, streams + 1):
        branch = f"feature/{PHASE}/s{i:02d}/work"
        _git(root, "checkout", "-q", "-b", branch, INTEGRATION)
        (root / f"s{i:02d}" / "work.txt").write_text(f"work of stream {i}\n", encoding="utf-8")
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", f"feat(s{i:02d}): work")
    _git(root, "checkout", "-q", "develop")
    proc.run(["git", "init", "-q", "--bare", str(bare)])
    _git(root, "remote", "add", "origin", f"{fake.root_url}/{SLUG}.git")
    _git(root, "config", "remote.origin.pushurl", str(bare))
    _git(root, "push", "-q", "origin", "--all")
    _git(root, "fetch", "-q", str(bare), "+refs/heads/*:refs/remotes/origin/*")
    return root


def _naive_rest_requests(fake: Any) -> int:
    """What listing costs with plain PyGithub: the list, then get_pull (mergeable), reviews, combined status."""
    from github import Auth, Github

    gh = Github(
        auth=Auth.Token(fake.token),
        base_url=fake.base_url,
        per_page=100,
        retry=None,
        lazy=True,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )
    fake.reset_log()
    repo = gh.get_repo(SLUG)
    for pr in repo.get_pulls(state="all", base=INTEGRATION):
        full = repo.get_pull(pr.number)
        _ = full.mergeable
        list(full.get_reviews())
        repo.get_commit(pr.head.sha).get_combined_status()
    gh.close()
    return int(fake.count())


def _median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else 0.0


def bench_forge(runs: int, workdir: Path) -> list[Row]:
    """The forge benchmark rows (see the module docstring)."""
    from fakegithub import FakeGitHub

    from coditect_cli.forge.base import ForgeRepo, ProposalSpec
    from coditect_cli.forge.github import GitHubForge, GitHubOptions
    from coditect_cli.forge.select import Secret
    from coditect_cli.project import Project
    from coditect_cli.services import prs

    rows: list[Row] = []
    with FakeGitHub() as fake:
        env = {"GH_TOKEN": fake.token, "PATH": os.environ.get("PATH", "")}
        for streams in (5, 50):
            bare = workdir / f"origin-{streams}.git"
            fake.repos.pop(SLUG, None)
            project_root = build_project(workdir / f"project-{streams}", streams, fake, bare)
            fake_repo = fake.add_repo(SLUG, git_dir=bare)
            project = Project(project_root)
            cwd = os.getcwd()
            os.chdir(project_root)
            try:
                open_samples: list[float] = []
                for _ in range(max(1, runs) if streams == 5 else 1):
                    fake_repo.pulls.clear()
                    fake_repo.next_number = 1
                    started = time.perf_counter()
                    opened = prs.open_all(project, PHASE, env=env)
                    open_samples.append(time.perf_counter() - started)
                    assert len(opened) == streams and all(o.created for o in opened), opened
                if streams == 5:
                    rows.append(
                        {
                            "benchmark": "forge",
                            "case": "open 5 PRs (open_all: manifest, git, 1 list + 5 creates)",
                            "seconds": _median(open_samples),
                            "first_run_seconds": open_samples[0],
                            "target": f"<= {TARGET_OPEN_SECONDS} s",
                            "ok": _median(open_samples) <= TARGET_OPEN_SECONDS,
                        }
                    )
                    forge_samples: list[float] = []
                    repo = ForgeRepo("app", project_root, None, SLUG)
                    for _ in range(max(1, runs)):
                        fake_repo.pulls.clear()
                        fake_repo.next_number = 1
                        forge = GitHubForge(fake.base_url, Secret(fake.token), GitHubOptions())
                        started = time.perf_counter()
                        for i in range(1, 6):
                            branch = f"feature/{PHASE}/s{i:02d}/work"
                            forge.open_pr(repo, ProposalSpec(INTEGRATION, branch, f"s{i:02d}", ""))
                        forge_samples.append(time.perf_counter() - started)
                        forge.close()
                    rows.append(
                        {
                            "benchmark": "forge",
                            "case": "open 5 PRs (GitHubForge.open_pr only: 1 list + 5 creates)",
                            "seconds": _median(forge_samples),
                            "pygithub_default_sleeps_seconds": 4.0,
                        }
                    )
                    fake_repo.pulls.clear()
                    fake_repo.next_number = 1
                    prs.open_all(project, PHASE, env=env)
                list_samples: list[float] = []
                counts: list[int] = []
                for _ in range(max(1, runs)):
                    fake.reset_log()
                    started = time.perf_counter()
                    listing = prs.list_prs(project, PHASE, env=env)
                    list_samples.append(time.perf_counter() - started)
                    counts.append(fake.count())
                    assert len(listing.rows) == streams
                naive = _naive_rest_requests(fake)
            finally:
                os.chdir(cwd)
            requests = max(counts)
            rows.append(
                {
                    "benchmark": "forge",
                    "case": f"pr list over {streams} streams: requests at the server",
                    "seconds": _median(list_samples),
                    "requests": requests,
                    "target_requests": streams + 3,
                    "ok": requests <= streams + 3,
                    "naive_rest_requests": naive,
                }
            )
    return rows


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import standalone

    return standalone(bench_forge, runs=15, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
