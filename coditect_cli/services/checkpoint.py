"""``coditect checkpoint N``: merge the ready PRs of the checkpoint's streams only when the merged result
passes the gates, and move the integration branch to exactly the commit that passed.

The plan (journaled, see :mod:`coditect_cli.services.journal`): ``pause`` (announce it in the streams'
panes), ``collect`` (the ready PRs: approved by every code owner they need, checks not failing, mergeable;
their heads frozen; an integration tip coditect did not gate is refused unless adopted with ``--adopt-tip``),
``gate`` (stage them on the integration tips in order, terminal then repository, with
the manifest's strategy, leaving out those that conflict; run the checkpoint's and the streams' gates on
exactly those trees; bisect a failing batch to the PR to blame), ``land`` and ``tag`` per repository
(``checkpoint/<phase>/N``), ``notify`` (the streams whose PRs were left out: PR comment, failing check, pane),
``report`` (``workstreams/reports/<phase>/checkpoint-N.md`` and the store), ``resume``. The machinery is in
:mod:`coditect_cli.services.staging` and :mod:`coditect_cli.services.gating`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from coditect_cli.domain.gating import GateSpec, StepRecord
from coditect_cli.errors import ExitCode, UsageError
from coditect_cli.project import Project
from coditect_cli.services.gating import (
    Integration,
    Resume,
    TreeMismatch,
    landed,
    mark_aborted,
    passed_checkpoints,
    report_path,
    run_journaled,
    write_report,
    write_result,
)
from coditect_cli.services.journal import Handler, Journal, StepContext, Undo
from coditect_cli.services.prs import Session

__all__ = ["CheckpointResult", "Resume", "TreeMismatch", "run_checkpoint"]


@dataclass
class CheckpointResult:
    """What ``coditect checkpoint N`` did (or, dry run, would do)."""

    phase: str
    checkpoint: int
    title: str
    day: int
    streams: list[str]
    status: str  # passed | failed | planned | aborted
    batch: list[dict[str, Any]] = field(default_factory=list)
    merged: list[dict[str, Any]] = field(default_factory=list)
    left_out: list[dict[str, Any]] = field(default_factory=list)
    not_ready: list[dict[str, Any]] = field(default_factory=list)
    repos: dict[str, Any] = field(default_factory=dict)
    tags: list[dict[str, Any]] = field(default_factory=list)
    gate_runs: int = 0
    gate_commands: int = 0
    flakes: list[dict[str, Any]] = field(default_factory=list)  # flaky gates that failed, then passed
    rounds: list[dict[str, Any]] = field(default_factory=list)
    announced: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    restored: list[dict[str, Any]] = field(default_factory=list)
    adopted: dict[str, Any] = field(default_factory=dict)
    report: str | None = None
    logs: str | None = None
    journal: int | None = None
    resumed: bool = False
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        """3 when no batch passed the gates, else 0 (left-out PRs are reported, not an error)."""
        return ExitCode.CHECK_FAILED if self.status == "failed" else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        """This value as JSON (for the ``--json`` envelope and the store)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def scope(s: Session, streams: Sequence[str], specs: Sequence[GateSpec]) -> list[str]:
    """The repositories a batch touches: the streams' and the gates', in the manifest's order."""
    wanted = {w.repo for sid in streams for w in s.manifest.stream(sid).work} | {g.repo for g in specs}
    return [r.id for r in s.manifest.repositories if r.id in wanted]


def _plan(
    s: Session, n: int, project: Project, adopt: str | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], list[GateSpec]]:
    from coditect_cli.domain.gating import gate_specs

    m = s.manifest
    cp = next((c for c in m.checkpoints if c.id == n), None)
    if cp is None:
        known = ", ".join(str(c.id) for c in m.checkpoints) or "none"
        raise UsageError(f"no checkpoint {n} in phase {m.phase} (checkpoints: {known})")
    streams = [st.id for st in sorted((m.stream(x) for x in cp.streams), key=lambda st: (st.terminal, st.id))]
    specs = list(gate_specs(m, streams, cp.gates))
    repos = scope(s, streams, specs)
    tag = f"checkpoint/{m.phase}/{n}"
    steps: list[tuple[str, dict[str, Any]]] = [
        ("pause", {"streams": streams}),
        ("collect", {"streams": streams, "repos": repos, **({"adopt": adopt} if adopt else {})}),
        ("gate", {"gates": [g.to_json() for g in specs]}),
        *[("land", {"repo": r}) for r in repos],
        *[("tag", {"repo": r, "tag": tag}) for r in repos],
        ("notify", {}),
        ("report", {"path": str(report_path(project, m.phase, f"checkpoint-{n}"))}),
        ("resume", {"streams": streams}),
    ]
    return steps, specs


def assemble(s: Session, journal: Journal, notes: Sequence[str]) -> CheckpointResult:
    """The result of a checkpoint run, from its journal."""
    from coditect_cli.render.gating import step_line

    m = s.manifest
    journal = Journal.load(s.store, journal.id) or journal  # its state now
    n = int(journal.info.args["checkpoint"])
    cp = next(c for c in m.checkpoints if c.id == n)
    steps = journal.steps()
    results = {  # an aborted run's steps are undone: what they found is still worth showing
        (st.kind, str(st.payload.get("repo", ""))): st.result or {} for st in steps if st.result is not None
    }
    collected = results.get(("collect", ""), {})
    gated = results.get(("gate", ""), {})
    status = "aborted" if journal.info.state == "aborted" else ("passed" if gated.get("passed") else "failed")
    if journal.info.state == "open":
        status = "interrupted"
    merged: list[dict[str, Any]] = []
    left_out = list(gated.get("left_out", []))
    for repo, info in gated.get("repos", {}).items():
        if status == "aborted":
            continue
        if gated.get("passed"):
            merged += info["chain"]
        elif info["green"]:
            red = next(r for r, i in gated["repos"].items() if not i["green"])
            why = f"not merged: the integration tip of {red} fails the gates"
            left_out += [{**e, "reason": why, "kind": "failed"} for e in info["chain"]]
        else:
            why = f"not merged: the integration tip of {repo} fails the gates ({', '.join(info['failing'])})"
            left_out += [{**e, "reason": why, "kind": "failed"} for e in info["unmerged"]]
    rank = {(b["repo"], b["number"]): i for i, b in enumerate(collected.get("batch", []))}
    merged.sort(key=lambda e: rank.get((e["repo"], e["number"]), len(rank)))
    tags = [
        st.result
        for st in steps
        if st.kind == "tag" and st.state == "done" and st.result and "tag" in st.result
    ]
    return CheckpointResult(
        m.phase,
        n,
        cp.title,
        cp.day,
        list(cp.streams),
        status,
        batch=[_brief(p) for p in collected.get("batch", [])],
        merged=[_brief(p) for p in merged],
        left_out=[_brief(p) for p in left_out],
        not_ready=list(collected.get("not_ready", [])),
        adopted={r: t["adopted"] for r, t in collected.get("repos", {}).items() if t.get("adopted")},
        repos=dict(gated.get("repos", {})),
        tags=tags,
        gate_runs=int(gated.get("gate_runs", 0)),
        gate_commands=int(gated.get("gate_commands", 0)),
        flakes=list(gated.get("flakes", [])),
        rounds=list(gated.get("rounds", [])),
        announced={"pause": results.get(("pause", "")), "resume": results.get(("resume", ""))},
        steps=[{**st.to_json(), "describe": step_line(st.kind, st.payload)} for st in steps],
        report=results.get(("report", ""), {}).get("path"),
        logs=str(journal.info.args.get("logs_dir", "")) or None,
        journal=journal.id,
        notes=list(dict.fromkeys(notes)),
    )


def _brief(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("body", "terminal")}


class _CheckpointSteps:
    """The step handlers of checkpoint ``n``."""

    def __init__(self, it: Integration, n: int) -> None:
        self.it, self.n = it, n

    def handlers(self) -> Mapping[str, Handler]:
        """Every step kind's handler."""
        return _handlers(self.it, self.n)

    def undo(self) -> Mapping[str, Undo]:
        """Besides refs, ``--abort`` reopens the PRs a land marked merged and marks the result aborted."""
        assert self.it.journal is not None
        journal = self.it.journal
        return {"land": self.it.reopen, "report": lambda _step: mark_aborted(self.it.s, journal)}

    def irreversible(self, step: StepRecord) -> str | None:
        """Why ``step`` cannot be undone (PRs merged on GitHub), or None."""
        return self.it.irreversible(step)


def _handlers(it: Integration, n: int) -> dict[str, Handler]:
    from coditect_cli.domain.gating import pause_text, resume_text
    from coditect_cli.render.gating import checkpoint_markdown

    m = it.s.manifest
    cp = next(c for c in m.checkpoints if c.id == n)
    assert it.journal is not None
    journal = it.journal

    def tag(ctx: StepContext) -> dict[str, Any]:
        if not journal.result_of("gate")["passed"]:
            return {"skipped": "the gates did not pass"}
        target = landed(journal, str(ctx.step.payload["repo"]))
        assert target is not None
        return it.tag(ctx, target, f"Checkpoint {n} of {m.phase}: {cp.title}\n")

    def report(ctx: StepContext) -> dict[str, Any]:
        path = Path(str(ctx.step.payload["path"]))
        result = assemble(it.s, journal, it.notes)
        result.status = "passed" if journal.result_of("gate")["passed"] else "failed"
        result.report = str(path)
        written = write_report(it.notes, path, checkpoint_markdown(result))
        result.report = written
        write_result(
            it.s,
            journal,
            "checkpoint",
            n,
            result.status,
            result.to_json(),
            Path(written) if written else None,
        )
        it.s.store.record_event(
            journal.run_id,
            "checkpoint",
            "checkpoint",
            phase=m.phase,
            detail={"checkpoint": n, "status": result.status, "report": written},
        )
        return {"path": written, "status": result.status}

    def resume(ctx: StepContext) -> dict[str, Any]:
        outcome = "passed" if journal.result_of("gate")["passed"] else "failed (nothing was merged)"
        return it.announce(ctx.step.payload["streams"], resume_text(m.phase, n, outcome))

    return {
        "pause": lambda ctx: it.announce(ctx.step.payload["streams"], pause_text(m.phase, n, cp.title)),
        "collect": lambda ctx: it.collect(
            ctx.step.payload["streams"],
            ctx.step.payload["repos"],
            ctx.step.payload.get("adopt"),
            f"checkpoint {n}",
        ),
        "gate": lambda ctx: it.gate([GateSpec.from_json(g) for g in ctx.step.payload["gates"]]),
        "land": it.land,
        "tag": tag,
        "notify": lambda ctx: it.notify(
            f"Checkpoint {n}", f"checkpoint-{n}", journal.result_of("gate")["left_out"]
        ),
        "report": report,
        "resume": resume,
    }


def run_checkpoint(
    project: Project,
    phase: str | None,
    n: int | None,
    *,
    socket: str | None = None,
    dry_run: bool = False,
    resume: Resume | None = None,
    env: Mapping[str, str] | None = None,
    adopt: str | None = None,
) -> CheckpointResult:
    """Run checkpoint ``n`` of ``phase`` (see the module docstring), or ``resume`` an interrupted one.

    ``adopt``: the reason to build on integration tips coditect did not gate (gated alone first, recorded);
    without it such a tip is refused (exit 4)."""
    from coditect_cli.domain.gating import resume_text
    from coditect_cli.render.gating import step_line
    from coditect_cli.services.prs import session
    from coditect_cli.state.lock import phase_lock

    with session(project, phase, env=env) as s:
        it = Integration(project, s, socket=socket, notes=s.notes)
        m = s.manifest
        if resume is None:
            if n is None:
                raise UsageError("which checkpoint? give its number", hint="e.g. `coditect checkpoint 1`")
            steps, _specs = _plan(s, n, project, adopt)
            if dry_run:
                cp = next(c for c in m.checkpoints if c.id == n)
                collected = it.collect(steps[1][1]["streams"], steps[1][1]["repos"], adopt, f"checkpoint {n}")
                return CheckpointResult(
                    m.phase,
                    n,
                    cp.title,
                    cp.day,
                    list(cp.streams),
                    "planned",
                    batch=[_brief(p) for p in collected["batch"]],
                    not_ready=collected["not_ready"],
                    dry_run=True,
                    notes=it.notes,
                    steps=[
                        {"index": i, "kind": k, "payload": p, "state": "planned", "describe": step_line(k, p)}
                        for i, (k, p) in enumerate(steps)
                    ],
                )
        elif adopt is not None:
            raise UsageError("--adopt-tip starts a run: it does not go with --continue or --abort")
        elif dry_run:
            from coditect_cli.services.journal import require_open

            journal = require_open(s.store, m.phase, "checkpoint")
            result = assemble(s, journal, it.notes)
            result.dry_run = True
            return result
        with phase_lock(s.common_dir, m.phase, f"coditect checkpoint{'' if n is None else f' {n}'}"):
            if resume is None:
                assert n is not None
                if passed_checkpoints(s).get(n) == "passed":
                    raise UsageError(
                        f"checkpoint {n} of phase {m.phase} has passed already",
                        hint="what is ready now goes in with the next checkpoint (or merge-phase)",
                    )
                it.preflight(steps[1][1]["repos"], adopt, f"checkpoint {n}")
                args = {"checkpoint": n, "logs": f"checkpoint-{n}"}
                journal, restored = run_journaled(
                    it, "checkpoint", None, steps, f"checkpoint {n}", args, lambda i: _CheckpointSteps(i, n)
                )
            else:
                from coditect_cli.services.journal import require_open

                open_one = require_open(s.store, m.phase, "checkpoint")
                number = int(open_one.info.args["checkpoint"])
                if n is not None and n != number:
                    raise UsageError(f"the interrupted checkpoint is {number}, not {n}")
                journal, restored = run_journaled(
                    it, "checkpoint", resume, None, "", {}, lambda i: _CheckpointSteps(i, number)
                )
                if resume == "abort":
                    streams = [str(x) for x in next(c for c in m.checkpoints if c.id == number).streams]
                    it.announce(streams, resume_text(m.phase, number, "was aborted (nothing was merged)"))
        result = assemble(s, journal, it.notes)
        result.resumed = resume is not None
        result.logs = str(it.logs)
        result.restored = [mv.to_json() for mv in restored]
        return result
