"""``coditect pr ...``: pull requests of the phase's streams, on GitHub or the local forge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from coditect_cli.cli.context import DryRunOpt, JsonOpt, PhaseArg, use
from coditect_cli.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

pr = typer.Typer(
    help="Pull requests from each stream's feature branch into the phase's integration branch "
    "(GitHub when origin is on GitHub and a token is found, else the local forge).",
    no_args_is_help=True,
)

StreamArg = Annotated[str, typer.Argument(help="Stream id (as in the manifest).")]
RepoOpt = Annotated[
    str | None,
    typer.Option("--repo", "-r", help="Only this repository (default: every one the stream works in)."),
]
PhaseOpt = Annotated[
    str | None,
    typer.Option(
        "--phase", "-p", help="Phase name (workstreams/<PHASE>.yaml); defaults to the only manifest."
    ),
]
OwnerOpt = Annotated[
    str,
    typer.Option(
        "--as",
        help="The reviewing code owner as CODEOWNERS names it (e.g. @codi-frontend-specialist), or a maintainer.",
    ),
]
MessageOpt = Annotated[str, typer.Option("--message", "-m", help="The review's text.")]


@pr.command("open")
def open_(
    ctx: typer.Context,
    stream: StreamArg,
    repo: RepoOpt = None,
    phase: PhaseOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Open STREAM's pull request(s) into the integration branch; an open one is reported, never duplicated.

    The feature branch is pushed first when origin lacks its commits. Exit 1 when there is nothing to open.
    """
    from coditect_cli.render.prs import opened_data, print_opened
    from coditect_cli.services.prs import open_prs

    app = use(ctx, as_json)
    report = open_prs(app.project(), phase, stream, repo, dry_run=dry_run)
    app.emit(
        "pr open",
        opened_data(report),
        lambda c: print_opened(c, report),
        exit_code=ExitCode.ERROR if report.nothing else ExitCode.OK,
    )


@pr.command("list")
def list_(ctx: typer.Context, phase: PhaseArg = None, as_json: JsonOpt = False) -> None:
    """Every pull request into the phase's integration branches: approvals, checks, mergeability."""
    from coditect_cli.render.prs import listing_data, print_listing
    from coditect_cli.services.prs import list_prs

    app = use(ctx, as_json)
    listing = list_prs(app.project(), phase)
    app.emit("pr list", listing_data(listing), lambda c: print_listing(c, listing))


@pr.command("status")
def status(
    ctx: typer.Context,
    stream: StreamArg,
    repo: RepoOpt = None,
    phase: PhaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """STREAM's pull requests: the approvals each needs (from the files it changes) and whose went stale, checks,
    mergeability, and why it is not ready."""
    from coditect_cli.render.prs import print_status, status_data
    from coditect_cli.services.prs import pr_status

    app = use(ctx, as_json)
    report = pr_status(app.project(), phase, stream, repo)
    app.emit("pr status", status_data(report), lambda c: print_status(c, report))


def _review(
    ctx: typer.Context,
    command: str,
    state: str,
    stream: str,
    owner: str,
    repo: str | None,
    phase: str | None,
    message: str,
    dry_run: bool,
    as_json: bool,
) -> None:
    from coditect_cli.render.prs import print_review, review_data
    from coditect_cli.services.reviews import review

    app = use(ctx, as_json)
    report = review(
        app.project(),
        phase,
        stream,
        owner=owner,
        state="approved" if state == "approved" else "changes_requested",
        repo=repo,
        body=message,
        dry_run=dry_run,
    )
    app.emit(command, review_data(report), lambda c: print_review(c, report))


@pr.command("approve")
def approve(
    ctx: typer.Context,
    stream: StreamArg,
    owner: OwnerOpt,
    repo: RepoOpt = None,
    phase: PhaseOpt = None,
    message: MessageOpt = "",
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Approve STREAM's open pull request(s) as OWNER, who must be listed in the repository's CODEOWNERS."""
    _review(ctx, "pr approve", "approved", stream, owner, repo, phase, message, dry_run, as_json)


@pr.command("request-changes")
def request_changes(
    ctx: typer.Context,
    stream: StreamArg,
    owner: OwnerOpt,
    repo: RepoOpt = None,
    phase: PhaseOpt = None,
    message: MessageOpt = "",
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Request changes on STREAM's open pull request(s) as OWNER (a CODEOWNERS owner); it blocks merging."""
    _review(
        ctx, "pr request-changes", "changes_requested", stream, owner, repo, phase, message, dry_run, as_json
    )


@pr.command("comment")
def comment(
    ctx: typer.Context,
    stream: StreamArg,
    owner: OwnerOpt,
    message: Annotated[str, typer.Option("--message", "-m", help="The comment's text.")],
    file: Annotated[str | None, typer.Option("--file", help="The file the comment is about.")] = None,
    line: Annotated[int | None, typer.Option("--line", min=1, help="The line in --file.")] = None,
    repo: RepoOpt = None,
    phase: PhaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Comment on STREAM's open pull request as OWNER (a CODEOWNERS owner), about --file and --line."""
    from coditect_cli.services.reviews import comment as add

    app = use(ctx, as_json)
    rows = add(app.project(), phase, stream, owner=owner, body=message, repo=repo, path=file, line=line)

    def show(console: Console) -> None:
        for r in rows:
            console.print(f"commented on {r['repo']}#{r['number']}")

    app.emit("pr comment", {"comments": rows}, show)


@pr.command("merge")
def merge(
    ctx: typer.Context,
    stream: StreamArg,
    repo: RepoOpt = None,
    phase: PhaseOpt = None,
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", "-s", help="squash, merge or rebase (default: the manifest's)."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Merge without the approvals, passing checks and gates it needs (journaled as forced).",
        ),
    ] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Merge STREAM's open pull request(s) when approved on their head by everyone they need and the stream's
    gates passed on that head (run first when they have not).

    Exit 3 when a pull request is not ready (the reason is printed).
    """
    from coditect_cli.errors import UsageError
    from coditect_cli.forge.base import STRATEGIES
    from coditect_cli.render.prs import merge_data, print_merge
    from coditect_cli.services.reviews import merge as run_merge

    app = use(ctx, as_json)
    if strategy is not None and strategy not in STRATEGIES:
        raise UsageError(f"unknown strategy {strategy!r}: use {', '.join(STRATEGIES)}")
    chosen = next((s for s in STRATEGIES if s == strategy), None)
    report = run_merge(app.project(), phase, stream, repo=repo, strategy=chosen, force=force, dry_run=dry_run)
    refused = report.refused and not dry_run
    app.emit(
        "pr merge",
        merge_data(report),
        lambda c: print_merge(c, report),
        exit_code=ExitCode.CHECK_FAILED if refused else ExitCode.OK,
    )


def register(app: typer.Typer) -> None:
    """Add the ``pr`` group to ``app``."""
    app.add_typer(pr, name="pr")
