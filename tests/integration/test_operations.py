"""Operations end to end: real records through the stack, then what an operator sees.

One run per module (it takes a while): real emails plus a communication that
carries a unique mark in its text, and three bad messages, go through SNS,
SQS, the pollers, the tenant actor, the offline model and the shards. Then the
tests read the metrics from the node's Prometheus endpoint, ``watchword
status``, the actors' names and every Ray log file of the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import ray
from typer.testing import CliRunner

from actors.alert_batch import start_shards
from cli.main import app
from cli.prometheus import Samples, node_endpoints, scrape
from cli.status import collect
from ingest.publish import load_records, publish_communications
from ingest.supervisor import poller_stats, start_pollers, stop_pollers
from shared.aws.alert_store import AlertStore
from shared.aws.clients import client
from shared.aws.names import ResourceNames
from shared.aws.provision import provision
from shared.aws.queues import receive_notifications
from shared.models import AlertDefinition, StateField, StateSchema, parse_communication
from shared.models.notifications import AlertNotification
from shared.settings import Settings
from standins.process import ServerProcess

TENANT = "tenant-acme"
PHRASES = ("bankrupt", "lawsuit")
# In the text of communications only: ids, names and settings never hold it.
MARK = f"quokka{uuid.uuid4().hex[:12]}"
METRICS_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Run:
    settings: Settings
    valid: int  # communications that reach the tenant (the marked one included)
    fired: int
    marked_id: str
    notifications: list[AlertNotification]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def bad_messages(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(data_type attribute, body): invalid, not JSON, of no known type."""
    invalid = {**record, "id": "ops-invalid", "occurred_at": f"when {MARK} said"}
    return [
        ("email", json.dumps(invalid)),
        ("email", '{"id": "ops-broken", "payload": {"body": "' + MARK),
        ("fax", json.dumps({"id": "ops-fax", "data_type": "fax", "text": MARK})),
    ]


@pytest.fixture(scope="module")
def run(
    emulator: ServerProcess,
    model_server: ServerProcess,
    ray_session: None,
    data_dir: Path,
) -> Iterator[Run]:
    name = f"ops{uuid.uuid4().hex[:8]}"
    settings = Settings(
        aws_endpoint_url=emulator.url,
        model_base_url=model_server.url,
        resource_prefix=name,
        ray_namespace=name,
        sqs_wait_seconds=1,
        sqs_visibility_timeout=10,
        sqs_max_receive_count=3,
        batch_window_seconds=1.0,
        sweep_interval_seconds=2.0,
        tenant_idle_seconds=120.0,
        alert_batch_shards=2,
        evaluator_pool_size=1,
        pollers_per_queue=1,
    )
    provision(settings)
    AlertStore(settings).create(
        TENANT,
        AlertDefinition(
            name="Financial distress",
            description="Emails about bankruptcy or lawsuits.",
            data_types=["email"],
            instructions='Fire when the email mentions "bankrupt" or "lawsuit".',
            state_schema=StateSchema(
                fields=[StateField(name="mentions", type="integer")]
            ),
            window_seconds=1,
            owner="cfo@acme.example",
        ),
    )

    emails = [
        r
        for r in load_records(data_dir)
        if r["tenant"] == TENANT and r["data_type"] == "email"
    ]

    def fires(record: dict[str, Any]) -> bool:
        text = parse_communication(record).render().lower()
        return any(p in text for p in PHRASES)

    records = [r for r in emails if fires(r)][:3]
    records += [r for r in emails if not fires(r)][: 6 - len(records)]
    fired = sum(fires(r) for r in records)
    template = next(r for r in emails if not fires(r))
    marked = json.loads(json.dumps(template))
    marked["id"] = f"ops-marked-{uuid.uuid4().hex[:8]}"
    marked["payload"]["body"] += f" The lawsuit {MARK} was filed today."
    records.append(marked)

    try:
        asyncio.run(start_shards(settings))
        start_pollers(settings)
        published = publish_communications(settings, records)
        sns = client(settings, "sns")
        topic = sns.create_topic(Name=ResourceNames.of(settings).topic)["TopicArn"]
        for data_type, body in bad_messages(template):
            attribute = {"DataType": "String", "StringValue": data_type}
            sns.publish(
                TopicArn=topic, Message=body, MessageAttributes={"data_type": attribute}
            )

        def handled() -> bool:
            stats = poller_stats(settings)
            return stats["processed"] + stats["dead_lettered"] >= published + 3

        wait_for(handled, 120, "every message to be handled")
        notifications: list[AlertNotification] = []

        def delivered() -> bool:
            notifications.extend(receive_notifications(settings, wait_seconds=1))
            ids = {t.communication_id for n in notifications for t in n.triggers}
            return len(ids) >= fired + 1

        wait_for(delivered, 60, "the notifications")
        yield Run(settings, len(records), fired + 1, marked["id"], notifications)
    finally:
        stop_pollers(settings, drain_seconds=1.0)
        for actor in ray.util.list_named_actors(all_namespaces=True):
            if actor["namespace"] == name:
                with contextlib.suppress(ValueError):
                    ray.kill(ray.get_actor(actor["name"], namespace=name))


def expected_counts(run: Run) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(metric, labels) -> the count the run must have produced."""
    not_fired = run.valid - run.fired
    return {
        ("watchword_communications_received_total", (("data_type", "email"),)): (
            run.valid + 2
        ),
        ("watchword_communications_received_total", (("data_type", "unrouted"),)): 1,
        ("watchword_communications_processed_total", (("data_type", "email"),)): (
            run.valid
        ),
        (
            "watchword_communications_dead_lettered_total",
            (("data_type", "email"), ("reason", "validation")),
        ): 1,
        (
            "watchword_communications_dead_lettered_total",
            (("data_type", "email"), ("reason", "invalid_json")),
        ): 1,
        (
            "watchword_communications_dead_lettered_total",
            (("data_type", "unrouted"), ("reason", "unknown_data_type")),
        ): 1,
        ("watchword_evaluations_total", (("outcome", "fired"),)): run.fired,
        ("watchword_evaluations_total", (("outcome", "not_fired"),)): not_fired,
        ("watchword_alerts_fired_total", (("data_type", "email"),)): run.fired,
        ("watchword_notifications_sent_total", ()): len(run.notifications),
        ("watchword_llm_latency_seconds_count", ()): run.valid,
        ("watchword_tenant_actors_active", ()): 1,
        ("watchword_pending_alerts", ()): 0,
    }


def read_metrics(settings: Settings) -> Samples:
    samples, failed = scrape(node_endpoints())
    assert not failed, f"metrics endpoints did not answer: {failed}"
    return Samples(samples, settings.ray_namespace)


def test_the_metrics_endpoint_counts_what_the_run_did(run: Run) -> None:
    expected = expected_counts(run)

    def actual(metrics: Samples) -> dict[Any, float]:
        return {key: metrics.total(key[0], **dict(key[1])) for key in expected}

    # Ray's agent exports each process's values every few seconds.
    deadline = time.monotonic() + METRICS_WAIT_SECONDS
    while True:
        metrics = read_metrics(run.settings)
        found = actual(metrics)
        if found == expected or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert found == expected

    model = run.settings.evaluation_model
    assert metrics.total("watchword_llm_tokens_total", model=model, kind="input") > 0
    assert metrics.by("watchword_pending_alerts", "shard")  # the shards report
    queue = ResourceNames.of(run.settings).queue("email")
    assert metrics.by("watchword_sqs_lag_seconds", "queue").keys() >= {(queue,)}


def test_status_shows_queues_tenants_and_errors(run: Run) -> None:
    status = collect(run.settings)

    assert [t.tenant for t in status.tenants] == [TENANT]
    assert status.tenants[0].usage["input_tokens"] > 0
    assert status.pollers["processed"] == run.valid
    assert status.pollers["dead_lettered"] == 3
    assert status.open_windows == 0
    email = ResourceNames.of(run.settings).queue("email")
    [row] = [q for q in status.queues if q.name == email]
    assert row.lag_seconds is not None

    env = {
        "WATCHWORD_AWS_ENDPOINT_URL": run.settings.aws_endpoint_url or "",
        "WATCHWORD_MODEL_BASE_URL": run.settings.model_base_url or "",
        "WATCHWORD_RESOURCE_PREFIX": run.settings.resource_prefix,
        "WATCHWORD_RAY_NAMESPACE": run.settings.ray_namespace,
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(app, ["status"], env=env)

    assert result.exit_code == 0, result.output
    assert TENANT in result.output
    assert email in result.output
    for line in (
        "dead letter email/invalid_json 1",
        "dead letter email/validation 1",
        "dead letter unrouted/unknown_data_type 1",
    ):
        assert line in result.output


def test_the_actors_carry_the_names_of_the_architecture(run: Run) -> None:
    names = {
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == run.settings.ray_namespace
    }

    assert {
        f"tenant/{TENANT}",
        "evaluator/0",
        "alert-batch/0",
        "alert-batch/1",
        *(f"ingest/{k}/0" for k in ResourceNames.of(run.settings).input_kinds),
    } <= names
    pattern = r"(tenant/.+|evaluator/\d+|alert-batch/\d+|ingest/[a-z_]+/\d+)"
    assert all(re.fullmatch(pattern, name) for name in names), names


def test_no_ray_log_file_holds_communication_text(run: Run) -> None:
    # The driver's view of the session; Ray has no public accessor for it.
    node = ray._private.worker._global_node
    assert node is not None
    files = [p for p in Path(node.get_logs_dir_path()).rglob("*") if p.is_file()]

    holding_mark = [p.name for p in files if MARK.encode() in p.read_bytes()]
    holding_id = [p.name for p in files if run.marked_id.encode() in p.read_bytes()]

    assert holding_id, "the marked communication's id should be logged somewhere"
    assert holding_mark == []
