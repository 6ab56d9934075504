#!/usr/bin/env python3
"""Benchmark of the GitHub forge against the fake GitHub server (tests/fakegithub), over real HTTP.

    python3 scripts/bench_forge.py              # 15 runs, medians
    python3 scripts/bench_forge.py --runs 5 --json

One coditect project with one repository and N streams (N = 5 and 50), each stream's feature branch one commit
ahead of the integration branch, its origin URL on the fake (pushes go to a bare repository on disk).

The integration branch is protected (a required check, one approving review) so every figure includes the
reads of its protection and rulesets.

* ``pr list`` requests over N streams, counted at the server (target: at most N + 5), next to what the obvious
  REST approach costs (the list, then a PR, a reviews and a combined-status call per PR: 3N + 1); first with an
  empty conditional-request cache, then again on the unchanged repository (how many answers were 304).
* A checkpoint over N streams (the gating tests' tiny project, every PR approved and its required check green):
  requests at the server, from collecting the PRs to the last merge (target: at most N + 5).
* The time to open 5 PRs (``open_all`` on the 5-stream project: manifest, git, one list, five creates; target
  0.5 s) with write pacing off (``CODITECT_GITHUB_WRITE_INTERVAL=0``), and the forge alone (five ``open_pr``
  calls). GitHub's guidance — and coditect's default — puts 1 s between content-creating writes: 4 s more.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "gating"))

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
        env = {
            "GH_TOKEN": fake.token,
            "PATH": os.environ.get("PATH", ""),
            "CODITECT_GITHUB_WRITE_INTERVAL": "0",
        }
        for streams in (5, 50):
            bare = workdir / f"origin-{streams}.git"
            fake.repos.pop(SLUG, None)
            project_root = build_project(workdir / f"project-{streams}", streams, fake, bare)
            fake_repo = fake.add_repo(SLUG, git_dir=bare)
            fake.protect(SLUG, INTEGRATION, checks=("ci/build",), approvals=1)
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
                        forge = GitHubForge(
                            fake.base_url, Secret(fake.token), GitHubOptions(write_interval=0)
                        )
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
                unchanged: list[int] = []
                gets: list[int] = []
                cache = project_root / ".git" / "coditect" / "github-cache"
                for run in range(max(2, runs)):
                    if run == 0:
                        shutil.rmtree(cache, ignore_errors=True)
                    fake.reset_log()
                    started = time.perf_counter()
                    listing = prs.list_prs(project, PHASE, env=env)
                    list_samples.append(time.perf_counter() - started)
                    counts.append(fake.count())
                    unchanged.append(sum(1 for r in fake.requests if r.status == 304))
                    gets.append(fake.count("GET"))
                    assert len(listing.rows) == streams
                naive = _naive_rest_requests(fake)
            finally:
                os.chdir(cwd)
            rows.append(
                {
                    "benchmark": "forge",
                    "case": f"pr list over {streams} streams (protection read): requests at the server",
                    "seconds": _median(list_samples),
                    "requests": counts[0],
                    "target_requests": streams + 5,
                    "ok": max(counts) <= streams + 5,
                    "naive_rest_requests": naive,
                    "unchanged_repo_requests": counts[-1],
                    "answered_304": unchanged[-1],
                    "rest_gets": gets[-1],
                }
            )
        for streams in (5, 50):
            rows.append(_checkpoint_row(fake, workdir / f"checkpoint-{streams}", streams, env))
    return rows


def _checkpoint_row(fake: Any, base: Path, streams: int, env: dict[str, str]) -> Row:
    """Requests one checkpoint over ``streams`` ready PRs costs on GitHub (the merges are real, on the bare
    origin, so the tested tree is checked against the merged one)."""
    from gating_helpers import build_tiny, move_to_github

    from coditect_cli.project import Project
    from coditect_cli.services import prs
    from coditect_cli.services.checkpoint import run_checkpoint

    base.mkdir(parents=True)
    tiny = build_tiny(base, streams, open_prs=False)
    slug = f"acme/tiny{streams}"
    fake.real_merges = True
    repo = move_to_github(tiny, fake, slug)
    fake.protect(slug, "phase-1-integration", checks=("ci/build",), approvals=1)
    project = Project(tiny.root)
    cwd = os.getcwd()
    os.chdir(tiny.root)
    try:
        opened = prs.open_all(project, "phase-1", env=env)
        assert len(opened) == streams, opened
        for pull in fake.pulls(slug):
            stream = pull["head"].split("/")[2]
            fake.add_review(slug, pull["number"], f"agent{stream[1:]}", "APPROVED")
            fake.add_check_run(slug, repo.sha_of(pull["head"]) or "", "ci/build", "completed", "success")
        fake.reset_log()
        started = time.perf_counter()
        result = run_checkpoint(project, "phase-1", 1, env=env)
        seconds = time.perf_counter() - started
    finally:
        os.chdir(cwd)
    assert result.status == "passed" and not result.left_out and not result.not_ready, result
    requests = fake.count()
    return {
        "benchmark": "forge",
        "case": f"checkpoint over {streams} streams on GitHub (protection read, {streams} merges)",
        "seconds": seconds,
        "requests": requests,
        "merges": fake.count("PUT", r"/repos/.*/merge"),
        "target_requests": streams + 5,
        "ok": requests <= streams + 5,
    }


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import standalone

    return standalone(bench_forge, runs=15, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
