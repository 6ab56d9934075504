#!/usr/bin/env python3
"""Benchmark of the autopilot's event path: what a pass costs on GitHub when nothing changed, and how long an
event takes to reach the agent in its pane.

    python3 scripts/bench_reactions.py               # 5 events per case
    python3 scripts/bench_reactions.py --runs 3 --json

Measured (part of ``scripts/bench.py --only autopilot``):

- **GitHub requests per pass when nothing changed** (target: 0 counted against the rate limit): one repository
  on the fake GitHub (tests/fakegithub, real HTTP) with 5 and 50 streams, each with an open PR; a pass
  (``Autopilot.run_pass``) runs once to fill the conditional-request cache, then again: the requests the server
  received, how many were answered 304, how many the rate limit counted, the GraphQL queries, and the time of
  that unchanged pass.
- **Event to pane on GitHub** (target: at most one poll interval, ``autopilot.poll``): the tiny project on the
  fake GitHub, scripted agents (``--serve``) in a private tmux server, the autopilot's loop running with a
  2 s poll. A failing check run or a review asking for changes is added on the fake at a random moment of the
  poll cycle; measured until the agent's ``UserPromptSubmit`` event for the autopilot's message (its
  timestamp, from the agent's events file). The agent answers with a commit and a push, and the next event
  is on the new head. Reported with the two parts: the wait for the next pass to start (at most one poll
  interval: passes start ``poll`` seconds apart) and the time within that pass until the agent has it (reading
  the facts, deciding, typing the message into the pane).
- **Event to pane on the local forge** (target: at most 2 s): the same with ``forge: local`` and a 0.5 s poll;
  a failing gate recorded on the branch's head (``record_check`` with its log) or a review asking for changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "gating"))
sys.path.insert(0, str(REPO / "scripts"))

Row = dict[str, object]
PHASE = "phase-1"
SLUG = "acme/app"
GITHUB_POLL = 2.0
LOCAL_POLL = 0.5
LOCAL_TARGET = 2.0


class _Stop(Exception):
    """Ends the autopilot's loop (raised from its wake-up)."""


# ------------------------------------------------------------------------------- requests when unchanged


def _unchanged_pass(workdir: Path, streams: int) -> Row:
    from bench_forge import INTEGRATION, build_project
    from bench_forge import PHASE as FORGE_PHASE
    from fakegithub import FakeGitHub

    from coditect_cli.project import Project
    from coditect_cli.services import prs
    from coditect_cli.services.autopilot import Autopilot
    from coditect_cli.services.autopilot_agents import TmuxAgents

    with FakeGitHub() as fake:
        env = {**os.environ, "GH_TOKEN": fake.token, "CODITECT_GITHUB_WRITE_INTERVAL": "0"}
        bare = workdir / f"unchanged-{streams}.git"
        root = build_project(workdir / f"unchanged-{streams}", streams, fake, bare)
        fake.add_repo(SLUG, git_dir=bare)
        fake.protect(SLUG, INTEGRATION, checks=("ci/build",), approvals=1)
        project = Project(root)
        prs.open_all(project, FORGE_PHASE, env=env)
        socket = f"coditect-bench-reactions-none-{os.getpid()}"
        pilot = Autopilot(project, FORGE_PHASE, TmuxAgents(project, socket), socket=socket, env=env)
        pilot.run_pass()  # fills the conditional-request cache
        used = fake.rate_used
        fake.reset_log()
        started = time.perf_counter()
        pilot.run_pass()
        seconds = time.perf_counter() - started
        requests = fake.count()
        return {
            "benchmark": "autopilot",
            "case": f"GitHub requests of a pass when nothing changed ({streams} open PRs, 1 repo)",
            "seconds": seconds,
            "requests": requests,
            "answered_304": sum(1 for r in fake.requests if r.status == 304),
            "counted_against_rate_limit": fake.rate_used - used,
            "graphql": fake.count("POST", "/api/graphql"),
            "target": "0 counted",
            "met": fake.rate_used == used,
        }


# ------------------------------------------------------------------------------------- event to pane


def _manifest(poll: float) -> str:
    from helpers import scripted_run

    run = scripted_run()
    streams = "".join(
        f"""
  - id: s{k}
    terminal: {k}
    name: Stream {k}
    agent: agent{k}
    run: {json.dumps(run)}
    work: [{{repo: app, topic: t{k}, owns: [s{k}/]}}]
    gates: [{{name: gate, run: "python3 gate.py"}}]
    deliverables: [{{id: t{k}, days: 1, title: Task of s{k}}}]
"""
        for k in (1, 2)
    )
    return (
        "version: 1\nphase: phase-1\ntitle: Tiny\nforge: local\n"
        "schedule: {start: 2026-12-01, days: 10}\n"
        "repositories:\n  - {id: app, path: .}\n"
        f"autopilot: {{max_working: 2, stagger: 0, retries: 2, backoff: 0, poll: {poll}}}\n"
        f"streams:{streams}"
    )


def _latency(workdir: Path, runs: int, *, github: bool) -> list[Row]:
    from fakegithub import FakeGitHub
    from gating_helpers import build_tiny, git, move_to_github
    from helpers import kill_tmux_server

    from coditect_cli.agents.events import read_events, text_sha
    from coditect_cli.project import Project
    from coditect_cli.services import prs, reviews
    from coditect_cli.services.autopilot import Autopilot, loop
    from coditect_cli.services.autopilot_agents import TmuxAgents
    from coditect_cli.services.launch import launch
    from coditect_cli.services.manifest import load_valid
    from coditect_cli.services.session import agent_file
    from coditect_cli.services.setup import project_common_dir
    from coditect_cli.state.coordination import set_task_state
    from coditect_cli.state.store import Store

    poll = GITHUB_POLL if github else LOCAL_POLL
    where = "github" if github else "local"
    (workdir / where).mkdir(parents=True, exist_ok=True)
    tiny = build_tiny(workdir / where, 2, open_prs=False)
    (tiny.root / "workstreams" / "phase-1.yaml").write_text(_manifest(poll), encoding="utf-8")
    git(tiny.root, "commit", "-qam", "the benchmark's manifest")
    fake = FakeGitHub().start() if github else None
    env = dict(os.environ)
    if fake is not None:
        move_to_github(tiny, fake, SLUG)
        env.update(GH_TOKEN=fake.token, CODITECT_GITHUB_WRITE_INTERVAL="0")
    project = Project(tiny.root)
    common = project_common_dir(project)
    numbers = {o.stream: o.pr.number for o in prs.open_all(project, PHASE, env=env) if o.pr is not None}
    with Store.open(common) as store:
        for k in (1, 2):
            set_task_state(store, PHASE, f"s{k}", f"t{k}", "done", "bench")
    socket = f"coditect-bench-reactions-{where}-{os.getpid()}"
    stop = threading.Event()
    samples: dict[str, list[float]] = {}
    waits: dict[str, list[float]] = {}  # from the event to the start of the pass that told the agent
    passes: list[float] = []
    try:
        launch(project, PHASE, attach=False, socket=socket, agent=None, day=1)
        pilot = Autopilot(project, PHASE, TmuxAgents(project, socket), socket=socket, env=env)
        one_pass = pilot.run_pass

        def timed_pass(*, dry_run: bool = False) -> Any:
            passes.append(time.time())
            return one_pass(dry_run=dry_run)

        pilot.run_pass = timed_pass  # type: ignore[method-assign]  # when each pass started
        manifest = load_valid(project, PHASE, with_repos=False).loaded.manifest
        deadline = time.time() + 60
        while time.time() < deadline:
            states = pilot.agents.states(manifest)
            if len(states) == 2 and all(a.state == "idle" for a in states.values()):
                break
            time.sleep(0.1)

        def wake(seconds: float) -> None:
            if stop.wait(seconds):
                raise _Stop

        def run() -> None:
            with contextlib.suppress(_Stop):
                loop(pilot, once=False, dry_run=False, on_pass=lambda _r: None, wake=wake)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        rng = random.Random(13)
        for n in range(max(1, runs) * 2):
            kind = ("check" if github else "gate") if n % 2 == 0 else "review"
            k = 1 if kind != "review" else 2
            head = git(tiny.root, "rev-parse", f"refs/heads/feature/phase-1/s{k}/t{k}")
            time.sleep(rng.uniform(0, poll))  # a random moment of the poll cycle
            t0 = time.time()
            if kind == "check" and fake is not None:
                fake.add_check_run(
                    SLUG, head, f"ci-{n}", "completed", "failure", title="failed", text=f"run {n} failed"
                )
                key = f"ci_failed:app:{head[:12]}:ci-{n}"
            elif kind == "gate":
                log = workdir / f"gate-{n}.log"
                log.write_text(f"$ python3 gate.py\nFAIL_GATE run {n}\n# exit 1\n", encoding="utf-8")
                reviews.record_check(project, PHASE, "app", head, "gate", "failure", str(log))
                key = f"gate_failed:app:{head[:12]}:gate"
            elif fake is not None:
                fake.add_review(SLUG, numbers["s2"], "carol", "CHANGES_REQUESTED", f"change {n}")
                key = "changes_requested:app:"
            else:
                reviews.review(
                    project, PHASE, "s2", owner="@agent2", state="changes_requested", body=f"change {n}"
                )
                key = "changes_requested:app:"
            arrived = _arrival(common, f"s{k}", key, t0, read_events, text_sha, agent_file)
            samples.setdefault(kind, []).append(arrived - t0)
            start = max((p for p in passes if p <= arrived), default=t0)
            waits.setdefault(kind, []).append(max(0.0, start - t0))
            # The agent answers with a commit and a push: the next event is on the new head.
            end = time.time() + 30
            while (
                time.time() < end
                and git(tiny.root, "rev-parse", f"refs/heads/feature/phase-1/s{k}/t{k}") == head
            ):
                time.sleep(0.05)
    finally:
        stop.set()
        kill_tmux_server(socket)
        if fake is not None:
            fake.stop()
    rows: list[Row] = []
    target = poll if github else LOCAL_TARGET
    for kind, values in samples.items():
        what = {
            "check": "a failing check run",
            "gate": "a failing gate",
            "review": "a changes-requested review",
        }
        rows.append(
            {
                "benchmark": "autopilot",
                "case": f"{what[kind]} on the {where} forge to the message in the pane (poll {poll:g} s)",
                "seconds": statistics.median(values),
                "max_seconds": max(values),
                "max_wait_for_pass": max(waits[kind]),
                "max_in_pass": max(v - w for v, w in zip(values, waits[kind], strict=True)),
                "samples": len(values),
                "target": f"<= {target:g} s",
                "met": max(values) <= target,
                "pass_starts_within_poll": max(waits[kind]) <= poll + 0.05,
            }
        )
    return rows


def _arrival(
    common: Path, stream: str, key: str, since: float, read_events: Any, text_sha: Any, agent_file: Any
) -> float:
    """When ``stream``'s agent received the autopilot's message about the event ``key`` starts with: the
    timestamp of its ``UserPromptSubmit`` for that message (the journal gives the text and its mark)."""
    from coditect_cli.state.store import Store

    deadline = time.time() + 60
    while time.time() < deadline:
        with Store.open(common) as store:
            rows = store.query(
                "SELECT id, detail FROM autopilot_actions WHERE kind = 'react' AND key LIKE ? AND stream = ?",
                [f"react:{key}%", stream],
            )
        shas = set()
        for action_id, detail in rows:
            text = json.loads(detail).get("text", "") if isinstance(detail, str) else detail.get("text", "")
            shas.add(text_sha(f"{text} [coditect autopilot #{action_id}]"))
        for event in read_events(agent_file(common, PHASE, stream)):
            if event.event == "UserPromptSubmit" and event.prompt_sha in shas and event.t >= since - 1:
                return float(event.t)
        time.sleep(0.02)
    raise SystemExit(f"no message about {key} reached {stream} within 60 s")


def bench_reactions(runs: int, workdir: Path) -> list[Row]:
    """The rows of this benchmark (see the module docstring)."""
    rows = [_unchanged_pass(workdir, n) for n in (5, 50)]
    rows += _latency(workdir, min(runs, 5), github=True)
    rows += _latency(workdir, min(runs, 5), github=False)
    return rows


def main() -> int:
    from bench import standalone

    return standalone(bench_reactions, runs=5, doc=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
