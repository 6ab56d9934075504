"""``coditect checkpoint N`` and ``coditect merge-phase``: the integration gates.

Exit codes: 0 passed (left-out PRs are reported, not an error) or landed/proposed; 3 when no batch passes
the gates (checkpoint), when the suite fails, or when merge-phase finds a checkpoint not passed (without
``--force``); 4 when a journal does not match the repositories, or a ref moved under the run; 5 when origin,
the forge or the phase lock is unavailable. Both exit 4 when an integration tip is not a commit coditect
gated (a direct push, a move by hand), unless ``--adopt-tip "reason"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from coditect_cli.cli.context import DryRunOpt, JsonOpt, PhaseArg, use
from coditect_cli.domain.limits import MAX_CHECKPOINT
from coditect_cli.errors import Problem, UsageError

if TYPE_CHECKING:
    from coditect_cli.services.checkpoint import Resume

ContinueOpt = Annotated[
    bool,
    typer.Option("--continue", help="Finish an interrupted run (its journal is checked against the refs)."),
]
AbortOpt = Annotated[bool, typer.Option("--abort", help="Put back every ref an interrupted run moved.")]
AdoptOpt = Annotated[
    str | None,
    typer.Option(
        "--adopt-tip",
        help="Build on integration tips coditect did not gate (a direct push): gated alone first; the reason "
        "is recorded.",
    ),
]
SocketOpt = Annotated[
    str | None,
    typer.Option("--socket", help="tmux socket of the streams' panes (default: the launched one)."),
]


def _resume(cont: bool, abort: bool) -> Resume | None:
    if cont and abort:
        raise UsageError("--continue and --abort exclude each other")
    return "continue" if cont else ("abort" if abort else None)


def _adopt(reason: str | None) -> str | None:
    if reason is not None and not reason.strip():
        raise UsageError(
            "--adopt-tip needs a reason", hint='e.g. --adopt-tip "hotfix pushed by the release team"'
        )
    return reason


def checkpoint(
    ctx: typer.Context,
    n: Annotated[
        int | None,
        typer.Argument(min=1, max=MAX_CHECKPOINT, help="The checkpoint's number (as in the manifest)."),
    ] = None,
    phase: PhaseArg = None,
    cont: ContinueOpt = False,
    abort: AbortOpt = False,
    adopt_tip: AdoptOpt = None,
    socket: SocketOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Merge the ready PRs of checkpoint N's streams only if the merged result passes the gates.

    A failing batch is bisected: the PR that breaks the gates is left out (its stream is told), the rest
    merged. Exit 0 when it passed, 3 when no batch passes the gates.
    """
    from coditect_cli.render.gating import print_checkpoint
    from coditect_cli.services.checkpoint import run_checkpoint

    app = use(ctx, as_json)
    result = run_checkpoint(
        app.project(),
        phase,
        n,
        socket=socket,
        dry_run=dry_run,
        resume=_resume(cont, abort),
        adopt=_adopt(adopt_tip),
    )
    problems = (
        (Problem("gates-failed", "no batch passes the gates: nothing was merged"),)
        if result.status == "failed"
        else ()
    )
    app.emit(
        "checkpoint",
        result.to_json(),
        lambda c: print_checkpoint(c, result),
        problems=problems,
        exit_code=result.exit_code,
    )


def merge_phase(
    ctx: typer.Context,
    phase: PhaseArg = None,
    land: Annotated[
        bool, typer.Option("--land", help="Merge the integration PRs into the target (else only open them).")
    ] = False,
    force: Annotated[
        str | None,
        typer.Option("--force", help="Proceed although a checkpoint has not passed; the reason is recorded."),
    ] = None,
    keep_branches: Annotated[
        bool, typer.Option("--keep-branches", help="With --land, keep the merged feature branches.")
    ] = False,
    cont: ContinueOpt = False,
    abort: AbortOpt = False,
    adopt_tip: AdoptOpt = None,
    socket: SocketOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Land the phase: remaining ready PRs, the full suite, integration -> target, the release tag.

    Requires every checkpoint passed (exit 3 otherwise, unless --force "reason"). Submodules first, then the
    superproject with its gitlinks pointing at the submodules' released commits.
    """
    from coditect_cli.render.gating import print_merge_phase
    from coditect_cli.services.merge_phase import merge_phase as run

    app = use(ctx, as_json)
    result = run(
        app.project(),
        phase,
        land=land,
        force=force,
        keep_branches=keep_branches,
        socket=socket,
        dry_run=dry_run,
        resume=_resume(cont, abort),
        adopt=_adopt(adopt_tip),
    )
    app.emit(
        "merge-phase",
        result.to_json(),
        lambda c: print_merge_phase(c, result),
        problems=result.problems,
        exit_code=result.exit_code,
    )


def register(app: typer.Typer) -> None:
    """Add ``checkpoint`` and ``merge-phase`` to ``app`` (once)."""
    names = {c.name for c in app.registered_commands}
    if "checkpoint" not in names:
        app.command("checkpoint")(checkpoint)
    if "merge-phase" not in names:
        app.command("merge-phase")(merge_phase)
