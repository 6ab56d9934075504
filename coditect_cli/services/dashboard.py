"""``coditect status``: the progress dashboard of the guide — per stream and for the whole phase."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from coditect_cli.domain.schedule import phase_day
from coditect_cli.project import Project
from coditect_cli.services.facts import PhaseFacts, gather


@dataclass(frozen=True)
class StreamRow:
    """One stream's line of the dashboard."""

    stream: str
    name: str
    terminal: int
    done: int
    total: int
    blocked_tasks: tuple[str, ...]
    prs: tuple[str, ...]
    pr_state: str  # none | open | approved | ready | merged | changes-requested
    ahead: int
    behind: int
    conflicts: int
    agent: str  # the agent's state (working, idle, waiting for approval, ...) | exited N | no pane | not launched
    tokens: int = 0  # the built-in agent's tokens (all kinds) in this phase
    cost_usd: float = 0.0

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "name": self.name,
            "terminal": self.terminal,
            "done": self.done,
            "total": self.total,
            "percent": self.percent,
            "blocked_tasks": list(self.blocked_tasks),
            "prs": list(self.prs),
            "pr_state": self.pr_state,
            "ahead": self.ahead,
            "behind": self.behind,
            "conflicts": self.conflicts,
            "agent": self.agent,
            "tokens": self.tokens,
            "cost_usd": round(self.cost_usd, 6),
        }


@dataclass(frozen=True)
class CheckpointRow:
    """A checkpoint on the timeline."""

    id: int
    day: int
    title: str
    state: str  # passed | failed | due | overdue | upcoming

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "day": self.day, "title": self.title, "state": self.state}


@dataclass
class Dashboard:
    """The whole phase at a glance."""

    phase: str
    title: str
    day: int
    days: int
    rows: list[StreamRow]
    checkpoints: list[CheckpointRow]
    notes: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return sum(r.done for r in self.rows)

    @property
    def total(self) -> int:
        return sum(r.total for r in self.rows)

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def cost_usd(self) -> float:
        """The built-in agent's cost over every stream."""
        return sum(r.cost_usd for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "tokens": sum(r.tokens for r in self.rows),
            "cost_usd": round(self.cost_usd, 6),
            "title": self.title,
            "day": self.day,
            "days": self.days,
            "done": self.done,
            "total": self.total,
            "percent": self.percent,
            "streams": [r.to_json() for r in self.rows],
            "checkpoints": [c.to_json() for c in self.checkpoints],
            "notes": self.notes,
        }


def _pr_state(facts: PhaseFacts, stream: str) -> tuple[tuple[str, ...], str]:
    views = [v for k, v in facts.prs.items() if k.startswith(f"{stream}@") and v.pr is not None]
    if not views:
        return (), "none"
    labels = tuple(f"{v.repo}#{v.pr.number}" for v in views if v.pr is not None)
    open_views = [v for v in views if v.pr is not None and v.pr.state == "open"]
    if not open_views:
        return labels, "merged" if all(
            v.pr is not None and v.pr.state == "merged" for v in views
        ) else "closed"
    if any(v.blocked_by for v in open_views):
        return labels, "changes-requested"
    if all(v.ready for v in open_views):
        return labels, "ready"
    if all(v.approved for v in open_views):
        return labels, "approved"
    return labels, "open"


def _agent(facts: PhaseFacts, stream: str) -> str:
    pane = facts.panes.get(stream)
    if pane is None:
        return "no pane" if facts.session else "not launched"
    state = facts.agents.get(stream)
    if not pane.dead:
        return state.label if state is not None else "running"
    return (
        f"exited {pane.dead_status}"
        if pane.dead_status is not None
        else f"killed (signal {pane.dead_signal})"
    )


def tagged_checkpoints(project: Project, phase: str) -> set[int]:
    """Checkpoints tagged ``checkpoint/<phase>/<N>`` in the superproject (passed, perhaps by hand)."""
    from coditect_cli.adapters.git import Git

    out: set[int] = set()
    for name in Git(project.root).refs(f"refs/tags/checkpoint/{phase}/"):
        last = name.rsplit("/", 1)[-1]
        if last.isdigit():
            out.add(int(last))
    return out


def _timeline_state(recorded: str | None, day: int, today: int) -> str:
    """passed or failed as recorded by `coditect checkpoint`; else due, overdue or upcoming by the day."""
    if recorded in ("passed", "failed"):
        return recorded
    return "due" if day == today else "overdue" if day < today else "upcoming"


def dashboard(
    project: Project,
    phase: str | None,
    *,
    day: int | None = None,
    today: dt.date | None = None,
    socket: str | None = None,
) -> Dashboard:
    """Read the phase and lay out the dashboard."""
    from coditect_cli.domain.limits import day_problem
    from coditect_cli.domain.sync import task_views
    from coditect_cli.errors import UsageError

    problem = day_problem(day) if day is not None else None
    if problem:
        raise UsageError(problem)
    facts = gather(project, phase, socket=socket)
    m = facts.manifest
    n = day if day is not None else phase_day(m.schedule, today or dt.date.today())
    views = task_views(m, facts.tasks)
    rows: list[StreamRow] = []
    for s in m.ordered_streams():
        tasks = [views[d.id] for d in s.deliverables]
        branches = facts.stream_branches(s.id)
        labels, state = _pr_state(facts, s.id)
        rows.append(
            StreamRow(
                s.id,
                s.name,
                s.terminal,
                done=sum(t.state == "done" for t in tasks),
                total=len(tasks),
                blocked_tasks=tuple(t.task.id for t in tasks if t.blocked),
                prs=labels,
                pr_state=state,
                ahead=sum(b.ahead for b in branches),
                behind=max((b.behind for b in branches), default=0),
                conflicts=sum(len(b.conflicts) for b in branches),
                agent=_agent(facts, s.id),
                tokens=facts.spend[s.id].usage.total if s.id in facts.spend else 0,
                cost_usd=facts.spend[s.id].cost_usd if s.id in facts.spend else 0.0,
            )
        )
    tagged = tagged_checkpoints(project, m.phase)
    checkpoints = [
        CheckpointRow(
            c.id,
            c.day,
            c.title,
            _timeline_state(facts.checkpoints.get(c.id) or ("passed" if c.id in tagged else None), c.day, n),
        )
        for c in sorted(m.checkpoints, key=lambda c: (c.day, c.id))
    ]
    return Dashboard(m.phase, m.title, n, m.schedule.days, rows, checkpoints, list(facts.notes))
