"""``coditect export k8s``: a phase's headless tasks as Kubernetes Jobs or an Argo Workflow."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from coditect_cli.cli.context import JsonOpt, PhaseArg, use

if TYPE_CHECKING:
    from rich.console import Console

export_app = typer.Typer(help="Hand a phase's work to other systems (Kubernetes).", no_args_is_help=True)


@export_app.command("k8s")
def k8s(
    ctx: typer.Context,
    phase: PhaseArg = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory to write the YAML files into.")
    ] = Path("k8s"),
    argo: Annotated[
        bool, typer.Option("--argo", help="One Argo Workflow whose DAG is the task graph.")
    ] = False,
    image: Annotated[
        str, typer.Option("--image", help="Container image with git and the agents' CLIs (and coditect).")
    ] = "ghcr.io/coditect/agent:latest",
    secret: Annotated[
        str,
        typer.Option(
            "--secret", help="Kubernetes Secret holding ANTHROPIC_API_KEY / OPENAI_API_KEY / GIT_TOKEN."
        ),
    ] = "coditect-agent",
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Namespace of the resources.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a Job per task of every stream with a headless agent (anthropic, claude -p, codex exec): clone
    the stream's branch, run the task, push. Secrets only by reference (--secret)."""
    from coditect_cli.services.export_k8s import export

    app = use(ctx, as_json)
    result = export(app.project(), phase, output, argo=argo, image=image, secret=secret, namespace=namespace)

    def show(console: Console) -> None:
        what = "an Argo Workflow" if result.kind == "argo" else f"{len(result.files)} Job(s)"
        console.print(f"export k8s {result.phase}: {what} for {len(result.tasks)} task(s)", highlight=False)
        for path in result.files:
            console.print(f"  wrote {path}", highlight=False)
        for stream, why in result.skipped.items():
            console.print(f"  [dim]skipped {stream}: {why}[/]", highlight=False)
        console.print(f"  secrets come from the Secret {result.secret!r} (create it in the namespace first)")

    app.emit("export k8s", result.to_json(), show)


def register(app: typer.Typer) -> None:
    """Add the ``export`` group to ``app``."""
    app.add_typer(export_app, name="export")
