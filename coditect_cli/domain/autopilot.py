"""The autopilot's decisions: from what a pass saw, the actions to take (pure; no I/O).

A pass gathers facts (agent states, tasks, dispatches, events whose condition holds, checkpoints due),
:func:`decide` turns them into :class:`Action` values, and :mod:`coditect_cli.services.autopilot` journals
and carries them out. Every action carries a ``key`` naming it exactly (the dispatch of one task, the n-th
firing of a reaction to one event, one checkpoint run on one set of PR heads): the journal refuses a key it
has seen, so nothing is done twice, whatever kills the loop and when.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from coditect_cli.domain.autopilot_config import DEFAULT_REACTION, AutopilotConfig, EventKind
from coditect_cli.domain.manifest import Deliverable, Manifest, Stream

ActionKind = Literal[
    "dispatch", "verify", "remind", "react", "notify", "escalate", "checkpoint", "merge-phase", "note"
]

AGENT_STATES = (
    "starting",
    "working",
    "waiting for approval",
    "blocked on dialog",
    "idle",
    "exited",
    "unknown",
    "missing",
)
BUSY_STATES = frozenset({"starting", "working", "waiting for approval", "blocked on dialog"})


@dataclass(frozen=True)
class AgentView:
    """A stream's agent as the pass saw it."""

    stream: str
    state: str  # one of AGENT_STATES
    dispatchable: bool  # an agent the autopilot may give tasks to (not a person's shell)
    exit_status: int | None = None
    detail: str = ""  # the approval question, the dialog's line, the last screen line


@dataclass(frozen=True)
class OpenDispatch:
    """The task a stream's agent is working on (see :class:`coditect_cli.state.autopilot_records.Dispatch`)."""

    id: int
    stream: str
    task: str
    attempt: int
    dispatched_at: float
    next_at: float


@dataclass(frozen=True)
class Condition:
    """An event whose condition holds now: a failing gate, a review asking for changes, ..."""

    key: str  # stable while the condition is the same one (an event id)
    kind: EventKind
    stream: str
    text: str  # what the stream's agent is told, with the evidence (log tail, file:line, URL)


@dataclass(frozen=True)
class FiredView:
    """How often the reaction to one event fired, when last (epoch seconds), and whether it escalated."""

    fired: int
    last: float
    escalated: bool


@dataclass(frozen=True)
class CheckpointDue:
    """A checkpoint whose day has come and that has not passed."""

    id: int
    streams: tuple[str, ...]
    ready: bool  # every PR of its streams is ready
    past_cutoff: bool
    inputs: str  # a digest of the PR heads it would merge: a failed run is not repeated on the same ones


@dataclass(frozen=True)
class PassInput:
    """Everything :func:`decide` looks at."""

    manifest: Manifest
    now: float
    max_working: int
    agents: Mapping[str, AgentView]
    task_states: Mapping[str, str]
    blocked: Mapping[str, str]  # task -> why the autopilot gave up on it
    dispatches: Mapping[str, OpenDispatch]  # by stream
    backoff_until: Mapping[str, float]  # by stream
    last_dispatch: float | None
    conditions: Sequence[Condition] = ()
    fired: Mapping[str, FiredView] = field(default_factory=dict)
    checkpoints: Sequence[CheckpointDue] = ()
    journaled: frozenset[str] = frozenset()  # keys of checkpoint / merge-phase actions already taken
    land: bool = False
    all_checkpoints_passed: bool = False
    spent_usd: float = 0.0  # the phase's spending on the built-in agent so far

    @property
    def config(self) -> AutopilotConfig:
        return self.manifest.autopilot


@dataclass(frozen=True)
class Action:
    """One thing the autopilot does; ``key`` makes it happen at most once."""

    kind: ActionKind
    key: str
    stream: str | None = None
    task: str | None = None
    text: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "stream": self.stream,
            "task": self.task,
            "text": self.text,
            "detail": dict(self.detail),
        }


# ---------------------------------------------------------------------------------------------------- tasks


def task_order(stream: Stream) -> list[Deliverable]:
    """A stream's tasks in day order (then manifest order)."""
    return sorted(stream.deliverables, key=lambda d: (d.days.first, d.days.last))


def next_task(
    manifest: Manifest,
    stream: Stream,
    states: Mapping[str, str],
    blocked: Mapping[str, str],
) -> tuple[Deliverable | None, list[tuple[str, str]]]:
    """The stream's next ready task (every dependency done, in day order), and the tasks that can never
    start because a dependency was given up on, as (task, blocked dependency) pairs."""
    stuck: list[tuple[str, str]] = []
    for task in task_order(stream):
        if states.get(task.id) == "done" or task.id in blocked:
            continue
        deps = dependencies(manifest, task)
        dead = [d for d in deps if d in blocked]
        if dead:
            stuck.append((task.id, dead[0]))
            continue
        if all(states.get(d) == "done" for d in deps):
            return task, stuck
    return None, stuck


def dependencies(manifest: Manifest, task: Deliverable) -> list[str]:
    """The tasks ``task`` waits for (its ``depends_on`` that name tasks of the phase), as the syncs read them."""
    known = manifest.tasks()
    return [d for d in task.depends_on if d in known]


def task_prompt(
    manifest: Manifest,
    stream: Stream,
    task: Deliverable,
    *,
    owned: Mapping[str, Sequence[str]],
    upstream: Sequence[str] = (),
    marker: str = "",
) -> str:
    """The prompt giving ``task`` to ``stream``'s agent, built from the manifest."""
    lines = [
        f"coditect autopilot: your next task is [{task.id}] {task.title} (days {task.days}).",
        "Work only in your own paths: "
        + "; ".join(f"{repo}: {', '.join(paths)}" for repo, paths in owned.items())
        + ".",
    ]
    if stream.gates:
        lines.append(
            "Before you say you are done, these gates must pass: "
            + "; ".join(f"`{g.run}`" for g in stream.gates)
            + "."
        )
    if upstream:
        lines.append("Upstream work you build on: " + "; ".join(upstream) + ".")
    lines.append(
        "Done means: committed on your branch, worktree clean, pushed, only your own paths changed, gates green. "
        "When it is, stop and wait for the next message."
    )
    if marker:
        lines.append(marker)
    return " ".join(lines)


# ------------------------------------------------------------------------------------------------- decide


def _fire_number(
    cond: Condition, seen: FiredView | None, retries: int, interval: int, now: float
) -> int | None:
    """The firing number due now for ``cond`` (1 = first), or None when nothing is due."""
    if seen is None:
        return 1
    if seen.fired >= 1 + retries or now - seen.last < interval:
        return None
    return seen.fired + 1


def decide(inp: PassInput) -> list[Action]:
    """The actions of one pass, in the order they are to be carried out."""
    manifest, now, cfg = inp.manifest, inp.now, inp.config
    actions: list[Action] = []
    paused: set[str] = set()

    # A checkpoint first: its streams get nothing new while it runs.
    for cp in inp.checkpoints:
        key = f"checkpoint:{cp.id}:{cp.inputs}"
        if key in inp.journaled or not (cp.ready or cp.past_cutoff):
            continue
        if checkpoint_wait_key(cp.id, cp.inputs, inp.now) in inp.journaled:
            continue  # its own collection found it not ready a moment ago: its streams work on meanwhile
        # Its streams are paused (no new task); it runs once none of them is still working, so nothing
        # is pushed under it (a push would make an approval stale half-way).
        paused.update(cp.streams)
        busy = [
            s
            for s in cp.streams
            if s in inp.dispatches or (s in inp.agents and inp.agents[s].state in BUSY_STATES)
        ]
        if busy:
            actions.append(
                Action(
                    "note",
                    f"checkpoint-waits:{cp.id}:{cp.inputs}",
                    text=f"checkpoint {cp.id} is ready; it runs once {', '.join(busy)} finish their turn",
                )
            )
            break
        why = "every PR of its streams is ready" if cp.ready else "its cut-off time has passed"
        actions.append(
            Action(
                "checkpoint",
                key,
                text=f"checkpoint {cp.id}: {why}",
                detail={"checkpoint": cp.id, "streams": list(cp.streams)},
            )
        )
        break

    # Work claimed done (the agent's turn ended) is verified; an agent stuck on one task is reported.
    for stream_id, d in inp.dispatches.items():
        agent = inp.agents.get(stream_id)
        if agent is None:
            continue
        if agent.state in {"idle", "exited"} and now >= d.next_at:
            actions.append(
                Action(
                    "verify",
                    f"verify:{d.id}:{d.attempt}",
                    stream_id,
                    d.task,
                    detail={"dispatch": d.id, "attempt": d.attempt},
                )
            )
        elif agent.state in BUSY_STATES and now - d.dispatched_at > cfg.stuck_after:
            actions.append(
                Action(
                    "note",
                    f"stuck:{d.id}:{d.attempt}",
                    stream_id,
                    d.task,
                    text=f"{stream_id} has been {agent.state} on [{d.task}] for more than {cfg.stuck_after} s"
                    + (f": {agent.detail}" if agent.detail else ""),
                )
            )

    # Reactions: fire while the condition holds, again after the interval, escalate once.
    for cond in inp.conditions:
        reaction = manifest.reactions.get(cond.kind, DEFAULT_REACTION)
        if reaction.action == "none":
            continue
        seen = inp.fired.get(cond.key)
        n = _fire_number(cond, seen, reaction.retries, reaction.interval, now)
        if n is None:
            continue
        kind: ActionKind = "react" if reaction.action == "send-to-agent" else "notify"
        actions.append(
            Action(
                kind,
                f"react:{cond.key}#{n}",
                cond.stream,
                text=cond.text,
                detail={"event": cond.key, "kind": cond.kind, "firing": n},
            )
        )
        if n >= reaction.escalate_after and not (seen and seen.escalated):
            actions.append(
                Action(
                    "escalate",
                    f"escalate:{cond.key}",
                    cond.stream,
                    text=f"{cond.kind.replace('_', ' ')} for {cond.stream} persists after {n} reminders: {cond.text}",
                    detail={"event": cond.key, "kind": cond.kind},
                )
            )

    # The phase budget is a hard stop for new work; a warning at 80%.
    budget = cfg.budget_usd
    if budget is not None and inp.spent_usd >= 0.8 * budget:
        over = inp.spent_usd >= budget
        actions.append(
            Action(
                "note",
                f"budget:{'over' if over else 'warn'}",
                text=f"the phase has spent ${inp.spent_usd:.2f} of its ${budget:.2f} budget"
                + (": no new task is dispatched" if over else " (80% reached)"),
            )
        )
        if over:
            return actions

    # Dispatch: idle agents get their next ready task, under the cap (and their host's), staggered.
    working = {s for s, a in inp.agents.items() if a.state in BUSY_STATES} | set(inp.dispatches)
    host_of = {s.id: s.host for s in manifest.streams if s.host is not None}
    host_caps = {h.name: h.max_working for h in manifest.hosts if h.max_working is not None}
    dispatched_now = 0
    for stream in manifest.ordered_streams():
        agent = inp.agents.get(stream.id)
        if stream.id in paused or stream.id in inp.dispatches or agent is None or not agent.dispatchable:
            continue
        if agent.state != "idle":
            continue
        task, stuck = next_task(manifest, stream, inp.task_states, inp.blocked)
        for waiting, dead in stuck:
            actions.append(
                Action(
                    "note",
                    f"never:{waiting}:{dead}",
                    stream.id,
                    waiting,
                    text=f"[{waiting}] can never start: it depends on [{dead}], which the autopilot gave up on "
                    f"({inp.blocked[dead]})",
                )
            )
        if task is None:
            continue
        until = inp.backoff_until.get(stream.id, 0.0)
        if until > now:
            continue
        if len(working) >= inp.max_working:
            continue
        host = host_of.get(stream.id)
        if host in host_caps and sum(host_of.get(w) == host for w in working) >= host_caps[host]:
            continue  # its host runs as many working agents as it may
        if cfg.stagger > 0 and (
            dispatched_now >= 1 or (inp.last_dispatch is not None and now - inp.last_dispatch < cfg.stagger)
        ):
            continue
        actions.append(Action("dispatch", f"dispatch:{stream.id}:{task.id}", stream.id, task.id))
        working.add(stream.id)
        dispatched_now += 1

    if (
        inp.land
        and inp.all_checkpoints_passed
        and "merge-phase" not in inp.journaled
        and not inp.dispatches
        and all(inp.task_states.get(t) == "done" for t in manifest.tasks())
    ):
        actions.append(
            Action("merge-phase", "merge-phase", text="every task done and every checkpoint passed")
        )
    return actions


WAIT_SECONDS = 120
"""How long a checkpoint its own collection found not ready leaves its streams unpaused before it is tried again."""


def checkpoint_wait_key(checkpoint: int, inputs: str, now: float) -> str:
    """The journal key recording that ``checkpoint`` was found not ready (per ``WAIT_SECONDS`` window)."""
    return f"checkpoint-wait:{checkpoint}:{inputs}:{int(now // WAIT_SECONDS)}"


def backoff_delay(base: float, level: int) -> float:
    """Seconds to wait at backoff ``level`` (1, 2, 3, ...): ``base`` doubled each level, at most a day."""
    return float(min(base * (2 ** max(0, level - 1)), 86400.0))


def past_cutoff(cutoff: str | None, now: _dt.datetime) -> bool:
    """Whether local time ``now`` is at or after ``cutoff`` (HH:MM) on its day."""
    if cutoff is None:
        return False
    hours, minutes = (int(p) for p in cutoff.split(":"))
    return (now.hour, now.minute) >= (hours, minutes)
