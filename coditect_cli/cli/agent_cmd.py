"""``agent run|log``: the built-in agent (``run: anthropic``) headless, and its transcripts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from coditect_cli.cli.context import JsonOpt, use
from coditect_cli.errors import ExitCode

agent_app = typer.Typer(
    help="The built-in agent (run: anthropic) on the Anthropic API: run a task headless, read transcripts.",
    no_args_is_help=True,
)

StreamArg = Annotated[str, typer.Argument(help="The stream whose task to run.")]
PhaseOpt = Annotated[
    str | None, typer.Option("--phase", help="Phase (default: $CODITECT_PHASE, else the only manifest).")
]
TaskOpt = Annotated[
    str | None, typer.Option("--task", help="A deliverable of the stream (default: the stream's whole task).")
]

# How each ending maps to the exit code: done 0; max turns 1; over budget 3; the API failed 5.
EXIT_CODES = {"done": ExitCode.OK, "max-turns": ExitCode.ERROR, "over-budget": ExitCode.CHECK_FAILED,
              "failed": ExitCode.UNAVAILABLE}  # fmt: skip


def _phase(phase: str | None) -> str | None:
    import os

    return phase or os.environ.get("CODITECT_PHASE") or None


@agent_app.command("run")
def run(
    ctx: typer.Context,
    stream: StreamArg,
    task: TaskOpt = None,
    phase: PhaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run one task of STREAM with the built-in agent, headless, in the stream's worktrees.

    The key comes from ANTHROPIC_API_KEY, the endpoint from ANTHROPIC_BASE_URL. Exit 0 when the agent
    finished its task, 1 when it reached max_turns, 3 when the stream's budget is spent, 5 when the API
    failed (after the retries).
    """
    from coditect_cli.render.agent import print_result
    from coditect_cli.services.agent import run_task

    app = use(ctx, as_json)

    def report(line: str) -> None:
        if not app.json:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    result = run_task(app.project(), _phase(phase), stream, task, report=report)
    app.emit(
        "agent run", result.to_json(), lambda c: print_result(c, result), exit_code=EXIT_CODES[result.status]
    )


@agent_app.command("log")
def log(
    ctx: typer.Context,
    stream: StreamArg,
    task: TaskOpt = None,
    phase: PhaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the transcript of STREAM's last task (or of --task): requests, tool calls, results, usage."""
    from coditect_cli.render.agent import print_transcript
    from coditect_cli.services.agent import transcript_entries

    app = use(ctx, as_json)
    path, entries = transcript_entries(app.project(), _phase(phase), stream, task)
    app.emit(
        "agent log",
        {"stream": stream, "transcript": str(path), "entries": entries},
        lambda c: print_transcript(c, path, entries),
    )


def register(app: typer.Typer) -> None:
    """Add the ``agent`` command group to ``app``."""
    app.add_typer(agent_app, name="agent")
