"""Publish communications to the SNS topic, as an upstream system would.

The demo and the command line use this to feed the pipeline; the product never
calls it. Each record goes out as its JSON with the message attribute
``data_type`` that the topic's subscriptions filter on. A record whose JSON is
over SNS's size limit (a long transcript) is stored in the payload bucket and
goes out as an S3 pointer, which the ingest resolves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from shared.aws.clients import client
from shared.aws.names import ResourceNames
from shared.aws.payloads import payload_key, wrap_if_large
from shared.settings import Settings

logger = logging.getLogger(__name__)

Record = dict[str, Any]

BATCH_ENTRIES = 10
# SNS caps one message, and one whole PublishBatch, at 256 KiB.
MAX_BATCH_BYTES = 262_144


class _Unpublished(RuntimeError):
    """Entries SNS refused for reasons of its own (throttling, internal)."""

    def __init__(self, failed: list[dict[str, Any]]) -> None:
        super().__init__(failed)
        self.failed = failed


def publish_communications(
    settings: Settings,
    records: Iterable[Record],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Publish each record to the topic; returns how many were published.

    ``progress`` is called after each batch with the number it published.
    Raises ``ValueError`` for a record whose attributes alone pass SNS's size
    limit and ``RuntimeError`` when SNS keeps refusing entries.
    """
    sns = client(settings, "sns")
    # CreateTopic is idempotent and answers the ARN: no ListTopics paging.
    topic_arn = sns.create_topic(Name=ResourceNames.of(settings).topic)["TopicArn"]

    published = 0
    for batch in _batches(_entries(settings, records)):
        _publish_batch(sns, topic_arn, batch)
        published += len(batch)
        if progress is not None:
            progress(len(batch))
    logger.info("published topic=%s messages=%d", topic_arn, published)
    return published


def load_records(data_dir: Path) -> list[Record]:
    """Every record of the ``*.jsonl`` files in ``data_dir``, file by file."""
    records: list[Record] = []
    for path in sorted(data_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            records.extend(json.loads(line) for line in lines if line.strip())
    return records


def _entries(settings: Settings, records: Iterable[Record]) -> Iterator[dict[str, Any]]:
    for record in records:
        # ASCII escapes keep every character SQS might refuse (and any lone
        # surrogate) inside the JSON text, where the decoder judges it.
        message = json.dumps(record, ensure_ascii=True)
        key = payload_key(str(record.get("id")), message)
        entry: dict[str, Any] = {"Message": wrap_if_large(settings, message, key)}
        data_type = record.get("data_type")
        if isinstance(data_type, str) and data_type:
            entry["MessageAttributes"] = {
                "data_type": {"DataType": "String", "StringValue": data_type}
            }
        if _size(entry) > MAX_BATCH_BYTES:
            raise ValueError(
                f"record {record.get('id')!r} is {_size(entry)} bytes as a message, "
                f"over SNS's {MAX_BATCH_BYTES}"
            )
        yield entry


def _batches(entries: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = _size(entry)
        if batch and (
            len(batch) == BATCH_ENTRIES or size + entry_size > MAX_BATCH_BYTES
        ):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry_size
    if batch:
        yield batch


def _size(entry: dict[str, Any]) -> int:
    # SNS counts the body and each attribute's name, type and value.
    size = len(entry["Message"].encode("utf-8"))
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name) + len(value["DataType"]) + len(value["StringValue"])
    return size


def _publish_batch(sns: Any, topic_arn: str, batch: list[dict[str, Any]]) -> None:
    pending = {str(i): entry for i, entry in enumerate(batch)}
    for attempt in Retrying(
        retry=retry_if_exception_type(_Unpublished),
        wait=wait_exponential_jitter(multiplier=0.2, max=5, jitter=0.2),
        stop=stop_after_attempt(5),
        reraise=True,
    ):
        with attempt:
            response = sns.publish_batch(
                TopicArn=topic_arn,
                PublishBatchRequestEntries=[
                    {"Id": key, **entry} for key, entry in pending.items()
                ],
            )
            failed = response.get("Failed", [])
            for result in response.get("Successful", []):
                pending.pop(result["Id"], None)
            senders = [f for f in failed if f.get("SenderFault")]
            if senders:
                # Our request was wrong: the same retry would fail the same way.
                raise RuntimeError(f"SNS refused entries: {_codes(senders)}")
            if pending:
                raise _Unpublished(failed)


def _codes(failed: list[dict[str, Any]]) -> str:
    return ", ".join(f"{f.get('Id')}={f.get('Code')}" for f in failed)
