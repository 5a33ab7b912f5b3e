"""``watchword dlq``: look at dead letters, and send them back once fixed.

Thin: the reading and moving are ``ingest.dead_letters``; this module chooses
the queues, prints and turns a wrong option into a usage error.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Annotated

import typer
from rich.table import Table

from shared.settings import Settings

app = typer.Typer(
    help="Dead-letter queues: list what is there and why, redrive after a fix.",
    no_args_is_help=True,
)

QueueOption = Annotated[
    str | None,
    typer.Option(
        "--queue",
        help="One queue kind: call_transcript, email, salesforce or unrouted. "
        "Default: every one.",
    ),
]


@app.command("list")
def list_dead_letters(
    queue: QueueOption = None,
    limit: Annotated[
        int, typer.Option("--max", min=1, help="At most this many per queue.")
    ] = 100,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line instead.")
    ] = False,
) -> None:
    """Show each dead letter's reason and ids (never its text); consumes nothing."""
    from cli.main import console, load_settings
    from ingest import dead_letters
    from shared.logs import configure as configure_logging

    configure_logging(logging.WARNING)
    settings = load_settings()
    kinds = _kinds(settings, queue, redrive=False)
    found = dead_letters.list_dead_letters(settings, kinds, max_per_queue=limit)

    if as_json:
        for letter in found:
            typer.echo(json.dumps(dataclasses.asdict(letter), default=str))
        return
    table = Table(title=f"{len(found)} dead letters", show_lines=True)
    for column in ("queue", "message id", "reason", "source queue", "receives"):
        table.add_column(column, overflow="fold")
    table.add_column("tenant / communication", overflow="fold")
    table.add_column("sent")
    for letter in found:
        table.add_row(
            letter.kind,
            letter.message_id,
            letter.reason,
            letter.source_queue,
            "-" if letter.receive_count is None else str(letter.receive_count),
            f"{letter.tenant or '-'} / {letter.communication_id or '-'}",
            letter.sent_at.strftime("%Y-%m-%d %H:%M:%S") if letter.sent_at else "-",
        )
    console.print(table)


@app.command()
def redrive(
    queue: QueueOption = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--max",
            min=1,
            help="At most this many per queue. Default: as many as it holds now.",
        ),
    ] = None,
) -> None:
    """Send dead letters back to their source queue, to be processed again."""
    from cli.main import console, load_settings
    from ingest import dead_letters
    from shared.logs import configure as configure_logging

    configure_logging(logging.WARNING)
    settings = load_settings()
    kinds = _kinds(settings, queue, redrive=True)
    moved = dead_letters.redrive_dead_letters(settings, kinds, max_per_queue=limit)
    for kind, count in moved.items():
        console.print(f"{kind}: {count} sent back")
    console.print(f"redriven {sum(moved.values())}")


def _kinds(settings: Settings, queue: str | None, *, redrive: bool) -> list[str]:
    from ingest.dead_letters import dlq_kinds

    try:
        return dlq_kinds(settings, queue, redrive=redrive)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--queue") from None
