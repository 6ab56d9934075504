"""``coditect autopilot``: passes of gather facts -> decide -> act -> journal.

Each pass reads the phase (:func:`coditect_cli.services.facts.gather`: branches, PRs with reviews and checks,
predicted conflicts, tasks, checkpoints), the agents' states (:class:`AgentPort`), the autopilot's own records
and the forge events received since the last pass, lets :func:`coditect_cli.domain.autopilot.decide` choose the
actions, and carries them out one by one: each is journaled under its key first (the journal refuses a key it
has seen), then done, then marked done. A pass killed half-way leaves its action ``planned``; the next pass
finds it, checks whether it took effect (a message: did the agent receive it?) and finishes it, so nothing is
sent twice and nothing is lost.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from coditect_cli.domain.autopilot import (
    Action,
    AgentView,
    CheckpointDue,
    Condition,
    FiredView,
    OpenDispatch,
    PassInput,
    backoff_delay,
    checkpoint_wait_key,
    decide,
    past_cutoff,
    task_prompt,
)
from coditect_cli.domain.autopilot_config import default_max_working
from coditect_cli.errors import CoditectError
from coditect_cli.project import Project

if TYPE_CHECKING:
    from coditect_cli.domain.manifest import Manifest, Stream
    from coditect_cli.services.facts import PhaseFacts
    from coditect_cli.state.autopilot_records import Dispatch
    from coditect_cli.state.store import Store

COMMAND = "autopilot"
KILL_ENV = "CODITECT_TEST_AUTOPILOT_KILL"
"""Test hook: ``<n>:planned`` (the n-th action of this process journaled, not carried out) or ``<n>:acted``
(carried out, not yet marked done) makes the autopilot SIGKILL itself there. It has no other use."""
_RATE_LIMIT = re.compile(r"rate.?limit|overloaded|\b429\b|\b529\b|usage limit", re.IGNORECASE)
LOG_TAIL_LINES = 15


class AgentPort(Protocol):
    """What the autopilot needs from the agents in the panes."""

    def states(self, manifest: Manifest) -> dict[str, AgentView]:
        """Every stream's agent state."""
        ...

    def deliver(self, manifest: Manifest, stream: str, text: str) -> str:
        """Give ``text`` to the stream's agent: ``delivered``, ``queued``, ``held`` or ``not sent: why``."""
        ...

    def arrived(self, manifest: Manifest, stream: str, text: str) -> bool:
        """Whether ``text`` reached the agent (evidence for finishing an action a killed pass left open)."""
        ...

    def headless(self, manifest: Manifest, stream: str) -> bool:
        """Whether the stream's agent runs without a pane, one process per task."""
        ...

    def dispatch(self, manifest: Manifest, stream: str, task: str, text: str) -> str:
        """Give ``task`` (its prompt ``text``) to the stream's agent; answers like :meth:`deliver`."""
        ...


@dataclass
class ActionOutcome:
    """One action of a pass and what came of it."""

    action: Action
    outcome: str
    ok: bool = True
    journal_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.action.to_json(),
            "outcome": self.outcome,
            "ok": self.ok,
            "journal_id": self.journal_id,
        }


@dataclass
class PassReport:
    """What one autopilot pass saw and did."""

    phase: str
    time: float
    dry_run: bool
    max_working: int
    agents: dict[str, AgentView]
    dispatches: dict[str, OpenDispatch]
    outcomes: list[ActionOutcome] = field(default_factory=list)
    recovered: list[ActionOutcome] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    backoff: dict[str, float] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    spent_usd: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "time": self.time,
            "dry_run": self.dry_run,
            "max_working": self.max_working,
            "working": sorted(
                s
                for s, a in self.agents.items()
                if a.state in {"starting", "working"} or s in self.dispatches
            ),
            "agents": {
                s: {"state": a.state, "detail": a.detail, "dispatchable": a.dispatchable}
                for s, a in self.agents.items()
            },
            "dispatches": {
                s: {"task": d.task, "attempt": d.attempt, "id": d.id} for s, d in self.dispatches.items()
            },
            "actions": [o.to_json() for o in self.outcomes],
            "recovered": [o.to_json() for o in self.recovered],
            "conditions": [
                {"key": c.key, "kind": c.kind, "stream": c.stream, "text": c.text} for c in self.conditions
            ],
            "backoff": self.backoff,
            "tasks": self.tasks,
            "blocked": self.blocked,
            "notes": self.notes,
            "spent_usd": round(self.spent_usd, 6),
        }


@dataclass
class Autopilot:
    """One autopilot over one phase: the project, the agents, and how to run checkpoints."""

    project: Project
    phase: str | None
    agents: AgentPort
    socket: str | None = None
    land: bool = False
    clock: Callable[[], float] = time.time
    env: Mapping[str, str] | None = None
    day: int | None = None  # the phase day (default: today's)
    acted: int = 0  # actions journaled by this process (for the kill hook)

    # ------------------------------------------------------------------------------------------ one pass

    def run_pass(self, *, dry_run: bool = False) -> PassReport:
        """Gather, decide, act, journal: one pass."""
        from coditect_cli.services.facts import gather
        from coditect_cli.services.setup import project_common_dir
        from coditect_cli.state import autopilot_records as rec
        from coditect_cli.state.agent_usage import phase_spend
        from coditect_cli.state.coordination import task_states
        from coditect_cli.state.journal_records import checkpoint_statuses
        from coditect_cli.state.store import Store

        # The agents' states come from the port below (one read of the panes per pass, not two).
        facts = gather(
            self.project, self.phase, socket=self.socket, watch=True, env=self.env, with_panes=False
        )
        manifest = facts.manifest
        now = self.clock()
        agents = self.agents.states(manifest)
        with Store.open(project_common_dir(self.project)) as store:
            recovered = [] if dry_run else self._recover(store, manifest, facts, agents)
            self._note_rate_limits(store, manifest, agents, now, dry_run)
            states = task_states(store, manifest.phase)
            dispatches = rec.open_dispatches(store, manifest.phase)
            blocked = rec.blocked_tasks(store, manifest.phase)
            backoff = {s: b.until for s, b in rec.backoffs(store, manifest.phase).items()}
            fired = {
                k: FiredView(f.fired, f.last_fired, f.escalated)
                for k, f in rec.fired(store, manifest.phase).items()
            }
            conditions = conditions_from(facts, store)
            statuses = checkpoint_statuses(store, manifest.phase)
            journaled = frozenset(
                rec.action_keys(store, manifest.phase, "checkpoint")
                | rec.action_keys(store, manifest.phase, "merge-phase")
            )
            last = rec.last_dispatch_time(store, manifest.phase)
            spent = sum(sp.cost_usd for sp in phase_spend(store, manifest.phase).values())
        from coditect_cli.state.store import parse_time

        open_views = {
            s: OpenDispatch(d.id, s, d.task, d.attempt, parse_time(d.dispatched).timestamp(), d.next_at)
            for s, d in dispatches.items()
        }
        inp = PassInput(
            manifest=manifest,
            now=now,
            max_working=max_working(manifest),
            agents=agents,
            task_states=states,
            blocked=blocked,
            dispatches=open_views,
            backoff_until=backoff,
            last_dispatch=parse_time(last).timestamp() if last else None,
            conditions=conditions,
            fired=fired,
            checkpoints=checkpoints_due(facts, statuses, now, self.day),
            journaled=journaled,
            land=self.land,
            all_checkpoints_passed=all(statuses.get(c.id) == "passed" for c in manifest.checkpoints),
            spent_usd=spent,
        )
        report = PassReport(
            manifest.phase,
            now,
            dry_run,
            inp.max_working,
            dict(agents),
            open_views,
            recovered=recovered,
            conditions=list(conditions),
            backoff={s: u for s, u in backoff.items() if u > now},
            tasks=dict(states),
            blocked=dict(blocked),
            notes=list(facts.notes),
            spent_usd=spent,
        )
        for action in decide(inp):
            if dry_run:
                report.outcomes.append(ActionOutcome(action, "would do"))
                continue
            report.outcomes.append(self._act(manifest, facts, action, dispatches))
        if not dry_run:
            with Store.open(project_common_dir(self.project)) as store:
                report.dispatches = {
                    s: OpenDispatch(
                        d.id, s, d.task, d.attempt, parse_time(d.dispatched).timestamp(), d.next_at
                    )
                    for s, d in rec.open_dispatches(store, manifest.phase).items()
                }
                report.tasks = task_states(store, manifest.phase)
                report.blocked = rec.blocked_tasks(store, manifest.phase)
        return report

    # --------------------------------------------------------------------------------------- journaling

    def _journaled(
        self,
        manifest: Manifest,
        action: Action,
        detail: Mapping[str, Any],
        body: Callable[[int], tuple[bool, str]],
    ) -> ActionOutcome:
        """Journal ``action`` (planned), run ``body(journal id)``, mark it done or failed."""
        from coditect_cli.services.setup import project_common_dir
        from coditect_cli.state import autopilot_records as rec
        from coditect_cli.state.store import Store

        with Store.open(project_common_dir(self.project)) as store:
            action_id = rec.plan_action(
                store, manifest.phase, action.key, action.kind, action.stream, dict(detail)
            )
        if action_id is None:
            return ActionOutcome(action, "done already (journaled)", True)
        self.acted += 1
        _kill_hook(self.acted, "planned")
        try:
            ok, outcome = body(action_id)
        except CoditectError as exc:
            ok, outcome = False, exc.message
        _kill_hook(self.acted, "acted")
        with Store.open(project_common_dir(self.project)) as store:
            rec.finish_action(store, action_id, "done" if ok else "failed", outcome)
        return ActionOutcome(action, outcome, ok, action_id)

    def _act(
        self, manifest: Manifest, facts: PhaseFacts, action: Action, dispatches: Mapping[str, Dispatch]
    ) -> ActionOutcome:
        if action.kind == "dispatch":
            return self._dispatch(manifest, facts, action)
        if action.kind == "verify":
            return self._verify(manifest, action)
        if action.kind in {"react", "notify", "escalate"}:
            return self._react(manifest, action)
        if action.kind == "checkpoint":
            return self._checkpoint(manifest, action)
        if action.kind == "merge-phase":
            return self._merge_phase(manifest, action)
        return self._journaled(manifest, action, {"text": action.text}, lambda _id: (True, action.text))

    # ---------------------------------------------------------------------------------------- dispatch

    def _dispatch(self, manifest: Manifest, facts: PhaseFacts, action: Action) -> ActionOutcome:
        from coditect_cli.services.setup import project_common_dir
        from coditect_cli.state import autopilot_records as rec
        from coditect_cli.state.coordination import set_task_state
        from coditect_cli.state.store import Store

        assert action.stream is not None and action.task is not None
        stream = manifest.stream(action.stream)
        task = next(d for d in stream.deliverables if d.id == action.task)
        base = {b.pair.repo.id: b.head or "" for b in facts.stream_branches(stream.id)}
        owned = {w.repo: list(w.owns) for w in stream.work}
        text = task_prompt(
            manifest, stream, task, owned=owned, upstream=upstream_notes(manifest, facts, task)
        )

        def body(action_id: int) -> tuple[bool, str]:
            marked = f"{text} [coditect autopilot #{action_id}]"
            with Store.open(project_common_dir(self.project)) as store, store.transaction():
                rec.start_dispatch(store, manifest.phase, stream.id, task.id, base)
                set_task_state(store, manifest.phase, stream.id, task.id, "in-progress", COMMAND)
            how = self.agents.dispatch(manifest, stream.id, task.id, marked)
            return not how.startswith("not sent"), f"[{task.id}] {how}"

        return self._journaled(manifest, action, {"text": text, "task": task.id}, body)

    # ------------------------------------------------------------------------------------------ verify

    def _verify(self, manifest: Manifest, action: Action) -> ActionOutcome:
        from coditect_cli.services.setup import project_common_dir
        from coditect_cli.state import autopilot_records as rec
        from coditect_cli.state.coordination import add_block, set_task_state
        from coditect_cli.state.store import Store

        assert action.stream is not None and action.task is not None
        stream = manifest.stream(action.stream)
        cfg = manifest.autopilot

        def body(action_id: int) -> tuple[bool, str]:
            with Store.open(project_common_dir(self.project)) as store:
                dispatch = rec.open_dispatches(store, manifest.phase).get(stream.id)
            if dispatch is None:
                return True, "no open dispatch"
            headless = self.agents.headless(manifest, stream.id)
            if headless:
                push_own_branches(self.project, manifest, stream)  # the built-in agent commits, never pushes
            problems = verify_done(self.project, manifest, stream, dispatch.base)
            now = self.clock()
            with Store.open(project_common_dir(self.project)) as store:
                if not problems:
                    with store.transaction():
                        rec.close_dispatch(store, dispatch.id, "done")
                        set_task_state(store, manifest.phase, stream.id, dispatch.task, "done", COMMAND)
                    return True, f"[{dispatch.task}] verified done{self._open_pr(manifest, stream.id)}"
                agents = self.agents.states(manifest)
                gone = not headless and agents.get(
                    stream.id, AgentView(stream.id, "missing", False)
                ).state in {
                    "exited",
                    "missing",
                }
                if dispatch.attempt > cfg.retries or gone:
                    why = f"[{dispatch.task}] not done after {dispatch.attempt} attempt(s): " + "; ".join(
                        problems
                    )
                    if gone:
                        why += " (the agent is not running)"
                    with store.transaction():
                        rec.close_dispatch(store, dispatch.id, "blocked", why)
                        add_block(store, manifest.phase, stream.id, why, None, COMMAND)
                    return True, why
                rec.retry_dispatch(
                    store,
                    dispatch.id,
                    now + backoff_delay(cfg.backoff, dispatch.attempt),
                    "; ".join(problems),
                )
            text = (
                f"coditect autopilot: [{dispatch.task}] is not done yet (check {dispatch.attempt} of "
                f"{cfg.retries + 1}): "
                + " ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
                + f" Fix this, then stop. [coditect autopilot #{action_id}]"
            )
            if headless:  # no pane to tell: the task is run again (the agent finds its earlier work)
                how = self.agents.dispatch(manifest, stream.id, dispatch.task, text)
            else:
                how = self.agents.deliver(manifest, stream.id, text)
            return True, f"[{dispatch.task}] not done: {'; '.join(problems)} (told: {how})"

        return self._journaled(manifest, action, {"task": action.task}, body)

    def _open_pr(self, manifest: Manifest, stream: str) -> str:
        """Open the stream's PRs after verified work (an open one is reported, never duplicated)."""
        from coditect_cli.services.prs import open_prs

        try:
            report = open_prs(self.project, manifest.phase, stream, None, env=self.env)
        except CoditectError as exc:
            return f"; PR not opened: {exc.message}"
        opened = [f"{o.repo}#{o.pr.number}" for o in report.outcomes if o.pr is not None and o.created]
        return f"; opened {', '.join(opened)}" if opened else ""

    # --------------------------------------------------------------------------------------- reactions

    def _react(self, manifest: Manifest, action: Action) -> ActionOutcome:
        from coditect_cli.services.setup import project_common_dir
        from coditect_cli.state import autopilot_records as rec
        from coditect_cli.state.coordination import add_block
        from coditect_cli.state.store import Store

        assert action.stream is not None
        event = str(action.detail.get("event", ""))
        kind = str(action.detail.get("kind", ""))

        def body(action_id: int) -> tuple[bool, str]:
            now = self.clock()
            if action.kind == "escalate":
                with Store.open(project_common_dir(self.project)) as store, store.transaction():
                    add_block(
                        store, manifest.phase, str(action.stream), f"escalated: {action.text}", None, COMMAND
                    )
                    store.execute(
                        "UPDATE autopilot_reactions SET escalated = 1 WHERE phase = ? AND key = ?",
                        [manifest.phase, event],
                    )
                return True, "escalated: recorded as a blocker"
            how = "reported"
            if action.kind == "react":
                how = self.agents.deliver(
                    manifest, str(action.stream), f"{action.text} [coditect autopilot #{action_id}]"
                )
            with Store.open(project_common_dir(self.project)) as store:
                rec.record_firing(store, manifest.phase, event, kind, str(action.stream), now, escalate=False)
            return not how.startswith("not sent"), how

        return self._journaled(manifest, action, {"text": action.text, "event": event, "kind": kind}, body)

    # ------------------------------------------------------------------------------ checkpoint, merge

    def _checkpoint(self, manifest: Manifest, action: Action) -> ActionOutcome:
        from coditect_cli.services.checkpoint import run_checkpoint

        n = int(action.detail["checkpoint"])
        streams = [str(s) for s in action.detail.get("streams", [])]
        # The checkpoint's own collection first (fresh heads and approvals): a PR of its streams that is not
        # ready after all (an approval gone stale by a push since the pass looked) waits for the next pass,
        # rather than the checkpoint passing without it.
        try:
            planned = run_checkpoint(
                self.project, manifest.phase, n, socket=self.socket, env=self.env, dry_run=True
            )
        except CoditectError as exc:
            return ActionOutcome(action, f"checkpoint {n} cannot run: {exc.message}", False)
        waiting = [p for p in planned.not_ready if p.get("stream") in streams]
        if waiting or not planned.batch:
            why = "; ".join(f"{p.get('repo')}#{p.get('number')}: {p.get('reason')}" for p in waiting)
            outcome = f"checkpoint {n} waits: {why or 'nothing to merge'}"
            # Recorded, so its streams are not held paused for a checkpoint that cannot run yet.
            from coditect_cli.services.setup import project_common_dir
            from coditect_cli.state import autopilot_records as rec
            from coditect_cli.state.store import Store

            inputs = action.key.split(":")[2]
            with Store.open(project_common_dir(self.project)) as store:
                wait_id = rec.plan_action(
                    store,
                    manifest.phase,
                    checkpoint_wait_key(n, inputs, self.clock()),
                    "note",
                    None,
                    {"text": outcome},
                )
                if wait_id is not None:
                    rec.finish_action(store, wait_id, "done", outcome)
            return ActionOutcome(action, outcome, True)

        def body(action_id: int) -> tuple[bool, str]:
            result = run_checkpoint(self.project, manifest.phase, n, socket=self.socket, env=self.env)
            merged = ", ".join(f"{m['repo']}#{m['number']}" for m in result.merged) or "nothing"
            left = ", ".join(f"{m['repo']}#{m['number']}" for m in result.left_out)
            text = f"coditect autopilot: checkpoint {n} {result.status}; merged {merged}" + (
                f"; left out {left}" if left else ""
            )
            text += "; work resumes: continue with your task. "
            for stream in streams:
                self.agents.deliver(manifest, stream, f"{text}[coditect autopilot #{action_id}]")
            return result.status == "passed", text

        return self._journaled(manifest, action, {"checkpoint": n, "streams": streams}, body)

    def _merge_phase(self, manifest: Manifest, action: Action) -> ActionOutcome:
        from coditect_cli.services.merge_phase import merge_phase

        def body(_id: int) -> tuple[bool, str]:
            result = merge_phase(self.project, manifest.phase, land=True, socket=self.socket, env=self.env)
            return result.status in {"landed", "proposed"}, f"merge-phase {result.status}"

        return self._journaled(manifest, action, {}, body)

    # ----------------------------------------------------------------------------------------- recovery

    def _recover(
        self, store: Store, manifest: Manifest, facts: PhaseFacts, agents: Mapping[str, AgentView]
    ) -> list[ActionOutcome]:
        """Finish the actions a killed pass left ``planned``: a message that arrived is marked done, one that
        did not is sent now; verification and reactions without a message are simply finished."""
        from coditect_cli.state import autopilot_records as rec

        out: list[ActionOutcome] = []
        for record in rec.open_actions(store, manifest.phase):
            action = Action(
                record.kind,  # type: ignore[arg-type]
                record.key,
                record.stream,
                record.detail.get("task"),
                str(record.detail.get("text", "")),
                record.detail,
            )
            outcome = "finished after a restart"
            if record.kind in {"dispatch", "react"} and record.stream:
                marked = f"{record.detail.get('text', '')} [coditect autopilot #{record.id}]"
                if self.agents.arrived(manifest, record.stream, marked):
                    outcome = "had arrived before the restart"
                else:
                    outcome = "sent after a restart: " + self.agents.deliver(manifest, record.stream, marked)
                if record.kind == "react":
                    rec.record_firing(
                        store,
                        manifest.phase,
                        str(record.detail.get("event", "")),
                        str(record.detail.get("kind", "")),
                        record.stream,
                        self.clock(),
                        escalate=False,
                    )
                if record.kind == "dispatch" and record.stream not in rec.open_dispatches(
                    store, manifest.phase
                ):
                    from coditect_cli.state.coordination import set_task_state

                    base = {b.pair.repo.id: b.head or "" for b in facts.stream_branches(record.stream)}
                    with store.transaction():
                        rec.start_dispatch(
                            store, manifest.phase, record.stream, str(record.detail.get("task")), base
                        )
                        set_task_state(
                            store,
                            manifest.phase,
                            record.stream,
                            str(record.detail.get("task")),
                            "in-progress",
                            COMMAND,
                        )
            rec.finish_action(store, record.id, "done", outcome)
            out.append(ActionOutcome(action, outcome, True, record.id))
        return out

    def _note_rate_limits(
        self, store: Store, manifest: Manifest, agents: Mapping[str, AgentView], now: float, dry_run: bool
    ) -> None:
        """A rate-limit or overload signal from an agent holds its stream back, exponentially longer each time."""
        from coditect_cli.state import autopilot_records as rec

        if dry_run:
            return
        phase = manifest.phase
        held = rec.backoffs(store, phase)
        cfg_backoff = manifest.autopilot.backoff
        for stream, agent in agents.items():
            if not _RATE_LIMIT.search(agent.detail or ""):
                continue
            previous = held.get(stream)
            if previous is not None and previous.until > now:
                continue
            level = (previous.level if previous else 0) + 1
            rec.set_backoff(
                store, phase, stream, level, now + backoff_delay(cfg_backoff, level), agent.detail[:200]
            )


def _kill_hook(n: int, point: str) -> None:
    wanted = os.environ.get(KILL_ENV)
    if wanted and wanted == f"{n}:{point}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------------------------------- facts


def max_working(manifest: Manifest) -> int:
    """``autopilot.max_working``, else what this machine holds (cores and memory)."""
    if manifest.autopilot.max_working is not None:
        return manifest.autopilot.max_working
    cores = os.cpu_count() or 1
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory_gb = 8.0
    return default_max_working(cores, memory_gb)


def upstream_notes(manifest: Manifest, facts: PhaseFacts, task: Any) -> list[str]:
    """What the tasks ``task`` depends on produced: their stream's branch and the files it changed."""
    out: list[str] = []
    tasks = manifest.tasks()
    for dep in task.depends_on:
        if dep not in tasks:
            continue
        stream, deliverable = tasks[dep]
        for branch in facts.stream_branches(stream.id):
            files = ", ".join(branch.changed[:8]) + (" ..." if len(branch.changed) > 8 else "")
            out.append(
                f"[{dep}] {deliverable.title} by {stream.id} on {branch.pair.branch} ({branch.pair.repo.id})"
                + (f": {files}" if files else "")
            )
    return out


def _tail(log: str | None) -> str:
    """The last lines of a check's log (a file path or the text itself)."""
    if not log:
        return ""
    text = log
    if "\n" not in log and len(log) < 4096:
        try:
            path = Path(log)
            if path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            pass
    lines = [line for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-LOG_TAIL_LINES:])[:1500]


def conditions_from(facts: PhaseFacts, store: Store) -> list[Condition]:
    """Every event whose condition holds now, with the evidence its stream needs."""
    from coditect_cli.domain.conflicts import INTEGRATION
    from coditect_cli.forge.base import latest_verdicts, verdict_of
    from coditect_cli.services.events import check_condition, check_kind, review_condition
    from coditect_cli.state.forge_records import checks as stored_checks

    m = facts.manifest
    out: list[Condition] = []
    passed_any = any(v == "passed" for v in facts.checkpoints.values())
    tips: dict[str, str] = {}
    integration = m.integration_branch
    for key, branch in facts.branches.items():
        stream, repo = branch.pair.stream, branch.pair.repo.id
        if not branch.exists or branch.head is None:
            continue
        view = facts.prs.get(key)
        head = branch.head
        gate_names = {g.name for g in stream.gates}
        activity = view.activity if view is not None and view.pr is not None else None
        if activity is not None and activity.head_sha != head:
            activity = None  # read for another commit (the branch moved since the forge was asked)
        # name -> (status, summary, log, url): coditect's own results (gate logs) first, then the forge's
        # evidence (check runs with their output, statuses with their description), then its bare checks.
        results: dict[str, tuple[str, str, str | None, str | None]] = {}
        for rec in stored_checks(store, repo, [head]):
            results[rec.name] = (rec.status, "", rec.log, getattr(rec, "url", None))
        for ev in activity.checks if activity is not None else ():
            results.setdefault(ev.name, (ev.status, ev.summary, ev.log, ev.url))
        if view is not None and view.pr is not None and view.pr.head_sha == head:
            for check in view.checks:
                results.setdefault(check.name, (check.status, "", check.log, check.url))
        for name, (status, summary, log, url) in sorted(results.items()):
            if status == "failure":
                out.append(
                    check_condition(
                        stream.id,
                        repo,
                        branch.pair.branch,
                        head,
                        name,
                        check_kind(name, gate_names),
                        summary=summary,
                        log=_tail(log),
                        url=url,
                    )
                )
        if view is not None and view.pr is not None and view.pr.state == "open":
            # The forge's reviews with their text (GitHub's activity, whatever head it was read at), else the
            # listing's.
            reviews = view.activity.reviews if view.activity is not None else view.reviews
            verdicts = latest_verdicts(reviews)
            for review in reviews:
                if (
                    review.state != "changes_requested"
                    or verdict_of(verdicts, review.reviewer) != "changes_requested"
                ):
                    continue
                if view.pr.head_sha and review.head_sha and review.head_sha != view.pr.head_sha:
                    continue  # the stream pushed since: the reviewer has to look again, not the agent
                out.append(
                    review_condition(
                        stream.id,
                        repo,
                        view.pr.number,
                        review.reviewer,
                        review.body,
                        event=f"review-{review.id}"
                        if review.id is not None
                        else f"{review.reviewer}:{review.time}",
                        url=review.url or view.pr.url,
                    )
                )
            out += _comment_conditions(store, facts, key, branch)
        for other, paths in branch.conflicts:
            mover = stream.id if other == INTEGRATION else _mover(m, stream.id, other)
            if mover != stream.id:
                continue
            target = integration if other == INTEGRATION else f"{other}'s branch"
            # Keyed by what conflicts, not by the head: new commits that leave the conflict in place are the
            # same condition (it fires again after its interval, then escalates), not a new one.
            out.append(
                Condition(
                    f"conflict_predicted:{repo}:{stream.id}:{other}:{','.join(sorted(paths))}",
                    "conflict_predicted",
                    stream.id,
                    f"coditect autopilot: your branch {branch.pair.branch} ({repo}) will conflict with {target} on "
                    f"{', '.join(paths[:10])}. Update your branch from origin/{integration}, keep your side of "
                    f"your own files, and coordinate with {other} before you go on.",
                )
            )
        if passed_any and branch.behind > 0:
            if repo not in tips:  # one look-up per repository, however many of its branches are behind
                tips[repo] = _integration_tip(facts, repo)
            tip = tips[repo]
            out.append(
                Condition(
                    f"behind_integration:{repo}:{stream.id}:{tip[:12]}",
                    "behind_integration",
                    stream.id,
                    f"coditect autopilot: {branch.pair.branch} ({repo}) is {branch.behind} commit(s) behind "
                    f"{integration} after a checkpoint: update your branch from origin/{integration} "
                    f"(`git fetch origin && git merge origin/{integration}`), run your gates and push.",
                )
            )
    out += _forge_event_conditions(facts, store)
    # One event seen twice (polled and delivered by a webhook: the same key) is one condition.
    return list({c.key: c for c in reversed(out)}.values())[::-1]


def _mover(manifest: Manifest, a: str, b: str) -> str:
    """Of two streams predicted to conflict, the one that should move: the later in terminal order."""
    order = {s.id: i for i, s in enumerate(manifest.ordered_streams())}
    return max((a, b), key=lambda s: order.get(s, -1))


def _integration_tip(facts: PhaseFacts, repo: str) -> str:
    """The integration branch's tip in ``repo`` (origin's, else the local branch)."""
    from coditect_cli.adapters.git import Git

    g = Git((facts.project.root / facts.manifest.repository(repo).path).resolve())
    ref = _integration_ref(g, facts.manifest.integration_branch)
    return g.out("rev-parse", ref) if ref else ""


def _comment_conditions(store: Store, facts: PhaseFacts, key: str, branch: Any) -> list[Condition]:
    """Review comments on the stream's PR newer than the branch's last commit, with their file and line: the
    local forge's from the store, GitHub's from the PR's activity."""
    from coditect_cli.services.events import comment_condition
    from coditect_cli.state import forge_records
    from coditect_cli.state.store import parse_time

    view = facts.prs.get(key)
    if view is None or view.pr is None:
        return []
    if view.activity is not None:
        found = [
            (c.id, c.author, c.body, c.path, c.line, c.time, c.url, c.commit) for c in view.activity.comments
        ]
    elif view.forge == "local":
        record = forge_records.pull_request(store, view.repo, view.pr.number)
        if record is None:
            return []
        found = [
            (c.id, c.author, c.body, getattr(c, "path", None), getattr(c, "line", None), c.time, None, None)
            for c in forge_records.comments(store, record.id)
        ]
    else:
        return []
    newest = max((c.time for c in branch.commits), default=0)
    out: list[Condition] = []
    for comment_id, author, body, path, line, time_, url, commit in found:
        if author in {"coditect", ""} or body.startswith("coditect"):
            continue
        # A comment made on the branch's head waits for a commit, whatever the clocks say (times have whole
        # seconds: a comment in the second of the last commit is not older than it).
        on_head = commit is not None and commit == branch.head
        if not on_head and time_ and parse_time(time_).timestamp() <= newest:
            continue  # the stream committed after it
        out.append(
            comment_condition(
                branch.pair.stream.id,
                view.repo,
                view.pr.number,
                author,
                body,
                comment_id=comment_id,
                path=path,
                line=line,
                url=url,
            )
        )
    return out


def _forge_event_conditions(facts: PhaseFacts, store: Store) -> list[Condition]:
    """Conditions from webhook deliveries that still hold (their commit is the branch's head)."""
    from coditect_cli.services.events import condition_of
    from coditect_cli.state.autopilot_records import forge_events

    out: list[Condition] = []
    for event in forge_events(store):
        cond = condition_of(facts, event)
        if cond is not None:
            out.append(cond)
    return out


def checkpoints_due(
    facts: PhaseFacts, statuses: Mapping[int, str], now: float, day: int | None = None
) -> list[CheckpointDue]:
    """Checkpoints whose day has come and that have not passed, with whether their PRs are ready."""
    import datetime as dt

    from coditect_cli.domain.launch import phase_day

    m = facts.manifest
    local = dt.datetime.fromtimestamp(now)
    if day is None:
        day = phase_day(m.schedule, local.date())
    out: list[CheckpointDue] = []
    for cp in sorted(m.checkpoints, key=lambda c: (c.day, c.id)):
        if statuses.get(cp.id) == "passed" or cp.day > day:
            continue
        # What the checkpoint would merge: the open PRs of its streams (work not proposed waits).
        views = [
            v
            for v in facts.prs.values()
            if v.stream in cp.streams and v.pr is not None and v.pr.state == "open"
        ]
        ready = bool(views) and all(v.ready for v in views)
        heads = sorted(f"{v.repo}:{v.pr.head_sha if v.pr else '-'}" for v in views)
        digest = hashlib.sha256("|".join(heads).encode()).hexdigest()[:12]
        out.append(
            CheckpointDue(
                cp.id,
                tuple(cp.streams),
                ready,
                past_cutoff(m.autopilot.checkpoint_cutoff, local) and bool(views),
                digest,
            )
        )
        break  # checkpoints go in order: the next waits for this one
    return out


# --------------------------------------------------------------------------------------------- verify done


def verify_done(project: Project, manifest: Manifest, stream: Stream, base: Mapping[str, str]) -> list[str]:
    """What keeps the stream's task from being done, with the evidence; empty when it is verified done:
    new commits since the dispatch, every worktree clean, the branch pushed, only the stream's own paths
    changed, and the stream's gates green on the committed tree."""
    from coditect_cli.adapters.git import Git
    from coditect_cli.domain.manifest import RepoId
    from coditect_cli.domain.ownership import ownership
    from coditect_cli.domain.ownership_check import check_branch
    from coditect_cli.domain.plan import worktree_path
    from coditect_cli.services.streams import read_work

    problems: list[str] = []
    rules = ownership(manifest)
    heads: dict[str, str] = {}
    moved = False
    paths: dict[str, Path] = {}
    for pair in (p for p in manifest.pairs() if p.stream.id == stream.id):
        tree = worktree_path(manifest, project.root, pair)
        paths[pair.repo.id] = (project.root / pair.repo.path).resolve()
        work = read_work(pair.repo.id, tree)
        if not work.exists:
            problems.append(f"the worktree {tree} is missing")
            continue
        if work.changes:
            problems.append(
                f"uncommitted changes in {pair.repo.id}: {', '.join(work.changes[:8])} - commit them"
            )
        g = Git(tree)
        head = g.out("rev-parse", f"refs/heads/{pair.branch}")
        heads[pair.repo.id] = head
        start = base.get(pair.repo.id) or ""
        if start and start != head:
            moved = True
            # The branch's own changes (against where it meets the integration branch): what an update from
            # the integration branch brought in is not the stream's.
            since = _integration_ref(g, manifest.integration_branch) or start
            changed = tuple(g.out("diff", "--name-only", f"{since}...{head}").splitlines())
            verdict = check_branch(pair, rules[RepoId(pair.repo.id)], changed)
            for v in verdict.violations:
                problems.append(
                    f"{v.path} ({pair.repo.id}) belongs to {', '.join(v.owners) or 'no stream'}, not to you - revert it"
                )
        elif not start:
            moved = True
        if work.unpushed:
            problems.append(
                f"{pair.branch} ({pair.repo.id}) has {work.unpushed} commit(s) not on origin - push them"
            )
        elif work.upstream is None:
            problems.append(f"{pair.branch} ({pair.repo.id}) has no upstream on origin - push it")
    if not moved:
        problems.insert(0, "no new commit on your branch since the task was given - commit your work")
    if problems:
        return problems
    return _gate_problems(project, manifest, stream, heads, paths)


def push_own_branches(project: Project, manifest: Manifest, stream: Stream) -> None:
    """Push the stream's branches that have commits origin lacks (a fast-forward of its own branch)."""
    from coditect_cli.adapters.git import Git
    from coditect_cli.domain.plan import worktree_path
    from coditect_cli.services.streams import read_work

    for pair in (p for p in manifest.pairs() if p.stream.id == stream.id):
        tree = worktree_path(manifest, project.root, pair)
        work = read_work(pair.repo.id, tree)
        if work.exists and work.branch == pair.branch and (work.unpushed or work.upstream is None):
            Git(tree).run("push", "--quiet", "-u", "origin", pair.branch, check=False)


def _integration_ref(g: Any, name: str) -> str | None:
    """origin's integration branch, else the local one (None when neither exists)."""
    for ref in (f"refs/remotes/origin/{name}", f"refs/heads/{name}"):
        if g.run("rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0:
            return ref
    return None


def _gate_problems(
    project: Project, manifest: Manifest, stream: Stream, heads: Mapping[str, str], paths: Mapping[str, Path]
) -> list[str]:
    """The stream's gates on its committed heads, in clean temporary worktrees."""
    from coditect_cli.domain.gating import gate_specs
    from coditect_cli.services.setup import project_common_dir
    from coditect_cli.services.staging import GateRunner

    specs = gate_specs(manifest, [stream.id])
    if not specs:
        return []
    logs = project_common_dir(project) / "coditect" / "logs" / manifest.phase / "autopilot"
    runner = GateRunner(
        paths, f"{manifest.phase}-autopilot", logs, {"CODITECT_PHASE": manifest.phase}, manifest.pass_env
    )
    problems: list[str] = []
    try:
        for repo in sorted({s.repo for s in specs}):
            if repo not in heads:
                continue
            ok, ran = runner.run(repo, heads[repo], [s for s in specs if s.repo == repo], stream.id)
            if not ok:
                last = ran[-1]
                problems.append(
                    f"the gate `{last['gate']}` fails on {heads[repo][:10]} ({repo}): {_tail(str(last['log']))}"
                )
    finally:
        runner.close()
    return problems


# ------------------------------------------------------------------------------------------------- loop


def loop(
    pilot: Autopilot,
    *,
    once: bool,
    dry_run: bool,
    on_pass: Callable[[PassReport], None],
    wake: Callable[[float], None] | None = None,
    passes: int | None = None,
) -> int:
    """Run passes until stopped (KeyboardInterrupt), ``once``, or after ``passes``; returns the passes run.

    Passes start ``autopilot.poll`` seconds apart (the time a pass takes is part of the interval, not added to
    it): an event waits at most one interval before a pass starts that sees it."""
    count = 0
    while True:
        started = time.monotonic()
        report = pilot.run_pass(dry_run=dry_run)
        on_pass(report)
        count += 1
        if once or dry_run or (passes is not None and count >= passes):
            return count
        poll = _poll_interval(pilot)
        (wake or time.sleep)(max(0.0, poll - (time.monotonic() - started)))


def _poll_interval(pilot: Autopilot) -> float:
    from coditect_cli.services.manifest import load_valid

    try:
        return load_valid(pilot.project, pilot.phase, with_repos=False).loaded.manifest.autopilot.poll
    except CoditectError:
        return 10.0
