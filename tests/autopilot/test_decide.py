"""The autopilot's decisions (pure): dispatch in DAG order under the cap, staggered; verification when a
turn ends; reactions that fire again while their condition holds, then escalate; checkpoints on their day."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from coditect_cli.domain.autopilot import (
    AgentView,
    CheckpointDue,
    Condition,
    FiredView,
    OpenDispatch,
    PassInput,
    backoff_delay,
    decide,
    next_task,
)
from coditect_cli.domain.loader import load_manifest_text
from coditect_cli.domain.manifest import Manifest

MANIFEST = """\
version: 1
phase: phase-1
forge: local
schedule: {start: 2026-12-01, days: 10}
repositories: [{id: app, path: .}]
autopilot: {max_working: 2, stagger: 0, retries: 2}
reactions:
  gate_failed: {action: send-to-agent, retries: 2, interval: 60, escalate_after: 2}
  review_comment: {action: notify}
  conflict_predicted: {action: none}
streams:
  - id: a
    terminal: 1
    name: A
    agent: a
    run: claude
    work: [{repo: app, topic: t, owns: [a/]}]
    deliverables:
      - {id: a2, days: 2-3, title: Second}
      - {id: a1, days: 1, title: First}
  - id: b
    terminal: 2
    name: B
    agent: b
    run: claude
    work: [{repo: app, topic: t, owns: [b/]}]
    deliverables:
      - {id: b1, days: 1, title: Needs a1, depends_on: [a1]}
  - id: c
    terminal: 3
    name: C
    agent: c
    run: claude
    work: [{repo: app, topic: t, owns: [c/]}]
    deliverables: [{id: c1, days: 1, title: Alone}]
  - id: d
    terminal: 4
    name: D
    agent: d
    run: shell
    work: [{repo: app, topic: t, owns: [d/]}]
    deliverables: [{id: d1, days: 1, title: A person's}]
"""


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest_text(MANIFEST, "phase-1.yaml").manifest


def idle(*streams: str, dispatchable: bool = True) -> dict[str, AgentView]:
    return {s: AgentView(s, "idle", dispatchable) for s in streams}


def make(manifest: Manifest, **kw: object) -> PassInput:
    base: dict[str, object] = {
        "manifest": manifest,
        "now": 1000.0,
        "max_working": 2,
        "agents": {**idle("a", "b", "c"), "d": AgentView("d", "idle", False)},
        "task_states": {},
        "blocked": {},
        "dispatches": {},
        "backoff_until": {},
        "last_dispatch": None,
    }
    base.update(kw)
    return PassInput(**base)  # type: ignore[arg-type]


def keys(actions: list) -> list[str]:  # type: ignore[type-arg]
    return [a.key for a in actions]


def test_idle_agents_get_their_first_ready_task_in_day_order_under_the_cap(manifest: Manifest) -> None:
    actions = decide(make(manifest))
    # a1 (day 1) before a2; b1 waits for a1; the cap of 2 leaves c for the next pass; d is a person's shell.
    assert keys(actions) == ["dispatch:a:a1", "dispatch:c:c1"]


def test_a_task_waits_until_its_dependency_is_done(manifest: Manifest) -> None:
    assert keys(decide(make(manifest, agents=idle("b")))) == []
    states = {"a1": "done"}
    assert keys(decide(make(manifest, agents=idle("b"), task_states=states))) == ["dispatch:b:b1"]


def test_busy_agents_count_against_the_cap_and_get_nothing(manifest: Manifest) -> None:
    agents = {
        "a": AgentView("a", "working", True),
        "b": AgentView("b", "waiting for approval", True),
        **idle("c"),
    }
    assert decide(make(manifest, agents=agents)) == []


def test_a_host_never_runs_more_working_agents_than_its_max_working(manifest: Manifest) -> None:
    """Streams on a host with `max_working` count against its cap as well as the global one."""
    text = MANIFEST.replace(
        "streams:\n",
        "hosts:\n  - {name: box, ssh: box.example, workdir: /srv/w, max_working: 1}\n"
        "  - {name: big, ssh: big.example, workdir: /srv/w}\nstreams:\n",
        1,
    )
    for sid in ("a", "c"):
        text = text.replace(f"    name: {sid.upper()}\n", f"    name: {sid.upper()}\n    host: box\n", 1)
    hosted = load_manifest_text(text, "phase-1.yaml").manifest
    assert {s.id: s.host for s in hosted.streams} == {"a": "box", "b": None, "c": "box", "d": None}
    # a and c are both idle with a ready task on box: one at a time there; the global cap would allow both.
    assert keys(decide(make(hosted))) == ["dispatch:a:a1"]
    # c's turn comes when a is no longer working on box.
    working_a = {**idle("c"), "a": AgentView("a", "working", True)}
    assert keys(decide(make(hosted, agents=working_a, max_working=5))) == []
    assert keys(decide(make(hosted, agents=idle("c"), max_working=5))) == ["dispatch:c:c1"]
    # An open dispatch on box counts as working there too; a host without max_working has no cap of its own.
    d = OpenDispatch(7, "a", "a1", 1, 900.0, 2000.0)
    assert keys(decide(make(hosted, agents=idle("c"), dispatches={"a": d}, max_working=5))) == []
    on_big = hosted.model_copy(
        update={
            "streams": tuple(s.model_copy(update={"host": "big"}) if s.host else s for s in hosted.streams)
        }
    )
    assert keys(decide(make(on_big, max_working=5))) == ["dispatch:a:a1", "dispatch:c:c1"]


def test_stagger_allows_one_dispatch_a_pass_and_waits_between_them(manifest: Manifest) -> None:
    staggered = manifest.model_copy(
        update={"autopilot": manifest.autopilot.model_copy(update={"stagger": 30.0})}
    )
    assert keys(decide(make(staggered))) == ["dispatch:a:a1"]
    assert decide(make(staggered, last_dispatch=990.0)) == []
    assert keys(decide(make(staggered, last_dispatch=960.0))) == ["dispatch:a:a1"]


def test_a_stream_in_backoff_is_skipped_until_its_time(manifest: Manifest) -> None:
    assert keys(decide(make(manifest, backoff_until={"a": 1060.0}))) == ["dispatch:c:c1"]
    assert keys(decide(make(manifest, now=1061.0, backoff_until={"a": 1060.0})))[0] == "dispatch:a:a1"
    assert [backoff_delay(30, n) for n in (1, 2, 3)] == [30, 60, 120]


def test_a_finished_turn_is_verified_once_its_backoff_passed(manifest: Manifest) -> None:
    d = OpenDispatch(7, "a", "a1", 2, 900.0, 1100.0)
    assert "verify:7:2" not in keys(decide(make(manifest, dispatches={"a": d})))
    assert "verify:7:2" in keys(decide(make(manifest, now=1100.0, dispatches={"a": d})))
    working = {"a": AgentView("a", "working", True)}
    assert "verify:7:2" not in keys(decide(make(manifest, now=1100.0, agents=working, dispatches={"a": d})))


def test_tasks_behind_a_blocked_dependency_are_reported_never_dispatched(manifest: Manifest) -> None:
    actions = decide(make(manifest, agents=idle("b"), blocked={"a1": "not pushed"}))
    assert keys(actions) == ["never:b1:a1"]
    assert "a1" in actions[0].text and "not pushed" in actions[0].text
    task, stuck = next_task(manifest, manifest.stream("b"), {}, {"a1": "x"})
    assert task is None and stuck == [("b1", "a1")]


class FireCase(NamedTuple):
    test_id: str
    seen: FiredView | None
    now: float
    expected: list[str]


FIRE_CASES = [
    FireCase("first-sighting", None, 1000.0, ["react:g#1"]),
    FireCase("within-interval", FiredView(1, 990.0, False), 1000.0, []),
    FireCase(
        "again-after-interval-and-escalate", FiredView(1, 900.0, False), 1000.0, ["react:g#2", "escalate:g"]
    ),
    FireCase("escalated-once-only", FiredView(2, 900.0, True), 1000.0, ["react:g#3"]),
    FireCase("retries-exhausted", FiredView(3, 100.0, True), 1000.0, []),
]


@pytest.mark.parametrize("case", FIRE_CASES, ids=[c.test_id for c in FIRE_CASES])
def test_reactions_fire_again_while_the_condition_holds_then_escalate(
    manifest: Manifest, case: FireCase
) -> None:
    cond = Condition("g", "gate_failed", "a", "the gate fails")
    fired = {"g": case.seen} if case.seen else {}
    busy = {s: AgentView(s, "working", True) for s in "abc"}
    assert (
        keys(decide(make(manifest, agents=busy, conditions=[cond], fired=fired, now=case.now)))
        == case.expected
    )


def test_reaction_actions_follow_the_manifest(manifest: Manifest) -> None:
    busy = {s: AgentView(s, "working", True) for s in "abc"}
    conds = [
        Condition("c1", "review_comment", "a", "x"),
        Condition("c2", "conflict_predicted", "a", "y"),
        Condition("c3", "ci_failed", "a", "z"),
    ]
    actions = decide(make(manifest, agents=busy, conditions=conds))
    assert [(a.kind, a.key) for a in actions] == [("notify", "react:c1#1"), ("react", "react:c3#1")]


def test_a_due_checkpoint_runs_when_ready_and_pauses_its_streams(manifest: Manifest) -> None:
    cp = CheckpointDue(1, ("a", "c"), ready=True, past_cutoff=False, inputs="h1")
    actions = decide(make(manifest, checkpoints=[cp], task_states={"a1": "done"}))
    assert keys(actions) == ["checkpoint:1:h1", "dispatch:b:b1"]  # a and c wait for the checkpoint
    busy = {**idle("a", "b"), "c": AgentView("c", "working", True)}
    waiting_for_c = decide(make(manifest, checkpoints=[cp], agents=busy, task_states={"a1": "done"}))
    assert keys(waiting_for_c) == ["checkpoint-waits:1:h1", "dispatch:b:b1"]  # a gets nothing new meanwhile
    assert "c finish" in waiting_for_c[0].text
    assert decide(make(manifest, checkpoints=[cp], journaled=frozenset({"checkpoint:1:h1"}), agents={})) == []
    waiting = CheckpointDue(1, ("a",), ready=False, past_cutoff=False, inputs="h2")
    assert decide(make(manifest, checkpoints=[waiting], agents={})) == []
    late = CheckpointDue(1, ("a",), ready=False, past_cutoff=True, inputs="h2")
    assert keys(decide(make(manifest, checkpoints=[late], agents={}))) == ["checkpoint:1:h2"]


def test_merge_phase_only_with_land_once_everything_is_done(manifest: Manifest) -> None:
    done = {t: "done" for t in manifest.tasks()}
    assert decide(make(manifest, agents={}, task_states=done, all_checkpoints_passed=True)) == []
    assert keys(
        decide(make(manifest, agents={}, task_states=done, all_checkpoints_passed=True, land=True))
    ) == ["merge-phase"]
    assert (
        decide(
            make(
                manifest,
                agents={},
                task_states={**done, "c1": "todo"},
                all_checkpoints_passed=True,
                land=True,
            )
        )
        == []
    )


def test_the_phase_budget_stops_new_dispatches_and_warns_at_80_percent(manifest: Manifest) -> None:
    capped = manifest.model_copy(
        update={"autopilot": manifest.autopilot.model_copy(update={"budget_usd": 10.0})}
    )
    assert keys(decide(make(capped, spent_usd=7.9)))[:1] == ["dispatch:a:a1"]
    warned = decide(make(capped, spent_usd=8.0))
    assert keys(warned)[0] == "budget:warn" and "dispatch:a:a1" in keys(warned)
    over = decide(make(capped, spent_usd=10.0))
    assert keys(over) == ["budget:over"] and "no new task" in over[0].text


def test_a_checkpoint_found_not_ready_leaves_its_streams_working_for_a_while(manifest: Manifest) -> None:
    from coditect_cli.domain.autopilot import WAIT_SECONDS, checkpoint_wait_key

    cp = CheckpointDue(1, ("a", "c"), ready=True, past_cutoff=False, inputs="h1")
    waited = frozenset({checkpoint_wait_key(1, "h1", 1000.0)})
    assert keys(decide(make(manifest, checkpoints=[cp], journaled=waited))) == [
        "dispatch:a:a1",
        "dispatch:c:c1",
    ]
    later = 1000.0 + WAIT_SECONDS
    assert keys(decide(make(manifest, now=later, checkpoints=[cp], journaled=waited)))[0] == "checkpoint:1:h1"
