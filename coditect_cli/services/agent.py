"""The built-in agent (``run: anthropic``): one task of one stream, as a tool-using loop on the Messages API.

:func:`run_task` is the entry point (``coditect agent run``, a pane running ``run: anthropic``, and the
autopilot): it loads the stream, builds the prompt (a fixed system prompt, then the stream's prompt file as
the manifest context: the stable, cached prefix), and loops: ask the model, record the usage and its cost in
the state store, run the tools it called (:mod:`coditect_cli.services.agent_tools`), send their results back;
until the model ends its turn, ``max_turns`` is reached, the stream's budget is spent, or the API fails.

Every step goes to the task's transcript (JSON lines, ``<git-common-dir>/coditect/transcripts/<phase>/
<stream>/<task>.jsonl``): the new content of each request, the replies, tool calls and results, usage and
cost. Each line is scrubbed of the API key and of anything shaped like a credential before it is written.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from coditect_cli.adapters.llm import LLM, AnthropicLLM, LLMFailed, Request
from coditect_cli.adapters.proc import redact
from coditect_cli.domain.costs import BudgetState, Usage, budget_state, cost, price_for
from coditect_cli.domain.manifest import Manifest, Stream
from coditect_cli.errors import UsageError
from coditect_cli.project import Project
from coditect_cli.services.agent_tools import Area, Toolbox

TRANSCRIPTS_DIR = "transcripts"
STREAM_TASK = "stream"
"""The task id of a run not tied to a deliverable: the stream's prompt as a whole."""

TaskStatus = Literal["done", "max-turns", "over-budget", "failed"]

SYSTEM_PROMPT = """\
You are a coding agent working on one workstream of a larger project, alongside other agents who own other
paths. The context below names your worktrees, the paths you own, your task and the rules.

Work only through the tools. Read before you change; keep changes small and focused on the task. You may read
anything in your worktrees but write only inside the paths you own: a write elsewhere is refused. Run the
stream's gates with run_command before you commit, and commit your work with git_commit and a clear message.
When the task is done (or cannot be done), say so in a short final answer without calling a tool."""


@dataclass(frozen=True)
class TaskResult:
    """How one task run ended: the typed result the CLI renders and the autopilot acts on."""

    phase: str
    stream: str
    task: str
    status: TaskStatus
    reason: str
    turns: int
    usage: Usage
    cost_usd: float
    stream_cost_usd: float
    budget_usd: float | None
    budget: BudgetState
    commits: tuple[str, ...]
    changed: tuple[str, ...]
    transcript: Path
    final_text: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "stream": self.stream,
            "task": self.task,
            "status": self.status,
            "reason": self.reason,
            "turns": self.turns,
            "tokens": self.usage.to_json(),
            "cost_usd": round(self.cost_usd, 6),
            "stream_cost_usd": round(self.stream_cost_usd, 6),
            "budget_usd": self.budget_usd,
            "budget": self.budget,
            "commits": list(self.commits),
            "changed": list(self.changed),
            "transcript": str(self.transcript),
            "final_text": self.final_text,
            "warnings": list(self.warnings),
        }


def transcript_path(common: Path, phase: str, stream: str, task: str) -> Path:
    """Where the transcript of ``task`` of ``stream`` is kept."""
    return common / "coditect" / TRANSCRIPTS_DIR / phase / stream / f"{task}.jsonl"


class Transcript:
    """An append-only JSON-lines log of one task; every string is scrubbed before it is written."""

    def __init__(self, path: Path, scrub: Callable[[str], str]) -> None:
        self.path = path
        self._scrub = scrub
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = path.open("a", encoding="utf-8")

    def write(self, kind: str, **data: Any) -> None:
        line = json.dumps({"at": time.time(), "kind": kind, **data}, ensure_ascii=False, default=str)
        self._fh.write(self._scrub(line) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def read_transcript(path: Path) -> Iterator[dict[str, Any]]:
    """The entries of a transcript (a torn last line, from a killed run, is skipped)."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                yield entry


@dataclass
class _Loop:
    """The mutable state of one run."""

    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    turns: int = 0
    commits: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    final_text: str = ""


@dataclass(frozen=True)
class Setting:
    """What a run needs, resolved from the project: the manifest, the stream, its worktrees, the store dir."""

    manifest: Manifest
    stream: Stream
    areas: list[Area]
    common: Path
    task: str
    task_text: str
    context: str


def _stream(manifest: Manifest, stream_id: str) -> Stream:
    try:
        return manifest.stream(stream_id)
    except KeyError:
        known = ", ".join(s.id for s in manifest.streams)
        raise UsageError(f"no stream {stream_id!r} in phase {manifest.phase} (streams: {known})") from None


def resolve(project: Project, phase: str | None, stream_id: str, task: str | None) -> Setting:
    """The manifest, stream, worktrees and task of a run; UsageError when any is missing.

    The stream's prompt (as its pane would get it) is the context: with the system prompt and the tools, the
    stable prefix that every request of the task repeats and the API caches.
    """
    import datetime as dt

    from coditect_cli.domain.launch import render_prompt, stream_worktrees
    from coditect_cli.domain.plan import worktree_path
    from coditect_cli.domain.schedule import phase_day
    from coditect_cli.services.manifest import load_valid
    from coditect_cli.services.setup import project_common_dir

    manifest = load_valid(project, phase, with_repos=False).loaded.manifest
    stream = _stream(manifest, stream_id)
    paths = {pair.key: worktree_path(manifest, project.root, pair) for pair in manifest.pairs()}
    worktrees = stream_worktrees(manifest, stream, paths)
    missing = [str(w.path) for w in worktrees if not w.path.is_dir()]
    if missing:
        raise UsageError(
            f"stream {stream.id} has no worktree at {missing[0]}",
            hint=f"run `coditect streams setup {manifest.phase}` first",
        )
    context = render_prompt(manifest, stream, worktrees, phase_day(manifest.schedule, dt.date.today()))
    if task is None or task == STREAM_TASK:
        task_id, text = STREAM_TASK, "Work on this stream's task as described in the context."
    else:
        found = next((d for d in stream.deliverables if d.id == task), None)
        if found is None:
            known = ", ".join(d.id for d in stream.deliverables) or "none"
            raise UsageError(f"stream {stream.id} has no task {task!r} (its tasks: {known})")
        task_id, text = found.id, f"Your task now: [{found.id}] {found.title}. Do it, gate it, commit it."
    areas = [Area(w.repo, w.path, w.owns) for w in worktrees]
    return Setting(manifest, stream, areas, project_common_dir(project), task_id, text, context)


def _tool_blocks(content: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [b for b in content if b.get("type") == "tool_use"]


def _text_of(content: tuple[dict[str, Any], ...]) -> str:
    return "\n".join(str(b.get("text", "")) for b in content if b.get("type") == "text").strip()


def run_task(
    project: Project,
    phase: str | None,
    stream_id: str,
    task: str | None = None,
    *,
    llm: LLM | None = None,
    env: Mapping[str, str] | None = None,
    report: Callable[[str], None] | None = None,
    phase_budget_usd: float | None = None,
) -> TaskResult:
    """Run one task of ``stream_id`` with the built-in agent and return how it ended.

    ``llm`` defaults to the Anthropic API configured from ``env`` (``os.environ``): ``ANTHROPIC_API_KEY``,
    ``ANTHROPIC_BASE_URL``. ``report`` receives one line per step, for a pane or a log.
    ``phase_budget_usd`` (the autopilot's per-phase budget) is a hard stop beside the stream's ``budget_usd``.
    """
    from coditect_cli.state import agent_usage
    from coditect_cli.state.store import Store

    setting = resolve(project, phase, stream_id, task)
    manifest, stream, options = setting.manifest, setting.stream, setting.stream.anthropic
    source = os.environ if env is None else env
    client = llm if llm is not None else AnthropicLLM.from_environment(source)
    key = source.get("ANTHROPIC_API_KEY", "")

    def scrub(text: str) -> str:
        return redact(text.replace(key, "***") if key else text)

    say = report or (lambda _line: None)
    toolbox = Toolbox(manifest, stream, setting.areas)
    price, known = price_for(options.model, manifest.prices)
    path = transcript_path(setting.common, manifest.phase, stream.id, setting.task)
    log = Transcript(path, scrub)
    state = _Loop()
    if not known:
        state.warnings.append(f"no price for model {options.model}: costs use the dearest known model's")
    status: TaskStatus = "max-turns"
    reason = f"reached max_turns ({options.max_turns})"
    try:
        with Store.open(setting.common) as store:
            before = agent_usage.stream_spend(store, manifest.phase, stream.id).cost_usd
            phase_before = sum(s.cost_usd for s in agent_usage.phase_spend(store, manifest.phase).values())
            budgets = _Budgets(
                [("the stream", before, options.budget_usd), ("the phase", phase_before, phase_budget_usd)]
            )

            def spent() -> float:
                return before + state.cost

            log.write(
                "start", phase=manifest.phase, stream=stream.id, task=setting.task, model=options.model,
                system=SYSTEM_PROMPT, context=setting.context, tools=[t["name"] for t in toolbox.specs],
            )  # fmt: skip
            messages: list[dict[str, Any]] = [{"role": "user", "content": setting.task_text}]
            budgets.warnings(0.0)  # crossed before this run: no new warning
            try:
                over = budgets.over(0.0)
                if over:
                    status, reason = "over-budget", over
                    raise _Stop
                for _ in range(options.max_turns):
                    log.write("request", turn=state.turns + 1, content=messages[-1]["content"])
                    request = Request(
                        options.model,
                        options.max_tokens,
                        SYSTEM_PROMPT,
                        setting.context,
                        toolbox.specs,
                        messages,
                    )
                    reply = client.complete(request)
                    state.turns += 1
                    request_cost = cost(reply.usage, price)
                    state.usage = state.usage + reply.usage
                    state.cost += request_cost
                    agent_usage.record(
                        store, manifest.phase, stream.id, setting.task, reply.model, reply.usage, request_cost
                    )
                    log.write(
                        "reply", turn=state.turns, content=list(reply.content), stop_reason=reply.stop_reason,
                        usage=reply.usage.to_json(), cost_usd=request_cost, attempts=reply.attempts,
                        waits=list(reply.waits),
                    )  # fmt: skip
                    say(f"turn {state.turns}: {reply.stop_reason}, ${state.cost:.4f} so far")
                    messages.append({"role": "assistant", "content": list(reply.content)})
                    over = budgets.over(state.cost)
                    if over:
                        status, reason = "over-budget", over
                        break
                    for note in budgets.warnings(state.cost):
                        state.warnings.append(note)
                        log.write("warning", message=note)
                        say(f"warning: {note}")
                    calls = _tool_blocks(reply.content)
                    if not calls:
                        status, reason = "done", "the agent ended its turn"
                        state.final_text = _text_of(reply.content)
                        break
                    results = [_run_tool(toolbox, call, state, log, say) for call in calls]
                    messages.append({"role": "user", "content": results})
            except _Stop:
                pass
            except LLMFailed as exc:
                status, reason = "failed", scrub(exc.message)
                log.write("error", message=reason, attempts=exc.attempts, waited=exc.waited)
            stream_cost = spent()
            log.write(
                "end", status=status, reason=reason, turns=state.turns, usage=state.usage.to_json(),
                cost_usd=state.cost, stream_cost_usd=stream_cost,
            )  # fmt: skip
    finally:
        log.close()
    say(f"{status}: {reason}")
    return TaskResult(
        phase=manifest.phase,
        stream=stream.id,
        task=setting.task,
        status=status,
        reason=reason,
        turns=state.turns,
        usage=state.usage,
        cost_usd=state.cost,
        stream_cost_usd=stream_cost,
        budget_usd=options.budget_usd,
        budget=budget_state(stream_cost, options.budget_usd),
        commits=tuple(state.commits),
        changed=tuple(dict.fromkeys(state.changed)),
        transcript=path,
        final_text=state.final_text,
        warnings=tuple(state.warnings),
    )


class _Budgets:
    """The hard stops of a run: (what, spent before the run, budget) for the stream and the phase."""

    def __init__(self, limits: list[tuple[str, float, float | None]]) -> None:
        self.limits = [(what, before, limit) for what, before, limit in limits if limit is not None]
        self.warned: set[str] = set()

    def over(self, run_cost: float) -> str | None:
        """Why the run must stop after spending ``run_cost``, or None."""
        for what, before, limit in self.limits:
            if budget_state(before + run_cost, limit) == "over":
                return f"{what}'s budget of ${limit:g} is spent (${before + run_cost:.4f})"
        return None

    def warnings(self, run_cost: float) -> list[str]:
        """A warning for each budget that has just reached 80 %."""
        out: list[str] = []
        for what, before, limit in self.limits:
            if what not in self.warned and budget_state(before + run_cost, limit) == "warning":
                self.warned.add(what)
                out.append(f"{what} has spent ${before + run_cost:.4f} of its ${limit:g} budget (80%)")
        return out


class _Stop(Exception):
    """Ends the loop before the first request."""


def _run_tool(
    toolbox: Toolbox, call: dict[str, Any], state: _Loop, log: Transcript, say: Callable[[str], None]
) -> dict[str, Any]:
    name = str(call.get("name", ""))
    args = call.get("input") if isinstance(call.get("input"), dict) else {}
    assert isinstance(args, dict)
    result = toolbox.call(name, args)
    state.changed += result.changed
    if result.commit:
        state.commits.append(result.commit)
    log.write("tool", id=call.get("id"), name=name, input=args, result=result.text, is_error=result.is_error)
    say(
        f"  {name}: {'refused/failed: ' if result.is_error else ''}{result.text.splitlines()[0] if result.text else ''}"
    )
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call.get("id"), "content": result.text}
    if result.is_error:
        block["is_error"] = True
    return block


def transcript_entries(
    project: Project, phase: str | None, stream_id: str, task: str | None
) -> tuple[Path, list[dict[str, Any]]]:
    """The transcript of ``task`` of ``stream_id`` (default: the most recently written one) and its entries."""
    from coditect_cli.services.manifest import load_valid
    from coditect_cli.services.setup import project_common_dir

    manifest = load_valid(project, phase, with_repos=False).loaded.manifest
    _stream(manifest, stream_id)
    folder = transcript_path(project_common_dir(project), manifest.phase, stream_id, "x").parent
    if task is not None:
        path = folder / f"{task}.jsonl"
    else:
        found = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns) if folder.is_dir() else []
        if not found:
            raise UsageError(
                f"stream {stream_id} has no agent transcript yet", hint=f"coditect agent run {stream_id}"
            )
        path = found[-1]
    if not path.is_file():
        raise UsageError(f"stream {stream_id} has no transcript for task {task!r}")
    return path, list(read_transcript(path))
