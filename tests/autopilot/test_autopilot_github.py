"""The autopilot's GitHub event path, end to end: the tiny project's origin on the fake GitHub server (PyGithub
over real HTTP), scripted agents (``--serve``) in a private tmux server.

A failing check run (its output and annotations), a failing commit status, a review asking for changes and a
review comment (file and line) on GitHub each reach the pane of the stream whose PR it is, with the evidence;
the agents answer and push, and the conditions end. A pass over an unchanged GitHub costs no request counted
against the rate limit (every answer 304, no GraphQL). GitHub's conditions keep their ids from pass to pass, so
a reaction fires again after its interval, not on every pass. Webhook deliveries to ``coditect events serve``:
a signed ``check_run`` reaches the pane in the next pass, a signed review GitHub also reports is told once, a
mis-signed one is refused and nothing is sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakegithub import FakeGitHub
from gating_helpers import Tiny, build_tiny, git, move_to_github
from helpers import kill_tmux_server, retry_until, scripted_run

from coditect_cli.project import Project
from coditect_cli.services.autopilot import Autopilot, PassReport
from coditect_cli.services.autopilot_agents import TmuxAgents
from coditect_cli.services.events import signature

PHASE = "phase-1"
SLUG = "acme/app"
SECRET = "webhook secret of the test"


def manifest() -> str:
    streams = "".join(
        f"""
  - id: s{k}
    terminal: {k}
    name: Stream {k}
    agent: agent{k}
    run: {json.dumps(scripted_run())}
    work: [{{repo: app, topic: t{k}, owns: [s{k}/]}}]
    deliverables: [{{id: t{k}, days: 1, title: Task of s{k}}}]
"""
        for k in (1, 2, 3)
    )
    return (
        "version: 1\nphase: phase-1\ntitle: Tiny\nforge: local\n"
        "schedule: {start: 2026-12-01, days: 10}\n"
        "repositories:\n  - {id: app, path: .}\n"
        "autopilot: {max_working: 3, stagger: 0, retries: 2, backoff: 0, poll: 0.5}\n"
        "reactions:\n  ci_failed: {interval: 60, retries: 2, escalate_after: 5}\n"
        f"streams:{streams}"
    )


class Phase:
    """The tiny project on the fake GitHub, its PRs open there, every task done (nothing to dispatch)."""

    def __init__(self, tmp_path: Path, fake: FakeGitHub, socket: str | None) -> None:
        from coditect_cli.services import prs
        from coditect_cli.services.setup import project_common_dir
        from coditect_cli.state.coordination import set_task_state
        from coditect_cli.state.store import Store

        self.tiny: Tiny = build_tiny(tmp_path, 3, open_prs=False)
        (self.tiny.root / "workstreams" / "phase-1.yaml").write_text(manifest(), encoding="utf-8")
        git(self.tiny.root, "commit", "-qam", "the test's manifest")
        move_to_github(self.tiny, fake, SLUG)
        self.fake = fake
        self.env = {
            **os.environ,
            "GH_TOKEN": fake.token,
            "CODITECT_GITHUB_RETRIES": "1",
            "CODITECT_GITHUB_WRITE_INTERVAL": "0",
        }
        self.project = Project(self.tiny.root)
        opened = prs.open_all(self.project, PHASE, env=self.env)
        assert [o.forge for o in opened] == ["github"] * 3
        self.numbers = {o.stream: o.pr.number for o in opened if o.pr is not None}
        with Store.open(project_common_dir(self.project)) as store:
            for k in (1, 2, 3):
                set_task_state(store, PHASE, f"s{k}", f"t{k}", "done", "test")
        self.socket = socket
        self.clock_at: float | None = None
        self.pilot = Autopilot(
            self.project,
            PHASE,
            TmuxAgents(self.project, socket),
            socket=socket,
            env=self.env,
            clock=self.clock,
        )

    def clock(self) -> float:
        import time

        return time.time() if self.clock_at is None else self.clock_at

    def head(self, k: int) -> str:
        return git(self.tiny.origin, "rev-parse", f"feature/phase-1/s{k}/t{k}")

    def launch(self) -> None:
        from coditect_cli.services.launch import launch

        launch(self.project, PHASE, attach=False, socket=self.socket, agent=None, day=1)

    def manifest(self) -> Any:
        from coditect_cli.services.manifest import load_valid

        return load_valid(self.project, PHASE, with_repos=False).loaded.manifest

    def wait_idle(self) -> None:
        """Until every agent is up and waiting for a message."""
        m = self.manifest()
        retry_until(
            lambda: self.pilot.agents.states(m),
            lambda states: len(states) == 3 and all(a.state == "idle" for a in states.values()),
            timeout=60,
        )

    def arrived(self, stream: str, outcome: Any) -> bool:
        """Whether the agent of ``stream`` received the message of ``outcome`` (its prompt, mark included)."""
        marked = f"{outcome.action.text} [coditect autopilot #{outcome.journal_id}]"
        return self.pilot.agents.arrived(self.manifest(), stream, marked)


@pytest.fixture
def socket(tmp_path: Path) -> Iterator[str]:
    name = f"coditect-apgh-{os.getpid()}-{abs(hash(str(tmp_path))) % 100000}"
    yield name
    kill_tmux_server(name)


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


def reacted(reports: list[PassReport]) -> list[Any]:
    return [o for r in reports for o in r.outcomes if o.action.kind == "react"]


def test_github_events_reach_the_right_panes_and_an_unchanged_pass_costs_nothing(
    tmp_path: Path, isolated_git: Path, socket: str, fake: FakeGitHub
) -> None:
    phase = Phase(tmp_path, fake, socket)
    phase.launch()
    phase.wait_idle()
    first = phase.pilot.run_pass()
    assert not first.conditions and not reacted([first])

    # Nothing changed on GitHub: every read is answered 304, GraphQL is not asked.
    used = fake.rate_used
    fake.reset_log()
    quiet = phase.pilot.run_pass()
    assert fake.requests and all(r.status == 304 for r in fake.requests), fake.requests
    assert fake.rate_used == used and fake.count("POST", "/api/graphql") == 0
    assert not reacted([quiet])

    h1, h2, h3 = phase.head(1), phase.head(2), phase.head(3)
    fake.add_check_run(
        SLUG,
        h1,
        "unit-tests",
        "completed",
        "failure",
        title="1 test failed",
        summary="test_login: expected 200, got 500",
        text="tests/test_login.py:12: in test_login\nE   assert 500 == 200",
        details_url="https://ci.example/runs/7",
    )
    fake.add_check_run(
        SLUG,
        h1,
        "lint",
        "completed",
        "failure",
        title="1 problem",
        annotations=[{"path": "s1/work.txt", "start_line": 1, "title": "style", "message": "trailing words"}],
    )
    fake.add_status(SLUG, h2, "ci/jenkins", "failure", "make check: 3 errors", "https://jenkins.example/42")
    fake.add_review(SLUG, phase.numbers["s3"], "carol", "CHANGES_REQUESTED", "split work.txt in two")
    fake.add_review_comment(SLUG, phase.numbers["s1"], "dave", "this line needs a unit", "s1/work.txt", 1)

    report = phase.pilot.run_pass()
    sent = {o.action.detail["event"]: o for o in reacted([report])}
    assert set(sent) == {
        f"ci_failed:app:{h1[:12]}:unit-tests",
        f"ci_failed:app:{h1[:12]}:lint",
        f"review_comment:app:{phase.numbers['s1']}:"
        + str(fake.repos[SLUG].review_comments[phase.numbers["s1"]][0]["id"]),
        f"ci_failed:app:{h2[:12]}:ci/jenkins",
        f"changes_requested:app:{phase.numbers['s3']}:review-"
        + str(fake.repos[SLUG].reviews[phase.numbers["s3"]][0]["id"]),
    }
    by_stream: dict[str, list[str]] = {}
    for o in sent.values():
        by_stream.setdefault(str(o.action.stream), []).append(o.action.text)
    s1 = " ".join(by_stream["s1"])
    for needle in (
        "`unit-tests` fails",
        "1 test failed - test_login: expected 200, got 500",
        "E   assert 500 == 200",
        "https://ci.example/runs/7",
        "s1/work.txt:1: [failure] style: trailing words",
        "@dave commented on s1/work.txt:1",
        "this line needs a unit",
    ):
        assert needle in s1, needle
    (s2,) = by_stream["s2"]
    assert "`ci/jenkins` fails" in s2 and "make check: 3 errors" in s2 and "https://jenkins.example/42" in s2
    (s3,) = by_stream["s3"]
    assert "@carol requested changes" in s3 and "split work.txt in two" in s3
    for o in sent.values():  # each message reached its stream's agent, and only that one
        retry_until(lambda o=o: phase.arrived(str(o.action.stream), o), bool, timeout=30)
        others = {"s1", "s2", "s3"} - {str(o.action.stream)}
        assert not any(phase.arrived(s, o) for s in others)

    # The agents answer (a commit, pushed): the conditions were about the old heads, and end.
    retry_until(
        lambda: (phase.head(1), phase.head(2), phase.head(3)), lambda h: h != (h1, h2, h3), timeout=60
    )
    later = retry_until(phase.pilot.run_pass, lambda r: not r.conditions, timeout=60)
    assert not reacted([later])


def test_github_conditions_keep_their_ids_and_fire_again_after_the_interval(
    tmp_path: Path, isolated_git: Path, fake: FakeGitHub
) -> None:
    phase = Phase(
        tmp_path, fake, "coditect-apgh-no-panes"
    )  # no panes: messages are "not sent", firings count
    h1 = phase.head(1)
    fake.add_check_run(SLUG, h1, "unit-tests", "completed", "failure", title="1 test failed")
    phase.clock_at = 1_000_000.0
    first = phase.pilot.run_pass()
    keys = [o.action.key for o in reacted([first])]
    assert keys == [f"react:ci_failed:app:{h1[:12]}:unit-tests#1"]
    phase.clock_at += 30  # within the interval (60 s): the same event, not fired again
    assert not reacted([phase.pilot.run_pass()])
    phase.clock_at += 31
    again = phase.pilot.run_pass()
    assert [o.action.key for o in reacted([again])] == [f"react:ci_failed:app:{h1[:12]}:unit-tests#2"]


def post(url: str, event: str, payload: dict[str, Any], delivery: str, secret: str) -> int:
    body = json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
        "X-Hub-Signature-256": signature(secret.encode(), body),
    }
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_webhook_deliveries_signed_and_mis_signed(
    tmp_path: Path, isolated_git: Path, socket: str, fake: FakeGitHub
) -> None:
    phase = Phase(tmp_path, fake, socket)
    phase.launch()
    phase.wait_idle()
    phase.pilot.run_pass()
    env = {
        **phase.env,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "CODITECT_WEBHOOK_SECRET": SECRET,
    }
    argv = [sys.executable, "-m", "coditect_cli", "--root", str(phase.tiny.root), "events", "serve", PHASE]
    server = subprocess.Popen(
        [*argv, "--addr", "127.0.0.1:0", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        text, line = "", ""
        while line != "}\n":  # the envelope (indented JSON), printed once listening starts
            line = server.stdout.readline()
            assert line, server.stderr.read() if server.stderr else "events serve ended"
            text += line
        started = json.loads(text)["data"]
        assert started["repositories"] == {SLUG: "app"}
        url = started["listening"]
        h2, h3 = phase.head(2), phase.head(3)
        repository = {"full_name": SLUG}
        review = {
            "action": "submitted",
            "repository": repository,
            "review": {
                "id": 777,
                "state": "changes_requested",
                "body": "rename the function",
                "user": {"login": "erin"},
                "commit_id": h3,
                "html_url": f"{fake.root_url}/{SLUG}/pull/3#pullrequestreview-777",
            },
            "pull_request": {
                "number": phase.numbers["s3"],
                "head": {"ref": "feature/phase-1/s3/t3", "sha": h3},
            },
        }
        assert post(url, "pull_request_review", review, "d-bad", "not the secret") == 401
        quiet = phase.pilot.run_pass()
        assert not reacted([quiet]) and not quiet.conditions  # refused: nothing kept, nothing sent

        check = {
            "action": "completed",
            "repository": repository,
            "check_run": {
                "id": 4242,
                "name": "e2e",
                "head_sha": h2,
                "conclusion": "failure",
                "details_url": "https://ci.example/e2e/4242",
                "output": {"title": "e2e failed", "summary": "checkout page: timeout", "text": "step 3 hung"},
                "pull_requests": [{"head": {"ref": "feature/phase-1/s2/t2"}}],
            },
        }
        assert post(url, "check_run", check, "d-1", SECRET) == 202
        assert post(url, "check_run", check, "d-1", SECRET) == 200  # a replay: kept once
        report = phase.pilot.run_pass()
        (told,) = reacted([report])
        assert told.action.stream == "s2"
        assert "`e2e` fails" in told.action.text and "checkout page: timeout" in told.action.text
        assert "step 3 hung" in told.action.text and "https://ci.example/e2e/4242" in told.action.text
        retry_until(lambda: phase.arrived("s2", told), bool, timeout=30)

        # A review GitHub reports both ways (polled, and delivered): one event, told once.
        fake.add_review(SLUG, phase.numbers["s3"], "erin", "CHANGES_REQUESTED", "rename the function")
        polled_id = fake.repos[SLUG].reviews[phase.numbers["s3"]][-1]["id"]
        review["review"]["id"] = polled_id  # type: ignore[index]
        assert post(url, "pull_request_review", review, "d-2", SECRET) == 202
        both = phase.pilot.run_pass()
        (once,) = reacted([both])
        assert once.action.stream == "s3" and "rename the function" in once.action.text
        assert (
            once.action.detail["event"] == f"changes_requested:app:{phase.numbers['s3']}:review-{polled_id}"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
