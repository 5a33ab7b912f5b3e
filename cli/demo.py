"""``watchword demo``: the whole pipeline on the real data, start to finish.

Steps: bring up the local stack; create a few plain-language alerts per tenant
through the HTTP API; publish every record of ``../shared/data/*.jsonl`` (plus
one malformed message and one of an unknown data type) to the SNS topic; wait
until every message is handled and every pending window is flushed; print the
notifications and write them as JSON Lines.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from cli.stack import Stack
from shared.aws.clients import client
from shared.aws.names import ResourceNames
from shared.aws.pending_store import PendingStore
from shared.aws.queues import queue_depths, receive_notifications
from shared.models.notifications import AlertNotification
from shared.settings import Settings

# Alerts a sales team might write. The quoted phrases occur in that tenant's
# records, so with the offline model (which fires on quoted phrases) every
# tenant gets notifications; with the real model they read as they say.
DEMO_ALERTS: dict[str, list[str]] = {
    "tenant-acme": [
        'Tell me when someone on a call says the product is "too expensive"'
        ' or talks about the "budget".',
        'Alert me immediately when an email mentions a "competitor" or a "discount".',
        'Alert me on emails that mention "bankrupt" or "lawsuit", and count'
        " how many times it happens.",
    ],
    "tenant-globex": [
        'Tell me when a customer on a call or in an email wants a "refund" or'
        ' to "cancel".',
        'Alert me when an email brings up "FERC" or "legal" matters, and count them.',
        'Tell me when a Salesforce case is marked "urgent".',
    ],
    "tenant-initech": [
        'Tell me when a Salesforce opportunity is in "Negotiation" or "Closed Lost".',
        'Alert me when an email talks about a "discount" or a "renewal".',
        'Tell me when anyone on a call says it is "too expensive" or mentions'
        ' the "budget".',
    ],
}

# Two messages that must end in a dead-letter queue, not in a notification.
BAD_MESSAGES = [
    ("email", '{"id": "broken-1", "tenant": "tenant-acme", "data_type": "email"'),
    ("fax", json.dumps({"id": "fax-1", "tenant": "tenant-acme", "data_type": "fax"})),
]


@dataclass
class DemoResult:
    published: int
    notifications: list[AlertNotification]
    dead_letters: int
    seconds: float


def create_alerts(stack: Stack, console: Console, tenants: set[str]) -> int:
    """Create each tenant's demo alerts over HTTP, with a key made for it."""
    from cli.tenants import issue_key

    created = 0
    with httpx.Client(base_url=stack.api_url, timeout=60) as http:
        for tenant, prompts in DEMO_ALERTS.items():
            if tenant not in tenants:
                continue
            token = issue_key(stack.settings, tenant, label="demo").token
            for prompt in prompts:
                response = http.post(
                    f"/v1/tenants/{tenant}/alerts",
                    json={"prompt": prompt, "owner": f"sales@{tenant}.example"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                if response.status_code != 201:
                    raise RuntimeError(
                        f"creating an alert for {tenant} answered"
                        f" {response.status_code}: {response.text[:300]}"
                    )
                body = response.json()
                definition = body["definition"]
                console.print(
                    f"  [cyan]{tenant}[/] {body['alert_id']}: {definition['name']}"
                    f" [dim]({', '.join(definition['data_types'])})[/]"
                )
                created += 1
    return created


def publish_bad_messages(settings: Settings) -> int:
    sns = client(settings, "sns")
    topic = sns.create_topic(Name=ResourceNames.of(settings).topic)["TopicArn"]
    for data_type, body in BAD_MESSAGES:
        sns.publish(
            TopicArn=topic,
            Message=body,
            MessageAttributes={
                "data_type": {"DataType": "String", "StringValue": data_type}
            },
        )
    return len(BAD_MESSAGES)


def wait_until_done(
    settings: Settings, expected: int, console: Console, timeout: float
) -> None:
    """Block until every message is handled and every window flushed."""
    from ingest.supervisor import poller_stats

    pending = PendingStore(settings)
    deadline = time.monotonic() + timeout
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[extra]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("handled", total=expected, extra="")
        while True:
            stats = poller_stats(settings)
            handled = stats["processed"] + stats["dead_lettered"]
            open_windows = pending.count_entries()
            input_left = sum(
                d.total
                for d in queue_depths(settings)
                if not d.name.endswith("dlq") and not d.name.endswith("-alerts")
            )
            progress.update(
                task,
                completed=min(handled, expected),
                extra=f"open windows {open_windows}, in queues {input_left}",
            )
            if handled >= expected and input_left == 0 and open_windows == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"not done after {timeout:.0f}s: handled {handled}/{expected},"
                    f" open windows {open_windows}, queued {input_left}"
                )
            time.sleep(0.5)


def print_notifications(
    notifications: list[AlertNotification], console: Console
) -> None:
    table = Table(title="Notifications (one per alert and window)", expand=True)
    table.add_column("tenant", no_wrap=True)
    table.add_column("alert", overflow="ellipsis", no_wrap=True, ratio=3)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("triggered by: reason", overflow="ellipsis", no_wrap=True, ratio=4)
    table.add_column("state", overflow="ellipsis", no_wrap=True, ratio=1)
    for n in sorted(notifications, key=lambda n: (n.tenant, n.alert_name)):
        first = n.triggers[0]
        more = f" (+{len(n.triggers) - 1})" if len(n.triggers) > 1 else ""
        table.add_row(
            n.tenant.removeprefix("tenant-"),
            n.alert_name,
            str(len(n.triggers)),
            f"{first.communication_id}{more}: {first.reason}",
            json.dumps(n.state) if n.state else "",
        )
    console.print(table)


def run_demo(
    stack: Stack, data_dir: Path, out: Path, console: Console, timeout: float
) -> DemoResult:
    from ingest.publish import load_records, publish_communications

    started = time.monotonic()
    settings = stack.settings
    records = load_records(data_dir)
    tenants = {r["tenant"] for r in records if "tenant" in r}

    console.rule("Alerts, created through the API in plain language")
    create_alerts(stack, console, tenants)

    console.rule(f"Publishing {len(records)} real records to the SNS topic")
    with Progress(console=console) as progress:
        task = progress.add_task("published", total=len(records))
        published = publish_communications(
            settings, records, progress=lambda n: progress.advance(task, n)
        )
    published += publish_bad_messages(settings)
    console.print(f"  plus {len(BAD_MESSAGES)} bad messages (they must dead-letter)")

    console.rule("Processing: every message handled, every window flushed")
    wait_until_done(settings, published, console, timeout)
    notifications = receive_notifications(settings)
    dead = sum(d.visible for d in queue_depths(settings) if d.name.endswith("dlq"))

    print_notifications(notifications, console)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as handle:
        for n in notifications:
            handle.write(n.model_dump_json() + "\n")
    per_tenant = Counter(n.tenant for n in notifications)
    console.print(
        f"{len(notifications)} notifications"
        f" ({', '.join(f'{t}: {c}' for t, c in sorted(per_tenant.items()))}),"
        f" {dead} dead letters; written to {out}"
    )
    return DemoResult(published, notifications, dead, time.monotonic() - started)
