"""The poller's failure paths, with a stand-in SQS client that can be made to fail.

The happy paths run against the emulator (tests/integration); here are the
cases the emulator will not produce on demand: SQS unreachable, a delete that
does not take, a missing queue.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ingest.poller import Poller, backoff_seconds
from shared.models import Communication
from shared.settings import Settings

SETTINGS = Settings(
    resource_prefix="unit", sqs_wait_seconds=0, sqs_visibility_timeout=30
)

EMAIL = {
    "id": "email-1",
    "tenant": "tenant-acme",
    "data_type": "email",
    "occurred_at": "2025-02-01T12:00:00+00:00",
    "payload": {"from": "Sales", "body": "Hello"},
}


def missing_queue() -> ClientError:
    return ClientError(
        {"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue"}},
        "GetQueueUrl",
    )


class FakeSqs:
    """Just enough SQS: a list of bodies handed out once, and a call log."""

    def __init__(self, bodies: list[str]) -> None:
        self.waiting = list(bodies)
        self.calls: list[str] = []
        self.deleted: list[str] = []
        self.receive_failures = 0
        self.delete_refused = False
        self.queue_missing = False
        self._lock = threading.Lock()  # boto3 calls arrive from worker threads

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        self.calls.append("get_queue_url")
        if self.queue_missing:
            raise missing_queue()
        return {"QueueUrl": f"https://sqs.local/{QueueName}"}

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("receive_message")
        with self._lock:
            if self.receive_failures:
                self.receive_failures -= 1
                raise EndpointConnectionError(endpoint_url="https://sqs.local")
            taken, self.waiting = self.waiting[:1], self.waiting[1:]
        if not taken:
            time.sleep(0.01)  # as a short long-poll would
        return {
            "Messages": [
                {
                    "MessageId": f"m-{len(self.calls)}",
                    "ReceiptHandle": f"r-{len(self.calls)}",
                    "Body": body,
                    "Attributes": {"ApproximateReceiveCount": "1"},
                }
                for body in taken
            ]
        }

    def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("delete_message_batch")
        entries = kwargs["Entries"]
        if self.delete_refused:
            failed = [
                {"Id": e["Id"], "Code": "ReceiptHandleIsInvalid"} for e in entries
            ]
            return {"Successful": [], "Failed": failed}
        self.deleted.extend(e["ReceiptHandle"] for e in entries)
        return {"Successful": [{"Id": e["Id"]} for e in entries], "Failed": []}

    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("change_message_visibility_batch")
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]]}

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("send_message")
        return {"MessageId": "dlq-1"}


async def routed(_: Communication) -> None:
    return None


async def run_until(
    poller: Poller, done: Callable[[], bool], timeout: float = 5.0
) -> None:
    poller.start()
    deadline = time.monotonic() + timeout
    try:
        while not done():
            assert time.monotonic() < deadline, poller.stats()
            await asyncio.sleep(0.01)
    finally:
        await poller.stop(drain_seconds=1.0)


def test_the_poller_keeps_polling_after_sqs_was_unreachable() -> None:
    sqs = FakeSqs([json.dumps(EMAIL)])
    sqs.receive_failures = 2
    poller = Poller(SETTINGS, "email", routed, sqs=sqs)

    asyncio.run(run_until(poller, lambda: poller.stats()["processed"] == 1))

    assert sqs.calls.count("receive_message") >= 3
    assert len(sqs.deleted) == 1


def test_a_message_whose_delete_fails_is_not_counted_as_processed() -> None:
    sqs = FakeSqs([json.dumps(EMAIL)])
    sqs.delete_refused = True
    seen: list[str] = []

    async def route(communication: Communication) -> None:
        seen.append(communication.id)

    poller = Poller(SETTINGS, "email", route, sqs=sqs)

    asyncio.run(run_until(poller, lambda: "delete_message_batch" in sqs.calls))

    assert seen == ["email-1"]
    assert poller.stats()["processed"] == 0
    assert poller.stats()["in_flight"] == 0


def test_a_stop_ends_a_poller_whose_queue_does_not_exist() -> None:
    sqs = FakeSqs([])
    sqs.queue_missing = True
    poller = Poller(SETTINGS, "email", routed, sqs=sqs)

    async def scenario() -> float:
        poller.start()
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await poller.stop()
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0
    assert "receive_message" not in sqs.calls


def test_an_undecodable_message_is_dead_lettered_before_it_is_deleted() -> None:
    sqs = FakeSqs(["{not json"])
    poller = Poller(SETTINGS, "email", routed, sqs=sqs)

    asyncio.run(run_until(poller, lambda: poller.stats()["dead_lettered"] == 1))

    assert sqs.calls.index("send_message") < sqs.calls.index("delete_message_batch")


@pytest.mark.parametrize(
    ("receives", "seconds"), [(0, 2), (1, 2), (2, 4), (5, 32), (6, 60), (40, 60)]
)
def test_the_backoff_doubles_per_receive_up_to_a_minute(
    receives: int, seconds: int
) -> None:
    assert backoff_seconds(receives) == seconds
