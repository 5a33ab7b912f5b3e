"""The ``watchword`` command.

Settings are read once here, from ``WATCHWORD_*`` variables, and handed down.
With no configuration every command talks to the local stack that
``watchword up --local`` runs; with ``WATCHWORD_STACK=aws`` the same commands
talk to AWS.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli import dlq, pollers, status, tenants
from shared.logs import configure as configure_logging
from shared.settings import Settings

app = typer.Typer(
    help="Standing plain-language alerts over calls, emails and Salesforce changes.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(dlq.app, name="dlq")
app.add_typer(pollers.app, name="pollers")
app.add_typer(tenants.app, name="tenants")
app.command(name="status")(status.command)
# Wide enough for the demo's table when the output is not a terminal (CI).
console = Console(width=None if Console().is_terminal else 140)

DEFAULT_DATA = Path("../shared/data")


def load_settings(**overrides: object) -> Settings:
    settings = Settings()
    return settings.with_overrides(**overrides) if overrides else settings


@app.command()
def provision() -> None:
    """Create the topic, queues, bucket and tables (idempotent)."""
    from shared.aws.provision import provision as run

    configure_logging(logging.WARNING)
    report = run(load_settings())
    console.print(
        f"created {len(report.created)}, already there {len(report.existing)}"
    )
    for name in report.created:
        console.print(f"  + {name}")


@app.command()
def demo(
    data: Annotated[
        Path, typer.Option(help="Folder of *.jsonl records.")
    ] = DEFAULT_DATA,
    out: Annotated[Path, typer.Option(help="Notifications as JSON Lines.")] = Path(
        "demo-out/notifications.jsonl"
    ),
    window: Annotated[float, typer.Option(help="Batch window in seconds.")] = 5.0,
    timeout: Annotated[float, typer.Option(help="Give up after seconds.")] = 900.0,
    dashboard: Annotated[bool, typer.Option(help="Start the Ray dashboard.")] = True,
) -> None:
    """Run the whole pipeline locally on the real data and print what fired."""
    from cli.demo import run_demo
    from cli.stack import StackError, local_stack

    configure_logging(logging.WARNING)
    if not data.is_dir():
        raise typer.BadParameter(f"no data folder at {data}", param_hint="--data")
    settings = load_settings(batch_window_seconds=window, sqs_wait_seconds=2)
    log_dir = out.parent / "logs"
    try:
        with local_stack(settings, log_dir, dashboard=dashboard) as stack:
            console.print(f"API {stack.api_url}/docs  dashboard {stack.dashboard_url}")
            result = run_demo(stack, data, out, console, timeout)
    except StackError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2) from None
    console.print(f"done in {result.seconds:.0f}s")


@app.command()
def up(
    local: Annotated[
        bool, typer.Option("--local", help="Run the emulator and offline model too.")
    ] = False,
    api: Annotated[
        bool,
        typer.Option(
            help="Deploy the alert API too (a cluster deploys it with `serve"
            " deploy deploy/serve-config.yaml` instead)."
        ),
    ] = True,
) -> None:
    """Run Watchword: the whole local stack, or the services on a Ray cluster."""
    from cli.stack import StackError, local_stack, start_services

    configure_logging(logging.INFO)
    settings = load_settings()
    if not local:
        import ray

        ray.init(
            address=settings.ray_address or "auto",
            namespace=settings.ray_namespace,
        )
        url = start_services(settings, api=api)
        console.print(f"services started; API at {url or '(not deployed)'}")
        return

    stop = threading.Event()
    try:
        with local_stack(settings, Path("demo-out/logs")) as stack:
            # Set after ray.init, which installs a SIGTERM handler of its own
            # that would end the process without stopping the stand-ins.
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            console.print(
                f"Watchword is up.\n  API        {stack.api_url} (docs at /docs)\n"
                f"  dashboard  {stack.dashboard_url}\n"
                f"  metrics    {stack.metrics_url}\n"
                f"  AWS        {settings.aws_endpoint_url}\n"
                f"  model      {settings.model_base_url}\nCtrl-C stops it."
            )
            stop.wait()
            console.print("stopping…")
    except StackError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2) from None


@app.command()
def publish(
    files: Annotated[list[Path], typer.Argument(help="JSON Lines files of records.")],
) -> None:
    """Publish communications to the SNS topic, as an upstream system would."""
    from ingest.publish import publish_communications

    configure_logging(logging.WARNING)
    records = [
        json.loads(line)
        for path in files
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    count = publish_communications(load_settings(), records)
    console.print(f"published {count}")


if __name__ == "__main__":
    app()
