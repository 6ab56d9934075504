"""``sync morning`` and ``sync evening``: the day's coordination, from the facts of the phase."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coditect_cli.domain.limits import day_problem
from coditect_cli.domain.manifest import Manifest, Stream
from coditect_cli.domain.schedule import checkpoints_due, date_of, due_on, phase_day, previous_workday
from coditect_cli.domain.sync import (
    Action,
    Blocker,
    StreamDay,
    SyncReport,
    TaskView,
    derive_actions,
    markdown,
    section_lines,
    task_views,
)
from coditect_cli.errors import UsageError
from coditect_cli.project import Project
from coditect_cli.services.facts import BranchFacts, PhaseFacts, commits_since, gather

TEST_MARKERS = ("tests/", "test/", "__tests__/", "spec/")


@dataclass
class SyncResult:
    """A sync report, where its Markdown went, and what was sent to the panes."""

    report: SyncReport
    path: Path
    shown_path: str
    sent: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.report.to_json(),
            "report_path": self.shown_path,
            "sent": self.sent,
            "notes": self.notes,
        }


def resolve_day(manifest: Manifest, day: int | None, today: dt.date) -> int:
    """The phase day: ``--day`` when given, else from the schedule (an error before the phase starts)."""
    if day is not None:
        problem = day_problem(day)
        if problem:
            raise UsageError(problem)
        return day
    n = phase_day(manifest.schedule, today)
    if n == 0:
        raise UsageError(
            f"phase {manifest.phase} starts on {manifest.schedule.start}; today ({today}) is before day 1",
            hint="pass --day N to run the sync for a given phase day",
        )
    return n


def _pr_summary(facts: PhaseFacts, stream: str) -> dict[str, Any] | None:
    views = [v for k, v in facts.prs.items() if k.startswith(f"{stream}@") and v.pr is not None]
    if not views:
        return None
    shared_paths = sorted({p for v in views for n in v.needs for p in n.shared_paths})
    shared_owners = sorted({n.owner for v in views for n in v.needs if n.shared_paths})
    states = {v.checks_state for v in views}
    checks = (
        "failure"
        if "failure" in states
        else "pending"
        if "pending" in states
        else ("success" if "success" in states else "none")
    )
    return {
        "prs": [f"{v.repo}#{v.pr.number}" for v in views if v.pr is not None],
        "states": sorted({v.pr.state for v in views if v.pr is not None}),
        "approved": all(v.approved for v in views),
        "ready": all(v.ready for v in views),
        "checks": checks,
        "shared_paths": shared_paths,
        "shared_owners": shared_owners,
    }


def detect_blockers(facts: PhaseFacts, stream: Stream, today: list[TaskView]) -> list[Blocker]:
    """Everything that keeps ``stream`` from its work: declared blocks and the detected kinds."""
    manifest = facts.manifest
    integration = manifest.integration_branch
    owner_of = {d.id: s.id for s in manifest.streams for d in s.deliverables}
    out: list[Blocker] = []
    for b in facts.blocks:
        if b.stream == stream.id:
            on = f" (waiting on {b.on_stream})" if b.on_stream else ""
            out.append(Blocker("declared", f"{b.reason}{on}", b.on_stream, {"id": b.id}))
    for view in today:
        if view.blocked:
            givers = sorted({owner_of[d] for d in view.waiting_for})
            out.append(
                Blocker(
                    "dependency",
                    f"{view.task.id} waits for {', '.join(view.waiting_for)} ({', '.join(givers)})",
                    givers[0] if len(givers) == 1 and givers[0] != stream.id else None,
                    {"task": view.task.id, "waiting_for": list(view.waiting_for)},
                )
            )
    for branch in facts.stream_branches(stream.id):
        out += _branch_blockers(branch, integration)
    for key, pr_view in facts.prs.items():
        if not key.startswith(f"{stream.id}@") or pr_view.pr is None or pr_view.pr.state != "open":
            continue
        label = f"{pr_view.repo} PR #{pr_view.pr.number}"
        if pr_view.checks_state == "failure":
            failing = ", ".join(c.name for c in pr_view.checks if c.status == "failure")
            out.append(Blocker("checks", f"checks failing on {label}: {failing}", None, {"pr": label}))
        if pr_view.blocked_by:
            out.append(
                Blocker(
                    "changes-requested",
                    f"changes requested on {label} by {', '.join(pr_view.blocked_by)}",
                    None,
                    {"pr": label},
                )
            )
    pane = facts.panes.get(stream.id)
    if facts.session and pane is None:
        out.append(Blocker("agent", "no agent pane (it was closed)"))
    elif pane is not None and pane.dead and pane.dead_status != 0:
        # An agent that exited 0 finished its work; a failure or a kill leaves the stream without one.
        status = (
            f"status {pane.dead_status}" if pane.dead_status is not None else f"signal {pane.dead_signal}"
        )
        out.append(Blocker("agent", f"agent pane is dead ({status})", None, {"status": pane.dead_status}))
    agent = facts.agents.get(stream.id)
    if agent is not None and agent.state in {"waiting for approval", "blocked on dialog"}:
        # The agent cannot go on by itself: someone must answer it in its pane.
        what = f"{agent.state}: {agent.detail}" if agent.detail else agent.state
        out.append(Blocker("agent", f"agent is {what}", None, {"state": agent.state}))
    return out


def _branch_blockers(b: BranchFacts, integration: str) -> list[Blocker]:
    out: list[Blocker] = []
    if not b.exists:
        out.append(
            Blocker(
                "behind", f"{b.pair.branch} does not exist in {b.pair.repo.id} (run `coditect streams setup`)"
            )
        )
        return out
    if b.behind:
        out.append(
            Blocker(
                "behind",
                f"{b.pair.branch} is {b.behind} commit(s) behind {integration} in {b.pair.repo.id}",
                None,
                {"repo": b.pair.repo.id, "behind": b.behind},
            )
        )
    for other, paths in b.conflicts:
        on = None if other == "integration" else other
        out.append(
            Blocker(
                "conflict",
                f"{b.pair.repo.id}: conflicts with {other} on {', '.join(paths)}",
                on,
                {"repo": b.pair.repo.id, "paths": list(paths)},
            )
        )
    if b.violations:
        shown = ", ".join(f"{p} ({'/'.join(o) or 'no owner'})" for p, o in b.violations[:5])
        out.append(
            Blocker(
                "ownership",
                f"{len(b.violations)} file(s) outside its ownership in {b.pair.repo.id}: {shown}",
                None,
                {"repo": b.pair.repo.id, "paths": [p for p, _ in b.violations]},
            )
        )
    return out


def _report_path(project: Project, phase: str, day: int, kind: str) -> Path:
    return project.workstreams / "reports" / phase / f"day-{day:02d}-{kind}.md"


def _since(
    store: Any, phase: str, kind: str, day: int, today: dt.date, manifest: Manifest
) -> tuple[str, float, dict[str, str]]:
    """When "yesterday" starts: the last earlier-day sync of this kind (and the branch tips it saw), else
    the previous workday's start (and no tips)."""
    from coditect_cli.state.coordination import previous_sync
    from coditect_cli.state.store import parse_time

    found = previous_sync(store, phase, kind, day)
    if found:
        time, report = found
        tips = report.get("tips", {})
        return time, parse_time(time).timestamp(), tips if isinstance(tips, dict) else {}
    start = dt.datetime.combine(previous_workday(manifest.schedule, today), dt.time.min).astimezone()
    return start.isoformat(), start.timestamp(), {}


def morning(
    project: Project,
    phase: str | None,
    *,
    day: int | None = None,
    today: dt.date | None = None,
    socket: str | None = None,
    send: bool = False,
) -> SyncResult:
    """The morning sync: yesterday's commits, today's deliverables, blockers, checkpoints, actions."""
    return _sync("morning", project, phase, day=day, today=today, socket=socket, send=send)


def evening(
    project: Project,
    phase: str | None,
    *,
    day: int | None = None,
    today: dt.date | None = None,
    socket: str | None = None,
    run_gates: bool = False,
) -> SyncResult:
    """The end-of-day review: commits today, tests changed, gates, tomorrow, risks, orchestrator actions."""
    return _sync("evening", project, phase, day=day, today=today, socket=socket, run_gates=run_gates)


def _sync(
    kind: str,
    project: Project,
    phase: str | None,
    *,
    day: int | None,
    today: dt.date | None,
    socket: str | None,
    send: bool = False,
    run_gates: bool = False,
) -> SyncResult:
    from coditect_cli.services.manifest import load_valid
    from coditect_cli.services.setup import project_common_dir
    from coditect_cli.state.coordination import record_sync, sync_time
    from coditect_cli.state.store import Store

    now = today or dt.date.today()
    planned = load_valid(project, phase, with_repos=False).loaded.manifest
    n = resolve_day(planned, day, now)
    # Gates first: the checks they record are part of tonight's facts (a PR failing now is not ready).
    gate_notes: list[str] = []
    gate_results = _run_gates(project, planned, n, gate_notes) if run_gates else {}
    facts = gather(project, phase, socket=socket)
    manifest = facts.manifest
    common = project_common_dir(project)
    with Store.open(common) as store:
        tips: dict[str, str] = {}
        if kind == "morning":
            since_text, since, tips = _since(store, manifest.phase, "morning", n, now, manifest)
        else:
            morning_time = sync_time(store, manifest.phase, "morning", n)
            if morning_time:
                from coditect_cli.state.store import parse_time

                since_text, since = morning_time, parse_time(morning_time).timestamp()
            else:
                midnight = dt.datetime.combine(now, dt.time.min).astimezone()
                since_text, since = midnight.isoformat(), midnight.timestamp()
    views = task_views(manifest, facts.tasks)
    sections: list[StreamDay] = []
    for stream in manifest.ordered_streams():
        section = StreamDay(stream)
        for branch in facts.stream_branches(stream.id):
            previous = tips.get(branch.pair.key)
            seen = facts.reachable(branch.pair.repo.id, previous) if previous else None
            section.commits += commits_since(branch, since, seen)
        section.today = [views[d.id] for d in due_on(stream, n)]
        section.tomorrow = [views[d.id] for d in due_on(stream, n + 1)]
        section.blockers = detect_blockers(facts, stream, section.today)
        section.pr = _pr_summary(facts, stream.id)
        if stream.id in facts.spend:
            section.tokens = facts.spend[stream.id].usage.total
            section.cost_usd = facts.spend[stream.id].cost_usd
        if kind == "evening":
            section.tests_changed = _tests_changed(facts, stream.id, since)
            section.gates = gate_results.get(stream.id, [])
            section.risks = _risks(section, n)
        sections.append(section)
    report = SyncReport(
        kind,
        manifest.phase,
        manifest.title,
        n,
        manifest.schedule.days,
        _date_or(manifest, n, now),
        since_text,
        sections,
        checkpoints_due(manifest, n),
        checkpoints_due(manifest, n + 1),
    )
    report.actions = (
        derive_actions(manifest, report, views) if kind == "morning" else _evening_actions(report)
    )
    path = _report_path(project, manifest.phase, n, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(report), encoding="utf-8")
    with Store.open(common) as store:
        current = {key: b.head for key, b in facts.branches.items() if b.head}
        record_sync(store, manifest.phase, kind, n, {**report.to_json(), "tips": current})
    result = SyncResult(report, path, project.display(path), notes=[*gate_notes, *facts.notes])
    if send:
        result.sent = _send_sections(project, report, socket, result.notes)
    return result


def _date_or(manifest: Manifest, n: int, today: dt.date) -> dt.date:
    try:
        return date_of(manifest.schedule, n)
    except ValueError:
        return today


def _tests_changed(facts: PhaseFacts, stream: str, since: float) -> list[str]:
    out: list[str] = []
    for branch in facts.stream_branches(stream):
        for c in branch.commits:
            if c.time < math.floor(since):
                continue
            for f in c.files:
                name = f.rsplit("/", 1)[-1]
                is_test = (
                    any(m in f"/{f}" for m in ("/" + t for t in TEST_MARKERS))
                    or name.startswith("test_")
                    or ".test." in name
                    or ".spec." in name
                    or name.endswith("_test.py")
                )
                label = f"{branch.pair.repo.id}:{f}"
                if is_test and label not in out:
                    out.append(label)
    return out


def _risks(section: StreamDay, day: int) -> list[str]:
    risks = [f"{b.kind}: {b.message}" for b in section.blockers if b.kind != "declared"]
    late = [t.task.id for t in section.today if t.state != "done" and t.task.days.last <= day]
    if late:
        risks.append(f"due by today and not done: {', '.join(late)}")
    if not section.commits:
        risks.append("no commits today")
    return risks


def _evening_actions(report: SyncReport) -> list[Action]:
    actions: list[Action] = []
    for s in report.streams:
        if s.pr and s.pr.get("ready"):
            actions.append(
                Action(
                    "merge",
                    f"{s.stream.name}: {', '.join(s.pr['prs'])} approved and ready to merge "
                    "at the next checkpoint",
                    (s.stream.id,),
                )
            )
        elif s.pr and s.pr.get("approved") is False and "open" in s.pr.get("states", []):
            actions.append(
                Action(
                    "review",
                    f"{s.stream.name}: {', '.join(s.pr['prs'])} awaits code-owner approval",
                    (s.stream.id,),
                )
            )
    for cp in report.checkpoints_today:
        actions.append(
            Action(
                "checkpoint",
                f"Checkpoint {cp.id} is due today: run `coditect checkpoint {cp.id}`",
                tuple(cp.streams),
            )
        )
    for cp in report.checkpoints_tomorrow:
        actions.append(
            Action("checkpoint", f"Checkpoint {cp.id} is due tomorrow ({cp.title})", tuple(cp.streams))
        )
    return actions


def _run_gates(
    project: Project, manifest: Manifest, day: int, notes: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Run each stream's gates on the commit its worktree has checked out (HEAD), in a clean temporary
    worktree of that commit; log each and record its result as a check on that commit.

    A check counts for the exact tree it tested: uncommitted changes in a stream's worktree are not tested
    (a note says so), so a result on HEAD is always the result of HEAD's committed tree.
    """
    from coditect_cli.adapters.git import Git
    from coditect_cli.domain.gating import gate_specs
    from coditect_cli.domain.plan import worktree_path
    from coditect_cli.services.head_gates import gate_runner, run_on_commit
    from coditect_cli.services.prs import session
    from coditect_cli.services.setup import project_common_dir

    logs = project_common_dir(project) / "coditect" / "logs" / manifest.phase / f"day-{day:02d}"
    out: dict[str, list[dict[str, Any]]] = {}
    with session(project, manifest.phase) as s, gate_runner(s, f"evening~{manifest.phase}", logs) as runner:
        for stream in manifest.ordered_streams():
            pairs = {p.repo.id: p for p in manifest.pairs() if p.stream.id == stream.id}
            for spec in gate_specs(manifest, [stream.id]):
                pair = pairs.get(spec.repo)
                if pair is None:
                    continue
                worktree = worktree_path(manifest, project.root, pair)
                if not (worktree / ".git").exists():
                    # Deleted by hand (or never set up): nothing to run the gate on; say so for this stream.
                    for name in spec.names:
                        out.setdefault(stream.id, []).append(
                            {
                                "name": name,
                                "repo": spec.repo,
                                "passed": False,
                                "exit_code": None,
                                "log": None,
                                "error": f"no worktree at {worktree}; run `coditect streams setup {manifest.phase}`",
                            }
                        )
                    continue
                git = Git(worktree)
                head = git.out("rev-parse", "HEAD")
                dirty = bool(git.out("status", "--porcelain", "--untracked-files=normal"))
                if dirty:
                    note = (
                        f"{stream.id}@{spec.repo}: uncommitted changes in {project.display(worktree)} were not "
                        f"tested; the gates ran on its last commit {head[:12]} (commit to test them)"
                    )
                    if note not in notes:
                        notes.append(note)
                for run in run_on_commit(s, runner, spec.repo, head, [spec], stream.id):
                    for name in run.names:
                        out.setdefault(stream.id, []).append(
                            {
                                "name": name,
                                "repo": run.repo,
                                "commit": run.commit,
                                "dirty": dirty,
                                "passed": run.passed,
                                "exit_code": run.exit_code,
                                "log": run.log,
                            }
                        )
    return out


def _send_sections(project: Project, report: SyncReport, socket: str | None, notes: list[str]) -> list[str]:
    """Deliver each stream's own section to its own pane: one line, literally, then Enter."""
    from coditect_cli.errors import CoditectError
    from coditect_cli.services.streams import send_each

    texts: dict[str, str] = {}
    for section in report.streams:
        text = f"[coditect {report.kind} sync, day {report.day}] " + " | ".join(
            section_lines(report, section)[1:]
        )
        # A shell would run the text as a command: send it as a comment instead.
        texts[section.stream.id] = "# " + text if section.stream.run == "shell" else text
    try:
        result = send_each(project, report.phase, texts, socket=socket)
    except CoditectError as exc:  # no tmux, no session: one note, nothing sent
        notes.append(f"not sent to the panes: {exc.message}")
        return []
    notes += [f"not sent to {stream}: {why}" for stream, why in result.skipped.items()]
    return result.delivered
