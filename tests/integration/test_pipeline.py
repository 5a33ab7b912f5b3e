"""End to end: real records through SNS, SQS, Ray and the offline model."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from actors.alert_batch import start_shards
from ingest.publish import load_records, publish_communications
from ingest.supervisor import poller_stats, start_pollers
from shared.aws.alert_store import AlertStore
from shared.aws.clients import client
from shared.aws.names import ResourceNames
from shared.aws.queues import receive_notifications
from shared.models import AlertDefinition, StateField, StateSchema, parse_communication
from shared.models.notifications import AlertNotification
from shared.settings import Settings

TENANT = "tenant-acme"
PHRASES = ("bankrupt", "lawsuit")


def wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def test_real_records_through_sns_become_the_expected_notifications(
    ray_services: Settings, data_dir: Path
) -> None:
    settings = ray_services
    definition = AlertDefinition(
        name="Financial distress",
        description="Emails about bankruptcy or lawsuits.",
        data_types=["email"],
        instructions='Fire when the email mentions "bankrupt" or "lawsuit".',
        state_schema=StateSchema(fields=[StateField(name="mentions", type="integer")]),
        window_seconds=1,
        owner="cfo@acme.example",
    )
    alert = AlertStore(settings).create(TENANT, definition)
    records = [
        r
        for r in load_records(data_dir)
        if r["tenant"] == TENANT and r["data_type"] == "email"
    ]
    expected = {
        r["id"]
        for r in records
        if any(p in parse_communication(r).render().lower() for p in PHRASES)
    }
    assert expected, "the data should hold matching emails"

    asyncio.run(start_shards(settings))
    start_pollers(settings)
    published = publish_communications(settings, records)

    # A malformed message and one of an unknown data type ride along.
    sns = client(settings, "sns")
    topic = sns.create_topic(Name=ResourceNames.of(settings).topic)["TopicArn"]
    for data_type, body in (("email", '{"id": "broken"'), ("fax", '{"id": "f"}')):
        sns.publish(
            TopicArn=topic,
            Message=body,
            MessageAttributes={
                "data_type": {"DataType": "String", "StringValue": data_type}
            },
        )

    def handled() -> bool:
        stats = poller_stats(settings)
        return stats["processed"] + stats["dead_lettered"] >= published + 2

    wait_for(handled, 120, "every message to be handled")
    notifications: list[AlertNotification] = []

    def all_triggers_delivered() -> bool:
        notifications.extend(receive_notifications(settings, wait_seconds=1))
        delivered = {t.communication_id for n in notifications for t in n.triggers}
        return delivered >= expected

    wait_for(all_triggers_delivered, 60, "the notifications")
    delivered = [t.communication_id for n in notifications for t in n.triggers]
    assert sorted(delivered) == sorted(expected)  # each exactly once
    assert {n.alert_id for n in notifications} == {alert.alert_id}
    assert all(t.reason and t.evidence for n in notifications for t in n.triggers)
    final = AlertStore(settings).get(TENANT, alert.alert_id)
    assert final is not None and final.state == {"mentions": len(expected)}

    # The two bad messages are in their dead-letter queues, with a reason.
    sqs = client(settings, "sqs")
    names = ResourceNames.of(settings)
    reasons = {}
    for kind in ("email", "unrouted"):
        url = sqs.get_queue_url(QueueName=names.dlq(kind))["QueueUrl"]
        [message] = sqs.receive_message(
            QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1
        )["Messages"]
        reasons[kind] = message["MessageAttributes"]["reason"]["StringValue"]
    assert "JSON" in reasons["email"] or "json" in reasons["email"]
    assert "data_type" in reasons["unrouted"]
