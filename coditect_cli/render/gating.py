"""Output of ``checkpoint`` and ``merge-phase``: the terminal view, the Markdown reports, the plan lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from coditect_cli.domain.text import neutralise

if TYPE_CHECKING:
    from rich.console import Console

    from coditect_cli.services.checkpoint import CheckpointResult
    from coditect_cli.services.merge_phase import MergePhaseResult

_STATUS = {
    "passed": "[bold green]PASSED[/]",
    "failed": "[bold red]FAILED[/]",
    "planned": "[cyan]PLAN[/] (dry run: nothing changes)",
    "aborted": "[yellow]ABORTED[/]: every ref this run moved was put back",
    "interrupted": "[yellow]INTERRUPTED[/]",
    "landed": "[bold green]LANDED[/]",
    "proposed": "[bold green]PROPOSED[/]",
}


def step_line(kind: str, payload: Mapping[str, Any]) -> str:
    """One plan step in words."""
    repo = payload.get("repo")
    lines = {
        "pause": f"announce a pause to {', '.join(payload.get('streams', [])) or 'no stream'}",
        "resume": f"announce resume to {', '.join(payload.get('streams', [])) or 'no stream'}",
        "collect": f"collect the ready PRs of {', '.join(payload.get('streams', []))} "
        f"(repositories {', '.join(payload.get('repos', []))})"
        + (f"; adopt ungated integration tips ({payload['adopt']})" if payload.get("adopt") else ""),
        "gate": "stage the batch on the integration tips, run "
        + (", ".join(f"{g['repo']}:{'+'.join(g['names'])}" for g in payload.get("gates", [])) or "no gate")
        + "; bisect a failing batch",
        "land": f"{repo}: move the integration branch to the tested commit (push with lease), mark the PRs merged",
        "tag": f"{repo}: tag {payload.get('tag')} (annotated) and push it",
        "notify": "tell the streams whose PRs were left out (PR comment, failing check, pane)",
        "report": f"write the report {payload.get('path')} and record the result",
        "check": "require every checkpoint passed"
        + (f" (forced: {payload['force']})" if payload.get("force") else ""),
        "gitlinks": f"{repo}: point the submodules at their released commits (trees as gated; a commit on the "
        "integration branch)",
        "propose": f"{repo}: open the PR integration -> {payload.get('target')}",
        "deliver": f"{repo}: merge that PR into {payload.get('target')}",
        "prune": f"{repo}: delete merged feature branches (origin; locally when no worktree has them)",
    }
    return lines.get(kind, kind)


def _pr(item: Mapping[str, Any]) -> str:
    return f"{item['repo']}#{item['number']} ({item.get('stream', '?')}): {item.get('title', '')}"


def checkpoint_markdown(result: CheckpointResult) -> str:
    """The report written to ``workstreams/reports/<phase>/checkpoint-N.md``."""
    lines = [
        f"# Checkpoint {result.checkpoint} — {result.title}",
        "",
        f"Phase `{result.phase}`, day {result.day}. Streams: {', '.join(result.streams)}.",
        "",
        f"**Result: {result.status.upper()}** — {result.gate_runs} gate run(s), {result.gate_commands} gate "
        f"command(s).",
        "",
        "## Merged",
        "",
    ]
    lines += [f"- {_pr(m)} → `{str(m.get('commit', ''))[:12]}`" for m in result.merged] or ["- nothing"]
    lines += ["", "## Left out", ""]
    lines += [f"- {_pr(x)} — {x['reason']}" for x in result.left_out] or ["- nothing"]
    lines += _adopted_lines(result.adopted)
    lines += _flake_lines(result.flakes)
    if result.not_ready:
        lines += ["", "## Not ready (not in the batch)", ""]
        lines += [f"- {_pr(x)} — {x['reason']}" for x in result.not_ready]
    lines += ["", "## Repositories", ""]
    for repo, info in result.repos.items():
        tested = str(info.get("tested") or "")[:12] or "—"
        lines.append(
            f"- `{repo}`: from `{str(info['start'])[:12]}`, tested `{tested}`, "
            f"{'green' if info['green'] else 'red: ' + ', '.join(info.get('failing', []))}"
        )
    lines += ["", "## Gate runs", ""]
    for r in result.rounds:
        for repo, e in r["repos"].items():
            gates = ", ".join(
                f"{g['gate']} {'ok' if g['exit'] == 0 else 'FAILED'} (`{g['log']}`)"
                for g in e.get("gates", [])
            ) or e.get("error", "no gate")
            prs = ", ".join(f"#{n}" for n in e["prs"]) or "the integration tip"
            reused = " (result reused)" if e.get("cached") else ""
            again = " (the batch again: it failed on a flaky gate)" if r.get("retry") else ""
            lines.append(f"- round {r['round']}, `{repo}` with {prs}: {gates}{reused}{again}")
    if result.tags:
        lines += ["", "## Tags", ""] + [f"- `{t['tag']}` on `{str(t['target'])[:12]}`" for t in result.tags]
    return neutralise("\n".join(lines) + "\n")


def _adopted_lines(adopted: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The report's section on integration tips adopted with ``--adopt-tip``."""
    if not adopted:
        return []
    lines = ["", "## Adopted integration tips (not gated by coditect before)", ""]
    for repo, info in adopted.items():
        commits = "; ".join(f"`{c}`" for c in info.get("commits", [])) or "none new"
        lines.append(
            f"- `{repo}` at `{str(info['tip'])[:12]}` — reason: {info['reason']}; commits: {commits}"
        )
    return lines


def _flake_lines(flakes: Sequence[Mapping[str, Any]]) -> list[str]:
    """The report's section on flaky gates that failed on a batch, then passed when it ran again."""
    if not flakes:
        return []
    lines = ["", "## Flakes (a flaky gate failed, then passed on the retry: not a failure)", ""]
    for f in flakes:
        logs = ", ".join(f"`{log}`" for log in f.get("logs", []))
        lines.append(f"- `{f['repo']}`: {f['gate']} on `{str(f['commit'])[:12]}` — logs: {logs}")
    return lines


def _print_flakes(console: Console, flakes: Sequence[Mapping[str, Any]]) -> None:
    from rich.markup import escape

    for f in flakes:
        console.print(
            escape(
                f"  flake: {f['gate']} failed on the batch of {f['repo']} ({str(f['commit'])[:12]}), "
                "then passed when it ran again"
            ),
            style="yellow",
        )


def _print_adopted(console: Console, adopted: Mapping[str, Mapping[str, Any]]) -> None:
    from rich.markup import escape

    for repo, info in adopted.items():
        console.print(
            escape(f"  adopted the integration tip {str(info['tip'])[:12]} of {repo}: {info['reason']}"),
            style="yellow",
        )


def print_checkpoint(console: Console, result: CheckpointResult) -> None:
    """The terminal view of a checkpoint run."""
    from rich.markup import escape

    console.print(
        f"Checkpoint {result.checkpoint} of {result.phase} — {escape(result.title)} (day {result.day}): "
        f"{_STATUS.get(result.status, result.status)}"
    )
    _print_adopted(console, result.adopted)
    if result.dry_run:
        for item in result.batch:
            console.print(f"  would stage {escape(_pr(item))}")
    for item in result.not_ready:
        console.print(f"  [dim]not ready: {escape(_pr(item))} — {escape(str(item['reason']))}[/]")
    verb = "merged" if result.status in ("passed", "landed", "proposed") else "to merge"
    for item in result.merged:
        console.print(f"  [green]{verb}[/] {escape(_pr(item))}")
    for item in result.left_out:
        console.print(f"  [red]left out[/] {escape(_pr(item))} — {escape(str(item['reason']))}")
    _print_flakes(console, result.flakes)
    if result.status in ("passed", "failed"):
        console.print(f"  gate runs: {result.gate_runs} ({result.gate_commands} command(s))")
    for tag in result.tags:
        console.print(escape(f"  tagged {tag['tag']} in {tag.get('repo', '?')} on {str(tag['target'])[:12]}"))
    _tail(
        console,
        result.steps,
        result.dry_run or result.status in ("interrupted", "aborted"),
        result.restored,
        result.report,
        result.notes,
    )


def merge_phase_markdown(result: MergePhaseResult) -> str:
    """The report written to ``workstreams/reports/<phase>/merge-phase.md``."""
    lines = [
        f"# Merge of {result.phase} into {result.target}",
        "",
        f"**Result: {result.status.upper()}**",
        "",
    ]
    if result.forced:
        lines += [
            f"Forced past checkpoints not passed ({', '.join(map(str, result.missing))}): {result.forced}",
            "",
        ]
    lines += _adopted_lines(result.adopted)[1:] + ([""] if result.adopted else [])
    lines += [f"Gate runs: {result.gate_runs} ({result.gate_commands} command(s)).", ""]
    lines += _flake_lines(result.flakes)[1:] + ([""] if result.flakes else [])
    lines += ["## Merged now", ""] + ([f"- {_pr(m)}" for m in result.merged] or ["- nothing"])
    lines += ["", "## Left out", ""] + (
        [f"- {_pr(x)} — {x['reason']}" for x in result.left_out] or ["- nothing"]
    )
    lines += ["", "## Repositories", ""]
    for repo, info in result.repos.items():
        bits = [
            f"{k}: `{str(v)[:12]}`" if isinstance(v, str) and len(v) == 40 else f"{k}: {v}"
            for k, v in info.items()
        ]
        lines.append(f"- `{repo}`: " + ", ".join(bits))
    lines += ["", result.notes_md.strip(), ""]
    return neutralise("\n".join(lines))


def print_merge_phase(console: Console, result: MergePhaseResult) -> None:
    """The terminal view of a merge-phase run."""
    from rich.markup import escape

    console.print(
        f"Merge of {result.phase} into {result.target}: {_STATUS.get(result.status, result.status)}"
    )
    if result.forced:
        console.print(
            f"  [yellow]forced[/] past checkpoint(s) {', '.join(map(str, result.missing))}: "
            f"{escape(result.forced)}"
        )
    _print_adopted(console, result.adopted)
    verb = "merged" if result.status in ("passed", "landed", "proposed") else "to merge"
    for item in result.merged:
        console.print(f"  [green]{verb}[/] {escape(_pr(item))}")
    for item in result.left_out:
        console.print(f"  [red]left out[/] {escape(_pr(item))} — {escape(str(item['reason']))}")
    _print_flakes(console, result.flakes)
    for repo, info in result.repos.items():
        parts = ", ".join(f"{k} {str(v)[:12] if isinstance(v, str) else v}" for k, v in info.items())
        console.print(f"  {repo}: {escape(parts)}")
    _tail(
        console,
        result.steps,
        result.dry_run or result.status in ("interrupted", "aborted"),
        result.restored,
        result.report,
        result.notes,
    )


def _tail(
    console: Console,
    steps: Sequence[Mapping[str, Any]],
    show_steps: bool,
    restored: Sequence[Mapping[str, Any]],
    report: str | None,
    notes: Sequence[str],
) -> None:
    """The plan (dry run, interrupted), the refs an abort put back, the report, the notes: all literal text."""
    from rich.markup import escape

    if show_steps:
        for step in steps:
            console.print(escape(f"  {step['index']:>2}. [{step['state']}] {step['describe']}"))
    for move in restored:
        where = str(move["new"])[:12] if move["new"] else "deleted"
        console.print(escape(f"  put back: {move['location']} {move['ref']} of {move['repo']} -> {where}"))
    if report:
        console.print(escape(f"  report: {report}"))
    for note in notes:
        console.print(f"[dim]note: {escape(note)}[/]")


def steps_data(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Plan steps for JSON."""
    return [dict(s) for s in steps]
