"""Dead-letter bookkeeping: which attributes a dead letter carries and keeps."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

import shared.aws.payloads
from ingest.dead_letters import (
    BOOKKEEPING,
    MAX_ATTRIBUTES,
    dead_letter_attributes,
    dlq_kinds,
    kept_attributes,
)
from ingest.poller import Poller
from shared.models import Communication
from shared.settings import Settings

SETTINGS = Settings(
    resource_prefix="unit", sqs_wait_seconds=0, sqs_visibility_timeout=30
)


def string(value: str) -> dict[str, Any]:
    # As boto3 answers a received attribute: with empty list fields.
    return {
        "DataType": "String",
        "StringValue": value,
        "StringListValues": [],
        "BinaryListValues": [],
    }


def test_a_dead_letter_keeps_the_message_attributes_and_adds_its_reason() -> None:
    attributes = dead_letter_attributes(
        "unknown data_type 'fax'", "q-email", "m-1", 2, {"data_type": string("email")}
    )

    assert attributes == {
        "data_type": {"DataType": "String", "StringValue": "email"},
        "reason": {"DataType": "String", "StringValue": "unknown data_type 'fax'"},
        "source_queue": {"DataType": "String", "StringValue": "q-email"},
        "source_message_id": {"DataType": "String", "StringValue": "m-1"},
        "receive_count": {"DataType": "Number", "StringValue": "2"},
    }


def test_a_dead_letter_replaces_an_earlier_reason_and_stays_within_the_limit() -> None:
    original = {f"a{i}": string(str(i)) for i in range(12)}
    original["reason"] = string("the reason of an earlier failure")

    attributes = dead_letter_attributes("new reason", "q", "m", 1, original)

    assert len(attributes) == MAX_ATTRIBUTES
    assert attributes["reason"]["StringValue"] == "new reason"


def test_a_redriven_message_sheds_the_bookkeeping_attributes() -> None:
    received = {name: string("x") for name in BOOKKEEPING}
    received["data_type"] = string("email")
    received["blob"] = {"DataType": "Binary", "BinaryValue": b"\x00"}

    assert kept_attributes(received) == {
        "data_type": {"DataType": "String", "StringValue": "email"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00"},
    }


def test_every_queue_is_listed_but_the_catch_all_is_not_redriven() -> None:
    settings = Settings(resource_prefix="unit")

    assert dlq_kinds(settings, None) == [
        "call_transcript",
        "email",
        "salesforce",
        "unrouted",
    ]
    assert dlq_kinds(settings, None, redrive=True) == [
        "call_transcript",
        "email",
        "salesforce",
    ]
    assert dlq_kinds(settings, "unrouted") == ["unrouted"]
    with pytest.raises(ValueError, match="republish"):
        dlq_kinds(settings, "unrouted", redrive=True)
    with pytest.raises(ValueError, match="unknown queue kind 'fax'"):
        dlq_kinds(settings, "fax")


class PointerQueue:
    """One message whose body is an S3 pointer; records what the poller does."""

    def __init__(self, body: str) -> None:
        self.body: str | None = body
        self.calls: list[str] = []
        self.visibility: list[int] = []
        self._lock = threading.Lock()

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        return {"QueueUrl": f"https://sqs.local/{QueueName}"}

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            body, self.body = self.body, None
        if body is None:
            time.sleep(0.01)
            return {"Messages": []}
        message = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": body}
        return {"Messages": [{**message, "Attributes": {}}]}

    def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("change_message_visibility_batch")
        self.visibility += [e["VisibilityTimeout"] for e in kwargs["Entries"]]
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]]}

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("send_message")
        return {"MessageId": "dlq-1"}

    def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("delete_message_batch")
        return {"Successful": [{"Id": e["Id"]} for e in kwargs["Entries"]]}


class UnreachableS3:
    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        raise EndpointConnectionError(endpoint_url="http://s3.local")


def test_s3_being_unreachable_makes_a_pointer_message_retry_not_dead_letter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        shared.aws.payloads, "client", lambda _settings, _service: UnreachableS3()
    )
    pointer = {"bucket": "unit-payloads", "key": "payloads/call-1.json"}
    sqs = PointerQueue(json.dumps({"s3_pointer": pointer}))

    async def never(_: Communication) -> None:
        raise AssertionError("an unresolved pointer must not be routed")

    poller = Poller(SETTINGS, "call_transcript", never, sqs=sqs)

    async def scenario() -> None:
        poller.start()
        deadline = time.monotonic() + 5
        while poller.stats()["retried"] == 0:
            assert time.monotonic() < deadline, poller.stats()
            await asyncio.sleep(0.01)
        await poller.stop(drain_seconds=1.0)

    asyncio.run(scenario())

    assert "send_message" not in sqs.calls
    assert "delete_message_batch" not in sqs.calls
    assert sqs.visibility == [2]  # visible again after the first backoff
