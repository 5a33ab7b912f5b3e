"""``watchword pollers``: how many ingest pollers read each queue, changed live.

Thin: the work is ``ingest.supervisor``. The command joins the running Ray
cluster (``WATCHWORD_RAY_ADDRESS``, or the local one ``watchword up`` started).
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.table import Table

from shared.settings import Settings

app = typer.Typer(
    help="Ingest pollers: how many read each queue, and change it while running.",
    no_args_is_help=True,
)


@app.command()
def scale(
    count: Annotated[int, typer.Argument(min=0, help="Pollers per queue.")],
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue",
            help="One queue kind: call_transcript, email, salesforce or unrouted. "
            "Default: every one.",
        ),
    ] = None,
    drain: Annotated[
        float,
        typer.Option(help="Seconds a stopped poller may finish its messages."),
    ] = 5.0,
) -> None:
    """Run COUNT pollers per queue: add pollers, or stop the extra ones gracefully."""
    from ingest.supervisor import poller_counts, scale_pollers

    settings = _connect()
    try:
        scale_pollers(settings, queue, count, drain_seconds=drain)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--queue") from None
    _print_counts(poller_counts(settings))


@app.command()
def status() -> None:
    """How many pollers read each queue, and their counters."""
    from cli.main import console
    from ingest.supervisor import poller_counts, poller_stats

    settings = _connect()
    _print_counts(poller_counts(settings))
    stats = poller_stats(settings)
    console.print(", ".join(f"{key} {value}" for key, value in stats.items()))


def _connect() -> Settings:
    import ray

    from cli.main import load_settings
    from shared.logs import configure as configure_logging

    configure_logging(logging.WARNING)
    settings = load_settings()
    if not ray.is_initialized():
        ray.init(
            address=settings.ray_address or "auto",
            namespace=settings.ray_namespace,
            log_to_driver=False,
            configure_logging=False,
        )
    return settings


def _print_counts(counts: dict[str, int]) -> None:
    from cli.main import console

    table = Table("queue", "pollers")
    for kind, count in counts.items():
        table.add_row(kind, str(count))
    console.print(table)
