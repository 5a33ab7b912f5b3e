"""Ingestion through the real stack: SNS, SQS, S3, Ray, the offline model, DynamoDB.

Every test starts real services in its own namespace (AlertBatch shards and
pollers routing through ``TenantDirectory``), creates alerts with
``AlertStore`` and judges by what production leaves behind: the evaluation
ledger, the alerts' counters, the notifications on the output queue and the
dead-letter queues. Evaluations are slowed, or failed, by scripting the
offline model on a marker that only the test's own alert instructions carry.

Each Ray actor costs a process start (about 3 CPU-seconds here), so a test
starts only the pollers it needs, and scenarios that share a set-up share a
test.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
from click.testing import Result
from pydantic import SecretStr
from typer.testing import CliRunner

from actors.alert_batch import start_shards
from actors.names import ingest as ingest_name
from cli.main import app
from ingest.dead_letters import dlq_kinds, list_dead_letters
from ingest.publish import load_records, publish_communications
from ingest.supervisor import poller_counts, poller_stats, scale_pollers, start_pollers
from shared.aws.alert_store import AlertStore
from shared.aws.clients import client
from shared.aws.evaluation_store import EvaluationStore, LedgerRecord
from shared.aws.names import UNROUTED, ResourceNames
from shared.aws.provision import provision
from shared.aws.queues import receive_notifications
from shared.models import (
    Alert,
    AlertDefinition,
    StateField,
    StateSchema,
    parse_communication,
)
from shared.models.notifications import AlertNotification
from shared.settings import DATA_TYPES, Settings

pytestmark = pytest.mark.integration

Record = dict[str, Any]


# --- helpers --------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def create_alert(
    settings: Settings,
    tenant: str,
    phrases: tuple[str, ...],
    data_types: tuple[str, ...] = DATA_TYPES,
    marker: str = "",
) -> Alert:
    """A counting alert the offline model fires on any of ``phrases``.

    ``marker`` (unquoted, so not a phrase) appears in every evaluation request
    of this alert alone: the model's scripts match on it.
    """
    quoted = ", ".join(f'"{p}"' for p in phrases)
    definition = AlertDefinition(
        name=f"Mentions of {quoted}"[:80],
        description=f"Communications that mention {quoted}.",
        data_types=list(data_types),  # type: ignore[arg-type]
        instructions="Fire when the communication contains any of these phrases "
        f"(case-insensitive): {quoted}. {marker}".strip(),
        state_schema=StateSchema(fields=[StateField(name="hits", type="integer")]),
        window_seconds=1,
        owner=f"owner@{tenant}.example",
    )
    return AlertStore(settings).create(tenant, definition)


def fires(record: Record, phrases: tuple[str, ...]) -> bool:
    text = parse_communication(record).render().lower()
    return any(phrase in text for phrase in phrases)


def ledger(settings: Settings, alert: Alert) -> dict[str, LedgerRecord]:
    records = EvaluationStore(settings).recent(alert.tenant, alert.alert_id, 10_000)
    found = {r.result.communication_id: r for r in records}
    assert len(found) == len(records)  # one item per (alert, communication)
    return found


def completed(settings: Settings, alert: Alert) -> set[str]:
    return {c for c, e in ledger(settings, alert).items() if e.status == "completed"}


class Outbox:
    """What a downstream notifier reads from the output queue, in arrival order.

    Delivery is at least once with a stable id, so a notifier keeps the first
    of each id; a resend must carry the very same body.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.received: list[AlertNotification] = []

    @property
    def notifications(self) -> list[AlertNotification]:
        first: dict[str, AlertNotification] = {}
        for notification in self.received:
            kept = first.setdefault(notification.notification_id, notification)
            assert kept == notification, "two bodies under one notification id"
        return list(first.values())

    def trigger_ids(self, alert: Alert | None = None) -> list[str]:
        return [
            t.communication_id
            for n in self.notifications
            if alert is None or n.alert_id == alert.alert_id
            for t in n.triggers
        ]

    def describe(self, communication_ids: list[str]) -> list[str]:
        """Where these communications were delivered, for a failure message."""
        return [
            f"{t.communication_id} in {n.notification_id} window "
            f"{n.window_started_at} flushed {n.flushed_at} received {t.received_at}"
            for n in self.notifications
            for t in n.triggers
            if t.communication_id in communication_ids
        ]

    def wait_for_triggers(self, expected: set[str], timeout: float = 60) -> None:
        def delivered() -> bool:
            self.received += receive_notifications(self.settings, wait_seconds=0)
            return set(self.trigger_ids()) >= expected

        wait_for(delivered, timeout, f"{len(expected)} triggers to be delivered")


def queue_is_empty(settings: Settings, kind: str) -> bool:
    sqs = client(settings, "sqs")
    queue = sqs.get_queue_url(QueueName=ResourceNames.of(settings).queue(kind))
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue["QueueUrl"],
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
        ],
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


def send_raw(settings: Settings, kind: str, body: str, data_type: str) -> None:
    """A message as raw delivery leaves it: the body, its attribute on SQS."""
    sqs = client(settings, "sqs")
    queue = sqs.get_queue_url(QueueName=ResourceNames.of(settings).queue(kind))
    sqs.send_message(
        QueueUrl=queue["QueueUrl"],
        MessageBody=body,
        MessageAttributes={
            "data_type": {"DataType": "String", "StringValue": data_type}
        },
    )


def publish_message(settings: Settings, message: str, data_type: str) -> None:
    sns = client(settings, "sns")
    topic = sns.create_topic(Name=ResourceNames.of(settings).topic)["TopicArn"]
    sns.publish(
        TopicArn=topic,
        Message=message,
        MessageAttributes={
            "data_type": {"DataType": "String", "StringValue": data_type}
        },
    )


def start_email_only(settings: Settings) -> None:
    """Shards, and a poller on the email queue alone."""
    asyncio.run(start_shards(settings))
    scale_pollers(settings, "email", 1)


def watchword(settings: Settings, *args: str) -> Result:
    """The CLI as a shell with ``WATCHWORD_*`` variables for ``settings`` runs it."""
    env = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None:
            text = value if isinstance(value, str) else json.dumps(value)
            env[f"WATCHWORD_{name.upper()}"] = text
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def marker() -> str:
    return f"ref-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def model(settings: Settings, marker: str) -> Iterator[Callable[..., None]]:
    """Queue scripted answers for requests carrying the test's marker."""
    base = f"{settings.model_base_url}/_control/script"

    def script(responses: list[dict[str, Any]]) -> None:
        body = {"match": marker, "responses": responses}
        httpx.post(base, json=body, timeout=10).raise_for_status()

    yield script
    httpx.delete(base, params={"match": marker}, timeout=10).raise_for_status()


@pytest.fixture
def small(ray_services: Settings) -> Settings:
    """``ray_services`` with one AlertBatch shard: one process fewer."""
    return ray_services.with_overrides(alert_batch_shards=1)


@pytest.fixture(scope="module")
def records(data_dir: Path) -> list[Record]:
    return load_records(data_dir)


def pick(
    records: list[Record], tenant: str, data_type: str, phrases: tuple[str, ...] = ()
) -> list[Record]:
    """The tenant's records of a type (only those that fire, given phrases)."""
    return [
        r
        for r in records
        if r["tenant"] == tenant
        and r["data_type"] == data_type
        and (not phrases or fires(r, phrases))
    ]


# --- the whole feed ---------------------------------------------------------

PHRASES = ("contract", "price")
# Where each poison message ends, and how its reason begins.
POISON = [
    ("email", "body is not valid JSON"),
    ("email", "SNS envelope Message is not valid JSON"),
    (UNROUTED, "missing or unknown data_type attribute ('fax')"),
    ("email", "invalid communication: email.tenant: Field required"),
    (
        "email",
        "invalid communication: email.payload.subject: String should have at most "
        "2000 characters",
    ),
    ("salesforce", "communication must be a JSON object, not an array"),
    ("email", "broken Unicode (lone surrogate) in payload.body"),
    ("call_transcript", "S3 payload payloads/call-gone-0.json does not exist"),
]


def send_poison(settings: Settings, records: list[Record]) -> None:
    """The poison of ``POISON``, in that order, raw or through the topic."""
    email = pick(records, "tenant-acme", "email")[0]
    change = pick(records, "tenant-initech", "salesforce")[0]
    payload = email["payload"]
    send_raw(settings, "email", '{"id": "poison-json", "payload": ', "email")
    publish_message(settings, '{"id": "poison-cut", "tenant": "tenant-acme", ', "email")
    publish_communications(
        settings,
        [
            {**email, "id": "poison-fax", "data_type": "fax"},
            {k: v for k, v in email.items() if k != "tenant"} | {"id": "poison-tenant"},
            {
                **email,
                "id": "poison-long",
                "payload": {**payload, "subject": "x" * 3000},
            },
            {**email, "id": "poison-utf", "payload": {**payload, "body": "a \ud800 b"}},
        ],
    )
    send_raw(settings, "salesforce", json.dumps([change]), "salesforce")
    gone = {
        "bucket": ResourceNames.of(settings).bucket,
        "key": "payloads/call-gone-0.json",
    }
    send_raw(
        settings, "call_transcript", json.dumps({"s3_pointer": gone}), "call_transcript"
    )


def large_transcript(records: list[Record]) -> Record:
    """One call transcript over 256 KiB, made of real meetings' turns."""
    calls = sorted(
        (r for r in records if r["data_type"] == "call_transcript"),
        key=lambda r: -len(json.dumps(r)),
    )
    turns: list[dict[str, str]] = []
    for call in calls:
        turns += call["payload"]["turns"]
        if len(json.dumps(turns)) > 300 * 1024:
            break
    return {
        **calls[0],
        "id": "call-large-meetings",
        "tenant": "tenant-acme",
        "payload": {**calls[0]["payload"], "title": "Meetings in one", "turns": turns},
    }


def test_a_real_feed_with_duplicates_poison_and_a_huge_transcript_counts_once(
    small: Settings, records: list[Record]
) -> None:
    """Several hundred real records, a third delivered twice, each count once.

    The feed: every call transcript and email, every third Salesforce change
    (their processing is alike, and the emulator's transactions slow as the
    ledger grows), and a transcript over SQS's size limit that
    ``ingest.publish`` sends through S3 and the poller resolves. Beside it,
    the poison of ``POISON``, each dead-lettered with its reason while the
    rest flows. One alert per tenant and data type evaluates its
    communications one at a time, in arrival order; alerts run side by side.
    """
    settings = small
    huge = large_transcript(records)
    assert len(json.dumps(huge).encode()) > 256 * 1024
    changes = [r for r in records if r["data_type"] == "salesforce"][::3]
    feed = [r for r in records if r["data_type"] != "salesforce"] + changes
    assert len(feed) > 250
    pairs = sorted({(r["tenant"], r["data_type"]) for r in feed})
    alerts = {(t, d): create_alert(settings, t, PHRASES, (d,)) for t, d in pairs}
    expected = {r["id"] for r in [*feed, huge] if fires(r, PHRASES)}
    assert huge["id"] in expected
    duplicates = feed[::3]
    feed.append(huge)
    asyncio.run(start_shards(settings))
    start_pollers(settings)

    published = publish_communications(settings, feed)
    for record in duplicates:
        # SQS delivers at least once; a raw re-send is a second delivery.
        send_raw(settings, record["data_type"], json.dumps(record), record["data_type"])
    send_poison(settings, records)

    def all_handled() -> bool:
        stats = poller_stats(settings)
        handled = stats["processed"] + stats["dead_lettered"]
        if handled < published + len(duplicates) + len(POISON):
            return False
        return all(queue_is_empty(settings, kind) for kind in dlq_kinds(settings, None))

    wait_for(all_handled, 180, "every message to be handled")
    outbox = Outbox(settings)
    outbox.wait_for_triggers(expected)

    # Each pair applied once: one completed ledger item per communication of
    # the alert, one state version per item, one count per firing.
    for (tenant, data_type), alert in alerts.items():
        own = {
            r["id"]
            for r in feed
            if (r["tenant"], r["data_type"]) == (tenant, data_type)
        }
        entries = ledger(settings, alert)
        assert set(entries) == own
        assert {e.status for e in entries.values()} == {"completed"}
        fired = {c for c, e in entries.items() if e.result.fired}
        assert fired == own & expected
        final = AlertStore(settings).get(tenant, alert.alert_id)
        assert final is not None
        assert (final.version, final.state) == (len(own), {"hits": len(fired)})
    triggers = outbox.trigger_ids()
    twice = [c for c, n in Counter(triggers).items() if n > 1]
    assert twice == [], outbox.describe(twice)
    assert set(triggers) == expected

    stored = client(settings, "s3").list_objects_v2(
        Bucket=ResourceNames.of(settings).bucket, Prefix="payloads/"
    )
    [key] = [o["Key"] for o in stored["Contents"]]
    assert key.startswith("payloads/call-large-meetings-")

    letters = list_dead_letters(settings, dlq_kinds(settings, None))
    assert len(letters) == len(POISON), [(d.kind, d.reason) for d in letters]
    for kind, reason in POISON:
        assert [d for d in letters if d.kind == kind and d.reason.startswith(reason)]
    stats = poller_stats(settings)
    # At least once: a message may come twice (its effect still counts once).
    assert stats["processed"] >= published + len(duplicates)
    assert stats["dead_lettered"] == len(POISON)


# --- pollers dying and scaling ----------------------------------------------


def test_a_poller_killed_mid_batch_or_scaled_down_loses_nothing(
    small: Settings,
    records: list[Record],
    model: Callable[..., None],
    marker: str,
) -> None:
    # A short visibility timeout: what the dead poller held comes back soon.
    settings = small.with_overrides(sqs_visibility_timeout=3)
    phrases = ("the",)
    emails = pick(records, "tenant-acme", "email")[:12]
    first, second = emails[:6], emails[6:]
    alert = create_alert(settings, "tenant-acme", phrases, ("email",), marker)
    expected = {r["id"] for r in emails if fires(r, phrases)}
    # One alert evaluates one email at a time: 6 times 0.6 s keeps most of the
    # first batch in flight when its poller dies.
    model([{"total_ms": 600}] * len(first))
    start_email_only(settings)

    publish_communications(settings, first)
    wait_for(lambda: poller_stats(settings)["processed"] >= 1, 60, "a first email")
    poller = ray.get_actor(ingest_name("email", 0), namespace=settings.ray_namespace)
    in_flight = ray.get(poller.stats.remote())["in_flight"]
    ray.kill(poller, no_restart=True)
    assert in_flight > 0

    # An operator brings the poller back, and one more.
    up = watchword(settings, "pollers", "scale", "2", "--queue", "email")
    assert up.exit_code == 0, up.output
    assert poller_counts(settings)["email"] == 2
    publish_communications(settings, second)
    # Scaled down while messages flow: the stopped poller finishes or
    # releases what it holds, and the one left takes the rest.
    down = watchword(settings, "pollers", "scale", "1", "--queue", "email")
    assert down.exit_code == 0, down.output

    wait_for(
        lambda: (
            completed(settings, alert) == {r["id"] for r in emails}
            and queue_is_empty(settings, "email")
        ),
        90,
        "every email to be processed",
    )
    outbox = Outbox(settings)
    outbox.wait_for_triggers(expected)
    assert sorted(outbox.trigger_ids()) == sorted(expected)
    final = AlertStore(settings).get("tenant-acme", alert.alert_id)
    assert final is not None and final.state == {"hits": len(expected)}
    names = {
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == settings.ray_namespace
        and actor["name"].startswith("ingest/")
    }
    assert names == {ingest_name("email", 0)}
    status = watchword(settings, "pollers", "status")
    assert status.exit_code == 0, status.output
    assert "email" in status.output


# --- slow evaluations -------------------------------------------------------


def test_a_slow_tenant_holds_up_no_other_and_its_messages_are_received_once(
    small: Settings,
    records: list[Record],
    model: Callable[..., None],
    marker: str,
) -> None:
    """One tenant's evaluations take 2.5 s each, longer than the 2 s visibility
    timeout; another tenant's are quick. The quick tenant's notifications
    arrive first, and the slow tenant's messages, hidden by the poller's
    heartbeat while they are worked on, are each received once
    (ApproximateReceiveCount stays 1)."""
    settings = small.with_overrides(sqs_visibility_timeout=2)
    phrases = ("contract",)
    slow = pick(records, "tenant-acme", "email", phrases)[:2]
    fast = pick(records, "tenant-globex", "email", phrases)[:4]
    quiet = [
        next(r for r in pick(records, tenant, "email") if not fires(r, phrases))
        for tenant in ("tenant-acme", "tenant-globex")
    ]
    slow_alert = create_alert(settings, "tenant-acme", phrases, ("email",), marker)
    create_alert(settings, "tenant-globex", phrases, ("email",))
    start_email_only(settings)
    # Both tenants' actors are up before the race: a process start takes
    # longer than the slow evaluations do.
    publish_communications(settings, quiet)
    wait_for(lambda: poller_stats(settings)["processed"] == 2, 60, "the warm-up")

    model([{"ttft_ms": 1000, "total_ms": 2500}] * len(slow))
    # The slow tenant's messages go first and stay in work throughout.
    publish_communications(settings, slow)
    publish_communications(settings, fast)
    outbox = Outbox(settings)
    outbox.wait_for_triggers({r["id"] for r in slow + fast})

    flushed = {
        tenant: sorted(n.flushed_at for n in outbox.notifications if n.tenant == tenant)
        for tenant in ("tenant-acme", "tenant-globex")
    }
    assert flushed["tenant-globex"][-1] < flushed["tenant-acme"][0]
    assert sorted(outbox.trigger_ids(slow_alert)) == sorted(r["id"] for r in slow)
    stats = poller_stats(settings)
    assert (stats["received"], stats["processed"], stats["retried"]) == (8, 8, 0)


# --- redrive ----------------------------------------------------------------


def test_a_message_failed_through_a_model_outage_is_redriven_and_processed(
    small: Settings,
    records: list[Record],
    model: Callable[..., None],
    marker: str,
) -> None:
    """The model is down (529) for longer than a message's retries last.

    Each receive fails its evaluation, the poller backs off, and after
    ``maxReceiveCount`` receives the queue's redrive policy moves the message
    to the dead-letter queue. The outage ends; an operator lists the dead
    letters, sees why, and redrives: the message is processed and its alert
    fires.
    """
    settings = small.with_overrides(sqs_max_receive_count=2, llm_max_attempts=1)
    provision(settings)  # the queues' redrive policy now says 2
    phrases = ("contract",)
    email = pick(records, "tenant-globex", "email", phrases)[0]
    alert = create_alert(settings, "tenant-globex", phrases, ("email",), marker)
    model([{"error": {"status": 529}}] * 10)
    start_email_only(settings)

    publish_communications(settings, [email])
    wait_for(lambda: queue_is_empty(settings, "email"), 60, "the redrive policy")
    listed = watchword(settings, "dlq", "list", "--json", "--queue", "email")
    assert listed.exit_code == 0, listed.output
    [letter] = [json.loads(line) for line in listed.output.splitlines()]
    assert letter["reason"] == "redrive policy: not processed in 2 receives"
    assert (letter["tenant"], letter["communication_id"]) == (
        "tenant-globex",
        email["id"],
    )
    assert ledger(settings, alert)[email["id"]].status == "failed"

    # The outage ends.
    httpx.delete(
        f"{settings.model_base_url}/_control/script", params={"match": marker}
    ).raise_for_status()
    redriven = watchword(settings, "dlq", "redrive", "--queue", "email")
    assert redriven.exit_code == 0, redriven.output
    assert "redriven 1" in redriven.output

    outbox = Outbox(settings)
    outbox.wait_for_triggers({email["id"]})
    assert ledger(settings, alert)[email["id"]].status == "completed"
    assert queue_is_empty(settings, "email")
    assert list_dead_letters(settings, ["email"]) == []
