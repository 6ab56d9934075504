"""``coditect autopilot`` and ``coditect events serve``: the phase driven without a person at the keyboard.

Exit codes: 0 ok; 2 usage or manifest error; 5 tmux, the forge or the store unavailable (a store locked by
another coditect included).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from coditect_cli.cli.context import DryRunOpt, JsonOpt, PhaseArg, use
from coditect_cli.errors import UsageError

SocketOpt = Annotated[
    str | None,
    typer.Option("--socket", help="tmux socket of the streams' panes (default: the launched one)."),
]


def autopilot(
    ctx: typer.Context,
    phase: PhaseArg = None,
    once: Annotated[bool, typer.Option("--once", help="Run one pass and exit.")] = False,
    land: Annotated[
        bool,
        typer.Option(
            "--land", help="Run merge-phase --land once every task is done and every checkpoint passed."
        ),
    ] = False,
    passes: Annotated[
        int | None,
        typer.Option("--passes", min=1, help="Stop after this many passes (default: run until Ctrl-C)."),
    ] = None,
    day: Annotated[
        int | None, typer.Option("--day", min=1, max=366, help="The phase day (default: today's).")
    ] = None,
    socket: SocketOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Dispatch ready tasks to idle agents, verify work claimed done, react to reviews, CI and gates, and run
    checkpoints on their day. Each pass is journaled: killed and restarted, it sends nothing twice.

    A live dashboard in the terminal; --json prints one envelope per pass (one line each).
    """
    from coditect_cli.services.autopilot import Autopilot, loop
    from coditect_cli.services.autopilot_agents import TmuxAgents

    app = use(ctx, as_json)
    project = app.project()
    pilot = Autopilot(project, phase, TmuxAgents(project, socket), socket=socket, land=land, day=day)
    if app.json or once or dry_run:
        import sys

        from coditect_cli.render.autopilot import print_pass
        from coditect_cli.render.envelope import dumps, envelope

        def emit(report: object) -> None:
            from coditect_cli.services.autopilot import PassReport

            assert isinstance(report, PassReport)
            if app.json:
                sys.stdout.write(dumps(envelope("autopilot", data=report.to_json())) + "\n")
                sys.stdout.flush()
            else:
                print_pass(app.console, report)

        loop(pilot, once=once, dry_run=dry_run, on_pass=emit, passes=passes)
        return
    from rich.live import Live

    from coditect_cli.render.autopilot import dashboard

    with Live(console=app.console, refresh_per_second=2, transient=False) as live:
        try:
            loop(pilot, once=False, dry_run=False, on_pass=lambda r: live.update(dashboard(r)), passes=passes)
        except KeyboardInterrupt:
            return


events = typer.Typer(help="Forge events for the autopilot (GitHub webhooks).", no_args_is_help=True)


@events.command("serve")
def serve(
    ctx: typer.Context,
    phase: PhaseArg = None,
    addr: Annotated[str, typer.Option("--addr", help="HOST:PORT to listen on.")] = "127.0.0.1:8787",
    secret_env: Annotated[
        str, typer.Option("--secret-env", help="Environment variable holding the webhook secret.")
    ] = "CODITECT_WEBHOOK_SECRET",
    as_json: JsonOpt = False,
) -> None:
    """Receive GitHub webhook deliveries (HMAC X-Hub-Signature-256 verified, each delivery id once) and keep
    them for the autopilot. Unsigned or badly signed requests are refused (401)."""
    from coditect_cli.services.events import receiver_for
    from coditect_cli.services.events import serve as make_server

    app = use(ctx, as_json)
    host, _, port_text = addr.rpartition(":")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"--addr {addr!r} is not HOST:PORT (e.g. 127.0.0.1:8787)")
    receiver = receiver_for(app.project(), phase, os.environ.get(secret_env, ""))
    server = make_server(receiver, host, int(port_text))
    real_host, real_port = server.server_address[:2]
    url = f"http://{real_host!s}:{real_port}"
    if app.json:  # one envelope when listening starts (the deliveries go to the store, not stdout)
        import sys

        from coditect_cli.render.envelope import dumps, envelope

        sys.stdout.write(
            dumps(envelope("events serve", data={"listening": url, "repositories": receiver.repos})) + "\n"
        )
        sys.stdout.flush()
    else:
        app.console.print(f"coditect events: listening on {url} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def register(app: typer.Typer) -> None:
    """Add ``autopilot`` and ``events`` to ``app`` (once)."""
    if "autopilot" not in {c.name for c in app.registered_commands}:
        app.command("autopilot")(autopilot)
        app.add_typer(events, name="events")
