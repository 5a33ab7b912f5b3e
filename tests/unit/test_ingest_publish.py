"""Batching of published communications, against a stand-in SNS client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import ingest.publish
import shared.aws.payloads
from ingest.publish import MAX_BATCH_BYTES, load_records, publish_communications
from shared.aws.payloads import MAX_INLINE_BYTES, pointer_of
from shared.settings import Settings


class FakeSns:
    """Records PublishBatch calls; fails chosen entries a given number of times."""

    def __init__(self, throttle_first: int = 0) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.throttle_first = throttle_first

    def create_topic(self, Name: str) -> dict[str, str]:
        return {"TopicArn": f"arn:aws:sns:us-east-1:000000000000:{Name}"}

    def publish_batch(
        self, TopicArn: str, PublishBatchRequestEntries: list[dict[str, Any]]
    ) -> dict[str, Any]:
        self.batches.append(PublishBatchRequestEntries)
        entries = PublishBatchRequestEntries
        if self.throttle_first:
            self.throttle_first -= 1
            failed = [
                {"Id": e["Id"], "Code": "Throttled", "SenderFault": False}
                for e in entries[:1]
            ]
            return {
                "Successful": [{"Id": e["Id"]} for e in entries[1:]],
                "Failed": failed,
            }
        return {"Successful": [{"Id": e["Id"]} for e in entries], "Failed": []}


@pytest.fixture
def sns(monkeypatch: pytest.MonkeyPatch) -> FakeSns:
    fake = FakeSns()
    monkeypatch.setattr(ingest.publish, "client", lambda _settings, _service: fake)
    return fake


def record(
    n: int, body_size: int = 10, data_type: str | None = "email"
) -> dict[str, Any]:
    value: dict[str, Any] = {"id": f"email-{n}", "payload": {"body": "x" * body_size}}
    if data_type is not None:
        value["data_type"] = data_type
    return value


def test_records_go_out_ten_to_a_batch_with_their_data_type(sns: FakeSns) -> None:
    progress: list[int] = []

    count = publish_communications(
        Settings(), (record(n) for n in range(23)), progress.append
    )

    assert count == 23
    assert [len(batch) for batch in sns.batches] == [10, 10, 3]
    assert progress == [10, 10, 3]
    entry = sns.batches[0][0]
    assert json.loads(entry["Message"])["id"] == "email-0"
    assert entry["MessageAttributes"]["data_type"]["StringValue"] == "email"


def test_a_batch_never_exceeds_the_sns_size_limit(sns: FakeSns) -> None:
    publish_communications(Settings(), [record(n, 80_000) for n in range(7)])

    assert [len(batch) for batch in sns.batches] == [3, 3, 1]
    for batch in sns.batches:
        assert sum(len(e["Message"]) for e in batch) <= MAX_BATCH_BYTES


def test_a_record_without_data_type_is_published_without_the_attribute(
    sns: FakeSns,
) -> None:
    publish_communications(Settings(), [record(1, data_type=None)])

    assert "MessageAttributes" not in sns.batches[0][0]


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:
        self.objects[Bucket, Key] = Body
        return {}


def test_a_record_over_the_sns_limit_goes_out_as_an_s3_pointer(
    sns: FakeSns, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = FakeS3()
    monkeypatch.setattr(shared.aws.payloads, "client", lambda _settings, _service: s3)
    large, small = record(1, MAX_INLINE_BYTES), record(2)

    publish_communications(Settings(), [large, small])

    [[pointer_entry, inline_entry]] = sns.batches
    pointer = pointer_of(pointer_entry["Message"])
    assert pointer is not None
    assert pointer["key"].startswith("payloads/email-1-")
    assert json.loads(s3.objects[pointer["bucket"], pointer["key"]]) == large
    # Still routed by its data type; the small record stays inline.
    assert pointer_entry["MessageAttributes"]["data_type"]["StringValue"] == "email"
    assert json.loads(inline_entry["Message"]) == small


def test_throttled_entries_are_published_again(sns: FakeSns) -> None:
    sns.throttle_first = 2

    assert publish_communications(Settings(), [record(n) for n in range(3)]) == 3

    assert [len(batch) for batch in sns.batches] == [3, 1, 1]
    assert sns.batches[-1][0]["Id"] == "0"


def test_messages_are_ascii_so_sqs_accepts_every_character(sns: FakeSns) -> None:
    value = record(1)
    value["payload"]["body"] = "caf\u00e9 \U0001f680 \ufffe"
    publish_communications(Settings(), [value])

    message = sns.batches[0][0]["Message"]
    assert message.isascii()
    assert json.loads(message) == value


def test_load_records_reads_every_jsonl_file_of_the_data_folder(
    data_dir: Path,
) -> None:
    records = load_records(data_dir)

    lines = sum(
        1
        for path in data_dir.glob("*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    )
    assert len(records) == lines > 0
    assert {"id", "tenant", "data_type", "occurred_at", "payload"} <= set(records[0])
