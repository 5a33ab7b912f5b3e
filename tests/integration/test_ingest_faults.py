"""A crash between processing and the SQS ack loses nothing, applies nothing twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import ray

from actors.alert_batch import start_shards
from actors.names import ingest
from ingest.publish import load_records, publish_communications
from ingest.supervisor import poller_stats, start_pollers
from shared.aws.alert_store import AlertStore
from shared.aws.evaluation_store import EvaluationStore
from shared.aws.pending_store import PendingStore
from shared.models import AlertDefinition, StateField, StateSchema
from shared.settings import Settings


def test_a_crash_before_the_ack_is_redelivered_and_applied_once(
    ray_services: Settings, data_dir: Path
) -> None:
    settings = ray_services.with_overrides(sqs_visibility_timeout=2)
    record = next(
        r
        for r in load_records(data_dir)
        if r["data_type"] == "email" and "contract" in r["payload"]["body"]
    )
    tenant = record["tenant"]
    alert = AlertStore(settings).create(
        tenant,
        AlertDefinition(
            name="contracts",
            description="d",
            data_types=["email"],
            instructions='Fire when the email mentions "contract".',
            state_schema=StateSchema(fields=[StateField(name="seen", type="integer")]),
            window_seconds=3600,
        ),
    )
    asyncio.run(start_shards(settings))
    start_pollers(settings)
    poller = ray.get_actor(ingest("email", 0), namespace=settings.ray_namespace)
    ray.get(poller.arm_fault.remote("ingest.before_ack"))

    publish_communications(settings, [record])
    deadline = time.monotonic() + 60
    while poller_stats(settings)["processed"] < 1:
        assert time.monotonic() < deadline, "the message was never processed"
        time.sleep(0.25)

    assert ray.get(poller.fault_hits.remote())["ingest.before_ack"] == 2
    stats = poller_stats(settings)
    assert stats["received"] == 2  # the crash, then the redelivery
    current = AlertStore(settings).get(tenant, alert.alert_id)
    assert current is not None and current.state == {"seen": 1}
    triggers = PendingStore(settings).triggers(tenant, alert.alert_id)
    assert [t.communication_id for _, t in triggers] == [record["id"]]
    ledger = EvaluationStore(settings).ledger(tenant, alert.alert_id, record["id"])
    assert ledger is not None and ledger.status == "completed"
