"""The daily coordination reports (the guide's "Daily Coordination Workflow"), as pure data.

The service gathers facts — commits, tasks, PRs, panes, conflicts — and hands them here; this module
decides what is a blocker, derives the coordination actions, and renders the Markdown report. Nothing here
touches git, tmux or a forge.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from coditect_cli.domain.manifest import Checkpoint, Deliverable, Manifest, Stream
from coditect_cli.domain.text import neutralise

BLOCKER_KINDS = (
    "declared",  # `coditect block STREAM "why" [--on OTHER]`
    "dependency",  # a task this stream works on today waits for a task not done yet
    "behind",  # the feature branch lacks commits of the integration branch
    "checks",  # failing checks on the stream's PR
    "changes-requested",  # a reviewer asked for changes on the stream's PR
    "conflict",  # a predicted textual conflict with another branch or the integration branch
    "ownership",  # the branch changes files its stream does not own
    "agent",  # the stream's agent pane is dead
    "missing-branch",  # the stream's feature branch does not exist yet
)


@dataclass(frozen=True)
class Commit:
    """A commit on a stream's feature branch."""

    repo: str
    sha: str
    subject: str
    time: str  # ISO-8601

    def to_json(self) -> dict[str, str]:
        return {"repo": self.repo, "sha": self.sha, "subject": self.subject, "time": self.time}


@dataclass(frozen=True)
class Blocker:
    """Something that keeps a stream from its work today."""

    kind: str
    message: str
    on: str | None = None  # the stream that can unblock it, when one can
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in BLOCKER_KINDS:
            raise ValueError(f"unknown blocker kind {self.kind!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "on": self.on,
            **({"detail": self.detail} if self.detail else {}),
        }


@dataclass(frozen=True)
class TaskView:
    """A task (deliverable) with its recorded state and, when blocked, what it waits for."""

    stream: str
    task: Deliverable
    state: str  # todo | in-progress | done
    waiting_for: tuple[str, ...] = ()  # task ids not done yet

    @property
    def blocked(self) -> bool:
        return self.state != "done" and bool(self.waiting_for)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.task.id,
            "stream": self.stream,
            "title": self.task.title,
            "days": str(self.task.days),
            "state": "blocked" if self.blocked else self.state,
            "waiting_for": list(self.waiting_for),
        }


def task_views(manifest: Manifest, states: dict[str, str]) -> dict[str, TaskView]:
    """Every task with its state (``states`` by task id; missing means todo) and unmet dependencies."""
    owner = {d.id: s.id for s in manifest.streams for d in s.deliverables}
    views: dict[str, TaskView] = {}
    for stream in manifest.streams:
        for d in stream.deliverables:
            waiting = tuple(dep for dep in d.depends_on if states.get(dep) != "done" and dep in owner)
            views[d.id] = TaskView(stream.id, d, states.get(d.id, "todo"), waiting)
    return views


@dataclass
class StreamDay:
    """One stream's section of a sync report."""

    stream: Stream
    commits: list[Commit] = field(default_factory=list)
    today: list[TaskView] = field(default_factory=list)
    tomorrow: list[TaskView] = field(default_factory=list)
    blockers: list[Blocker] = field(default_factory=list)
    pr: dict[str, Any] | None = None
    tests_changed: list[str] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    risks: list[str] = field(default_factory=list)
    tokens: int = 0  # the built-in agent's tokens and cost in this phase so far
    cost_usd: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream.id,
            "name": self.stream.name,
            "agent": self.stream.role,
            "terminal": self.stream.terminal,
            "commits": [c.to_json() for c in self.commits],
            "today": [t.to_json() for t in self.today],
            "tomorrow": [t.to_json() for t in self.tomorrow],
            "blockers": [b.to_json() for b in self.blockers],
            "pr": self.pr,
            "tests_changed": self.tests_changed,
            "gates": self.gates,
            "risks": self.risks,
            "tokens": self.tokens,
            "cost_usd": round(self.cost_usd, 6),
        }


@dataclass(frozen=True)
class Action:
    """A coordination action: who must do what, for whom."""

    kind: str  # handoff | update | shared-approval | checkpoint | conflict | review | unblock | restart
    text: str
    streams: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "streams": list(self.streams)}


@dataclass
class SyncReport:
    """A morning or evening sync of one phase day."""

    kind: str  # morning | evening
    phase: str
    title: str
    day: int
    days: int
    date: dt.date
    since: str | None
    streams: list[StreamDay]
    checkpoints_today: list[Checkpoint] = field(default_factory=list)
    checkpoints_tomorrow: list[Checkpoint] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        def cp(c: Checkpoint) -> dict[str, Any]:
            return {"id": c.id, "day": c.day, "title": c.title, "streams": list(c.streams)}

        return {
            "kind": self.kind,
            "phase": self.phase,
            "day": self.day,
            "days": self.days,
            "date": self.date.isoformat(),
            "since": self.since,
            "streams": [s.to_json() for s in self.streams],
            "checkpoints_today": [cp(c) for c in self.checkpoints_today],
            "checkpoints_tomorrow": [cp(c) for c in self.checkpoints_tomorrow],
            "actions": [a.to_json() for a in self.actions],
        }


def derive_actions(manifest: Manifest, report: SyncReport, views: dict[str, TaskView]) -> list[Action]:
    """The coordination actions that follow from the streams' blockers and the checkpoints due."""
    actions: list[Action] = []
    seen: set[str] = set()

    def add(action: Action) -> None:
        if action.text not in seen:
            seen.add(action.text)
            actions.append(action)

    by_id = {s.stream.id: s for s in report.streams}
    for section in report.streams:
        sid = section.stream.id
        for b in section.blockers:
            if b.kind == "dependency":
                for dep in b.detail.get("waiting_for", []):
                    view = views.get(dep)
                    if view is None or view.stream == sid:
                        continue
                    giver = manifest.stream(view.stream)
                    add(
                        Action(
                            "handoff",
                            f"{giver.name} provides “{view.task.title}” ({dep}) to {section.stream.name}"
                            f" (needed for {b.detail.get('task')})",
                            (view.stream, sid),
                        )
                    )
            elif b.kind == "behind":
                add(
                    Action(
                        "update",
                        f"{section.stream.name} updates from {manifest.integration_branch} ({b.message})",
                        (sid,),
                    )
                )
            elif b.kind == "changes-requested":
                add(
                    Action(
                        "review",
                        f"{section.stream.name} addresses the changes requested on {b.detail.get('pr', 'its PR')}",
                        (sid,),
                    )
                )
            elif b.kind == "checks":
                add(Action("review", f"{section.stream.name} fixes the failing checks: {b.message}", (sid,)))
            elif b.kind == "conflict":
                other = b.on
                if other:
                    pair = sorted((sid, other))
                    add(
                        Action(
                            "conflict",
                            f"{manifest.stream(pair[0]).name} and {manifest.stream(pair[1]).name} "
                            f"agree on {', '.join(b.detail.get('paths', [])) or 'the conflicting files'} "
                            "before either merges",
                            tuple(pair),
                        )
                    )
                else:
                    add(
                        Action(
                            "update",
                            f"{section.stream.name} merges {manifest.integration_branch} and resolves "
                            f"{', '.join(b.detail.get('paths', []))}",
                            (sid,),
                        )
                    )
            elif b.kind == "ownership":
                add(
                    Action("handoff", f"{section.stream.name} hands {b.message} to the owning stream", (sid,))
                )
            elif b.kind == "missing-branch":
                add(Action("setup", "run `coditect streams setup` to create the missing branches", (sid,)))
            elif b.kind == "agent":
                add(Action("restart", f"restart {section.stream.name}'s agent ({b.message})", (sid,)))
            elif b.kind == "declared" and b.on:
                add(
                    Action(
                        "unblock",
                        f"{manifest.stream(b.on).name} unblocks {section.stream.name}: {b.message}",
                        (b.on, sid),
                    )
                )
        if section.pr and section.pr.get("shared_paths"):
            owners = section.pr.get("shared_owners", [])
            add(
                Action(
                    "shared-approval",
                    f"{', '.join(section.pr['shared_paths'])} changed by {section.stream.name} needs approval from "
                    f"{' and '.join(owners) or 'all its owners'}",
                    (sid,),
                )
            )
    for cp in [*report.checkpoints_today, *report.checkpoints_tomorrow]:
        when = "today" if cp in report.checkpoints_today else "tomorrow"
        not_ready = [
            s for s in cp.streams if s in by_id and (by_id[s].blockers or not _pr_ready(by_id[s].pr))
        ]
        if not_ready:
            names = ", ".join(manifest.stream(s).name for s in not_ready)
            add(
                Action(
                    "checkpoint",
                    f"Checkpoint {cp.id} ({when}, day {cp.day}: {cp.title}) needs {names} ready: "
                    "PR approved by its code owners, checks green, no blockers",
                    tuple(not_ready),
                )
            )
        else:
            add(
                Action(
                    "checkpoint",
                    f"Checkpoint {cp.id} ({when}, day {cp.day}: {cp.title}): all its streams are ready",
                    tuple(cp.streams),
                )
            )
    return actions


def _pr_ready(pr: dict[str, Any] | None) -> bool:
    if not pr:
        return False
    return bool(pr.get("approved")) and pr.get("checks") in ("success", "none")


def section_lines(report: SyncReport, s: StreamDay) -> list[str]:
    """One stream's section of the report (heading and lines)."""
    lines = [f"## {s.stream.name} ({s.stream.role})"]
    if report.kind == "morning":
        done = "; ".join(c.subject for c in s.commits) or "no commits"
        lines.append(f"✅ Yesterday: {done}")
        lines.append(f"🎯 Today: {'; '.join(_task_text(t) for t in s.today) or 'no deliverable due'}")
    else:
        lines.append(f"✅ Pushed today: {'; '.join(c.subject for c in s.commits) or 'no commits'}")
        lines.append(f"🧪 Tests added/changed: {', '.join(s.tests_changed) or 'none'}")
        if s.gates:
            gates = ", ".join(
                f"{g['name']} {'✅' if g['passed'] else '❌'}"
                + (f" ({g['error']})" if g.get("error") else "")
                for g in s.gates
            )
            lines.append(f"🚦 Gates: {gates}")
        lines.append(f"🎯 Tomorrow: {'; '.join(_task_text(t) for t in s.tomorrow) or 'no deliverable due'}")
        lines.append(f"⚠️ Risks: {'; '.join(s.risks) or 'None'}")
    lines.append(f"🚧 Blockers: {'; '.join(b.message for b in s.blockers) or 'None'}")
    if s.tokens:
        lines.append(f"💰 Agent: {s.tokens:,} tokens, ${s.cost_usd:.2f} this phase")
    return lines


def markdown(report: SyncReport) -> str:
    """The report as Markdown, shaped like the guide's Daily Sync example."""
    kind = "Daily Sync" if report.kind == "morning" else "End of Day Review"
    lines = [f"# {kind} - Day {report.day} ({report.title or report.phase})", ""]
    lines += [f"_{report.date.isoformat()} · day {report.day} of {report.days} · phase {report.phase}_", ""]
    for s in report.streams:
        lines += [*section_lines(report, s), ""]
    spent = [s for s in report.streams if s.tokens]
    if spent:
        tokens, dollars = sum(s.tokens for s in spent), sum(s.cost_usd for s in spent)
        lines += [f"💰 Agents this phase: {tokens:,} tokens, ${dollars:.2f}", ""]
    title = "Coordination Actions" if report.kind == "morning" else "Orchestrator Actions"
    lines.append(f"## {title}:")
    lines += [f"{i}. {a.text}" for i, a in enumerate(report.actions, 1)] or ["None."]
    lines += ["", "## Integration Checkpoints"]
    cps = [("today", c) for c in report.checkpoints_today] + [
        ("tomorrow", c) for c in report.checkpoints_tomorrow
    ]
    lines += [
        f"- Checkpoint {c.id} ({when}, day {c.day}): {c.title} — streams {', '.join(c.streams)}"
        for when, c in cps
    ] or ["- None today or tomorrow."]
    # Titles, reasons and commit subjects come from agents and git: no escape sequence into the report.
    return neutralise("\n".join(lines) + "\n")


def _task_text(view: TaskView) -> str:
    state = "blocked" if view.blocked else view.state
    suffix = "" if state == "todo" else f" [{state}]"
    return f"{view.task.title}{suffix}"
