"""``task list|start|done`` and ``block``/``unblock``: recorded progress and declared blockers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from coditect_cli.domain.manifest import Manifest
from coditect_cli.domain.sync import TaskView, task_views
from coditect_cli.errors import UsageError
from coditect_cli.project import Project
from coditect_cli.services.manifest import load_valid


@dataclass
class TaskList:
    """The tasks of a phase (or of one stream) with their state."""

    phase: str
    views: list[TaskView]

    def to_json(self) -> dict[str, Any]:
        done = sum(v.state == "done" for v in self.views)
        return {
            "phase": self.phase,
            "done": done,
            "total": len(self.views),
            "tasks": [v.to_json() for v in self.views],
        }


@dataclass
class TaskChange:
    """One task's state change."""

    phase: str
    stream: str
    task: str
    before: str
    after: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "stream": self.stream,
            "task": self.task,
            "from": self.before,
            "to": self.after,
            "notes": self.notes,
        }


def _store(project: Project) -> Any:
    from coditect_cli.services.setup import project_common_dir
    from coditect_cli.state.store import Store

    return Store.open(project_common_dir(project))


def _check_stream(manifest: Manifest, stream: str) -> None:
    if stream not in {s.id for s in manifest.streams}:
        raise UsageError(
            f"no stream {stream!r} in phase {manifest.phase} "
            f"(streams: {', '.join(s.id for s in manifest.streams)})"
        )


def list_tasks(project: Project, phase: str | None, stream: str | None = None) -> TaskList:
    """Every task (of ``stream`` when given), in manifest order, with recorded state and what blocks it."""
    from coditect_cli.state.coordination import task_states

    manifest = load_valid(project, phase, with_repos=False).loaded.manifest
    if stream is not None:
        _check_stream(manifest, stream)
    with _store(project) as store:
        views = task_views(manifest, task_states(store, manifest.phase))
    ordered = [views[d.id] for s in manifest.streams for d in s.deliverables if stream in (None, s.id)]
    return TaskList(manifest.phase, ordered)


def set_task(project: Project, phase: str | None, stream: str, task: str, state: str) -> TaskChange:
    """Record ``task`` of ``stream`` as ``state`` (in-progress or done); note unmet dependencies."""
    from coditect_cli.state.coordination import set_task_state, task_states

    manifest = load_valid(project, phase, with_repos=False).loaded.manifest
    _check_stream(manifest, stream)
    owned = {d.id for d in manifest.stream(stream).deliverables}
    if task not in owned:
        raise UsageError(
            f"stream {stream!r} has no task {task!r} (its tasks: {', '.join(sorted(owned)) or 'none'})"
        )
    with _store(project) as store:
        views = task_views(manifest, task_states(store, manifest.phase))
        before = set_task_state(store, manifest.phase, stream, task, state, f"task {state}")
    change = TaskChange(manifest.phase, stream, task, before or "todo", state)
    if views[task].waiting_for:
        change.notes.append(f"{task} depends on tasks not done yet: {', '.join(views[task].waiting_for)}")
    return change


def block(project: Project, phase: str | None, stream: str, why: str, on: str | None) -> dict[str, Any]:
    """Declare ``stream`` blocked, optionally waiting on stream ``on``."""
    from coditect_cli.state.coordination import add_block

    manifest = load_valid(project, phase, with_repos=False).loaded.manifest
    _check_stream(manifest, stream)
    if on is not None:
        _check_stream(manifest, on)
        if on == stream:
            raise UsageError("a stream cannot be blocked on itself")
    if not why.strip():
        raise UsageError("say why the stream is blocked")
    with _store(project) as store:
        block_id = add_block(store, manifest.phase, stream, why.strip(), on, "block")
    return {"phase": manifest.phase, "stream": stream, "reason": why.strip(), "on": on, "id": block_id}


def unblock(project: Project, phase: str | None, stream: str) -> dict[str, Any]:
    """Resolve every declared block of ``stream``."""
    from coditect_cli.state.coordination import resolve_blocks

    manifest = load_valid(project, phase, with_repos=False).loaded.manifest
    _check_stream(manifest, stream)
    with _store(project) as store:
        count = resolve_blocks(store, manifest.phase, stream, "unblock")
    return {"phase": manifest.phase, "stream": stream, "resolved": count}
