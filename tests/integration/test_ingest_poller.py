"""The ingest poller against the local AWS emulator, with routes injected.

Each test publishes through the real SNS topic (or sends to the queue), runs a
``Poller`` on its own queues and looks at what the queues hold afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest.poller import Poller, Route
from ingest.publish import load_records, publish_communications
from shared.aws.clients import client
from shared.aws.names import UNROUTED, ResourceNames
from shared.aws.provision import provision
from shared.errors import ModelUnavailable, StateViolation
from shared.models import Communication
from shared.settings import Settings

pytestmark = pytest.mark.integration


class Recorder:
    """A route that records what it saw and behaves as each test asks."""

    def __init__(
        self, behaviour: Callable[[Communication, int], Any] | None = None
    ) -> None:
        self.seen: list[Communication] = []
        self.behaviour = behaviour
        self.concurrent = 0
        self.most_concurrent = 0

    async def __call__(self, communication: Communication) -> None:
        self.seen.append(communication)
        self.concurrent += 1
        self.most_concurrent = max(self.most_concurrent, self.concurrent)
        try:
            if self.behaviour is not None:
                result = self.behaviour(communication, len(self.seen))
                if asyncio.iscoroutine(result):
                    await result
        finally:
            self.concurrent -= 1


async def run_until(
    pollers: list[Poller],
    done: Callable[[], bool],
    timeout: float = 15.0,
    drain_seconds: float = 5.0,
) -> None:
    for poller in pollers:
        poller.start()
    deadline = time.monotonic() + timeout
    try:
        while not done():
            assert time.monotonic() < deadline, [p.stats() for p in pollers]
            await asyncio.sleep(0.05)
    finally:
        await asyncio.gather(*(p.stop(drain_seconds) for p in pollers))


def queue_url(settings: Settings, name: str) -> str:
    return str(client(settings, "sqs").get_queue_url(QueueName=name)["QueueUrl"])


def drain(settings: Settings, name: str) -> list[dict[str, Any]]:
    """Everything visible in a queue now (received, so hidden afterwards)."""
    sqs = client(settings, "sqs")
    url = queue_url(settings, name)
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)


def counts(settings: Settings, name: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = client(settings, "sqs").get_queue_attributes(
        QueueUrl=queue_url(settings, name),
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
        ],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def publish_raw(settings: Settings, message: str, data_type: str | None) -> None:
    sns = client(settings, "sns")
    topic = sns.create_topic(Name=ResourceNames.of(settings).topic)["TopicArn"]
    attributes = {}
    if data_type is not None:
        attributes["data_type"] = {"DataType": "String", "StringValue": data_type}
    sns.publish(TopicArn=topic, Message=message, MessageAttributes=attributes)


@pytest.fixture(scope="module")
def records(data_dir: Path) -> dict[str, dict[str, Any]]:
    """One real record of each data type."""
    first: dict[str, dict[str, Any]] = {}
    for record in load_records(data_dir):
        first.setdefault(record["data_type"], record)
    return first


def poller(settings: Settings, kind: str, route: Route) -> Poller:
    return Poller(settings, kind, route)


def test_a_published_communication_is_routed_then_deleted(
    aws_provisioned: Settings, records: dict[str, dict[str, Any]]
) -> None:
    settings = aws_provisioned
    record = records["call_transcript"]
    assert publish_communications(settings, [record]) == 1
    route = Recorder()
    calls = poller(settings, "call_transcript", route)

    asyncio.run(run_until([calls], lambda: calls.stats()["processed"] == 1))

    assert [c.id for c in route.seen] == [record["id"]]
    assert route.seen[0].tenant == record["tenant"]
    assert calls.stats() == {
        "received": 1,
        "processed": 1,
        "dead_lettered": 0,
        "retried": 0,
        "in_flight": 0,
    }
    names = ResourceNames.of(settings)
    assert counts(settings, names.queue("call_transcript")) == (0, 0)
    assert counts(settings, names.dlq("call_transcript")) == (0, 0)


def test_bad_messages_are_dead_lettered_with_a_reason_while_good_ones_flow(
    aws_provisioned: Settings, records: dict[str, dict[str, Any]]
) -> None:
    settings = aws_provisioned
    good = records["email"]
    publish_communications(settings, [good])
    publish_raw(settings, '{"id": "email-broken", "payload": ', "email")
    publish_raw(settings, json.dumps({**good, "data_type": "fax"}), "fax")
    route = Recorder()
    emails = poller(settings, "email", route)
    unrouted = poller(settings, UNROUTED, route)

    def handled() -> bool:
        e, u = emails.stats(), unrouted.stats()
        return (e["processed"], e["dead_lettered"], u["dead_lettered"]) == (1, 1, 1)

    asyncio.run(run_until([emails, unrouted], handled))

    assert [c.id for c in route.seen] == [good["id"]]
    names = ResourceNames.of(settings)
    [broken] = drain(settings, names.dlq("email"))
    attributes = broken["MessageAttributes"]
    assert attributes["reason"]["StringValue"].startswith(
        "SNS envelope Message is not valid JSON"
    )
    assert attributes["source_queue"]["StringValue"] == names.queue("email")
    assert attributes["receive_count"]["StringValue"] == "1"
    # The original body goes to the DLQ untouched, envelope and all.
    assert json.loads(broken["Body"])["Message"] == '{"id": "email-broken", "payload": '

    [fax] = drain(settings, names.dlq(UNROUTED))
    assert fax["MessageAttributes"]["reason"]["StringValue"] == (
        "missing or unknown data_type attribute ('fax')"
    )
    for kind in ("email", UNROUTED):
        assert counts(settings, names.queue(kind)) == (0, 0)


def test_a_transient_failure_leaves_the_message_for_redelivery(
    aws_provisioned: Settings, records: dict[str, dict[str, Any]]
) -> None:
    settings = aws_provisioned
    publish_communications(settings, [records["salesforce"]])

    def fail_first(_: Communication, call: int) -> None:
        if call == 1:
            raise ModelUnavailable("the model answered 529 three times")

    route = Recorder(fail_first)
    changes = poller(settings, "salesforce", route)

    asyncio.run(run_until([changes], lambda: changes.stats()["processed"] == 1))

    # Backed off for 2 s, received again, then processed and deleted.
    assert len(route.seen) == 2
    assert changes.stats()["received"] == 2
    assert changes.stats()["retried"] == 1
    names = ResourceNames.of(settings)
    assert counts(settings, names.queue("salesforce")) == (0, 0)
    assert counts(settings, names.dlq("salesforce")) == (0, 0)


def test_a_permanent_failure_of_the_route_is_dead_lettered_at_once(
    aws_provisioned: Settings, records: dict[str, dict[str, Any]]
) -> None:
    settings = aws_provisioned
    publish_communications(settings, [records["email"]])

    def refuse(_: Communication, __: int) -> None:
        raise StateViolation("alert a-1: field 'count' must be an integer")

    emails = poller(settings, "email", Recorder(refuse))

    asyncio.run(run_until([emails], lambda: emails.stats()["dead_lettered"] == 1))

    [message] = drain(settings, ResourceNames.of(settings).dlq("email"))
    assert message["MessageAttributes"]["reason"]["StringValue"] == (
        "StateViolation: alert a-1: field 'count' must be an integer"
    )


def test_visibility_is_extended_while_a_slow_route_runs(
    settings: Settings, records: dict[str, dict[str, Any]]
) -> None:
    settings = settings.with_overrides(sqs_visibility_timeout=2)
    provision(settings)
    publish_communications(settings, [records["email"]])

    async def slow(_: Communication, __: int) -> None:
        await asyncio.sleep(5)

    route = Recorder(slow)
    emails = poller(settings, "email", route)

    asyncio.run(run_until([emails], lambda: emails.stats()["processed"] == 1))

    # Without the heartbeat the message would reappear after 2 s and this same
    # poller would receive it again while the first evaluation still ran.
    assert len(route.seen) == 1
    assert emails.stats()["received"] == 1


def test_a_full_poller_stops_receiving_and_a_stop_releases_its_messages(
    settings: Settings, records: dict[str, dict[str, Any]]
) -> None:
    settings = settings.with_overrides(ingest_max_in_flight=2)
    provision(settings)
    publish_communications(settings, [records["email"]] * 5)
    never = asyncio.Event()

    async def block(_: Communication, __: int) -> None:
        await never.wait()

    route = Recorder(block)
    emails = poller(settings, "email", route)

    async def scenario() -> None:
        await run_until(
            [emails],
            lambda: emails.stats()["in_flight"] == 2 and time_passed(),
            drain_seconds=0.2,
        )

    started = time.monotonic()

    def time_passed() -> bool:
        # Long enough for two more receives, were the poller still receiving.
        return time.monotonic() - started > 2.5

    asyncio.run(scenario())

    assert emails.stats()["received"] == 2
    assert route.most_concurrent == 2
    assert emails.stats()["in_flight"] == 0
    # Released with visibility 0, not left hidden for the 10 s timeout.
    assert counts(settings, ResourceNames.of(settings).queue("email")) == (5, 0)
