"""Dead letters: how they are marked, how they are read, how they go back.

A message reaches its queue's dead-letter queue in one of two ways:

- the poller sends it there at once when it cannot be decoded or validated, or
  when the route refuses it as permanently invalid. It keeps the body and the
  message's own attributes and adds its bookkeeping ones: ``reason``,
  ``source_queue``, ``source_message_id`` and ``receive_count``;
- the source queue's redrive policy moves it after ``maxReceiveCount`` receives
  without a delete: a message whose processing kept failing. SQS adds nothing,
  so its reason is the policy's count.

``list_dead_letters`` reads them without consuming them: it receives with a
short visibility timeout, then makes every message visible again at once.
``redrive_dead_letters`` sends them back to their source queue once the cause is
fixed. SQS's own StartMessageMoveTask would do that on AWS, but the emulator
lacks it, so it receives, re-sends (the body unchanged, the attributes without
the bookkeeping ones, so the message starts afresh) and deletes from the
dead-letter queue only after the send succeeded: a failure in between leaves a
duplicate, which the tenants apply once, never a loss.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingest.decode import peek_ids
from shared.aws.clients import client
from shared.aws.names import UNROUTED, ResourceNames
from shared.settings import Settings

logger = logging.getLogger(__name__)

REASON = "reason"
SOURCE_QUEUE = "source_queue"
SOURCE_MESSAGE_ID = "source_message_id"
RECEIVE_COUNT = "receive_count"
BOOKKEEPING = frozenset({REASON, SOURCE_QUEUE, SOURCE_MESSAGE_ID, RECEIVE_COUNT})

SQS_BATCH = 10  # the most messages one SQS call receives or changes
MAX_ATTRIBUTES = 10  # SQS's limit of message attributes per message
# How long a listed or redriven message stays hidden while this module holds it.
HOLD_SECONDS = 20


def dead_letter_attributes(
    reason: str,
    source_queue: str,
    message_id: str,
    receive_count: int,
    original: Mapping[str, Any],
) -> dict[str, Any]:
    """The attributes the poller gives a message it dead-letters."""
    attributes = kept_attributes(original, room=MAX_ATTRIBUTES - len(BOOKKEEPING))
    attributes[REASON] = _string(reason)
    attributes[SOURCE_QUEUE] = _string(source_queue)
    attributes[SOURCE_MESSAGE_ID] = _string(message_id)
    attributes[RECEIVE_COUNT] = {
        "DataType": "Number",
        "StringValue": str(receive_count),
    }
    return attributes


def kept_attributes(
    received: Mapping[str, Any], room: int = MAX_ATTRIBUTES
) -> dict[str, Any]:
    """A message's own attributes, as SendMessage takes them, without ours."""
    kept: dict[str, Any] = {}
    for name, value in received.items():
        if name in BOOKKEEPING or len(kept) == room or not isinstance(value, Mapping):
            continue
        # boto3 answers with empty list fields that SendMessage refuses.
        sendable = {
            key: value[key]
            for key in ("DataType", "StringValue", "BinaryValue")
            if key in value
        }
        if "DataType" in sendable and len(sendable) == 2:
            kept[name] = sendable
    return kept


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter, described without its body's text."""

    kind: str
    message_id: str
    reason: str
    source_queue: str
    receive_count: int | None
    tenant: str | None
    communication_id: str | None
    sent_at: datetime | None


def dlq_kinds(
    settings: Settings, kind: str | None, *, redrive: bool = False
) -> list[str]:
    """The queue kinds a command covers: one, or all (all it makes sense for).

    The catch-all queue's messages carry no usable data type, so sending them
    back to it would only dead-letter them again: they are republished, with
    the attribute fixed, rather than redriven.
    """
    kinds = list(ResourceNames.of(settings).input_kinds)
    if kind is None:
        return [k for k in kinds if k != UNROUTED] if redrive else kinds
    if kind not in kinds:
        raise ValueError(f"unknown queue kind {kind!r}; one of {', '.join(kinds)}")
    if redrive and kind == UNROUTED:
        raise ValueError(
            "messages of the catch-all queue have no usable data_type: "
            "republish them with the attribute fixed instead"
        )
    return [kind]


def list_dead_letters(
    settings: Settings, kinds: Iterable[str], max_per_queue: int = 100
) -> list[DeadLetter]:
    """The dead letters of each kind's DLQ, at most ``max_per_queue`` each."""
    sqs = client(settings, "sqs")
    names = ResourceNames.of(settings)
    found: list[DeadLetter] = []
    for kind in kinds:
        url = _url(sqs, names.dlq(kind))
        policy_count = _max_receive_count(sqs, names.queue(kind))
        held: list[str] = []
        try:
            for message in _receive_all(sqs, url, max_per_queue, held):
                found.append(_describe(kind, message, names.queue(kind), policy_count))
        finally:
            # Visible again at once: a listing consumes nothing.
            _change_visibility(sqs, url, held, 0)
    return found


def redrive_dead_letters(
    settings: Settings, kinds: Iterable[str], max_per_queue: int | None = None
) -> dict[str, int]:
    """Send dead letters back to their source queue; how many moved, per kind.

    Without ``max_per_queue`` it moves as many as the DLQ held when it began,
    so a message that fails again at once is not sent round a second time.
    """
    sqs = client(settings, "sqs")
    names = ResourceNames.of(settings)
    moved: dict[str, int] = {}
    for kind in kinds:
        dlq_url = _url(sqs, names.dlq(kind))
        source_url = _url(sqs, names.queue(kind))
        limit = max_per_queue if max_per_queue is not None else _visible(sqs, dlq_url)
        moved[kind] = 0
        held: list[str] = []
        try:
            for message in _receive_all(sqs, dlq_url, limit, held):
                sqs.send_message(
                    QueueUrl=source_url,
                    MessageBody=message["Body"],
                    MessageAttributes=kept_attributes(
                        message.get("MessageAttributes", {})
                    ),
                )
                # Deleted only once sent: a failure between leaves a duplicate.
                sqs.delete_message(
                    QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"]
                )
                held.remove(message["ReceiptHandle"])
                moved[kind] += 1
        finally:
            # Whatever was received but not sent goes back on view at once.
            _change_visibility(sqs, dlq_url, held, 0)
        logger.info("redrove queue=%s messages=%d", names.dlq(kind), moved[kind])
    return moved


def _receive_all(
    sqs: Any, url: str, limit: int, held: list[str]
) -> Iterator[dict[str, Any]]:
    """Up to ``limit`` distinct messages, each hidden for ``HOLD_SECONDS``.

    Each receipt handle is appended to ``held`` as it arrives, so the caller
    can release whatever it still holds. A short poll can miss messages on
    SQS (it asks a sample of servers): an empty answer is only believed after
    one long poll has confirmed it.
    """
    seen: set[str] = set()
    confirming = False
    while len(seen) < limit:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(SQS_BATCH, limit - len(seen)),
            VisibilityTimeout=HOLD_SECONDS,
            WaitTimeSeconds=1 if confirming else 0,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        ).get("Messages", [])
        if not batch:
            if confirming or not _visible(sqs, url):
                return
            confirming = True
            continue
        confirming = False
        for message in batch:
            held.append(message["ReceiptHandle"])
            if message["MessageId"] not in seen:
                seen.add(message["MessageId"])
                yield message


def _describe(
    kind: str, message: dict[str, Any], source_queue: str, policy_count: int | None
) -> DeadLetter:
    attributes = message.get("MessageAttributes", {})
    system = message.get("Attributes", {})
    tenant, communication = peek_ids(message.get("Body", ""))
    reason = _value(attributes, REASON)
    if reason is None:
        # Moved by the redrive policy: SQS says only how often it failed.
        reason = (
            f"redrive policy: not processed in {policy_count} receives"
            if policy_count is not None
            else "redrive policy: not processed in repeated receives"
        )
        receive_count = policy_count
    else:
        count = _value(attributes, RECEIVE_COUNT)
        receive_count = int(count) if count and count.isdigit() else None
    sent = system.get("SentTimestamp")
    return DeadLetter(
        kind=kind,
        message_id=message["MessageId"],
        reason=reason,
        source_queue=_value(attributes, SOURCE_QUEUE) or source_queue,
        receive_count=receive_count,
        tenant=tenant,
        communication_id=communication,
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
    )


def _max_receive_count(sqs: Any, queue_name: str) -> int | None:
    attributes = sqs.get_queue_attributes(
        QueueUrl=_url(sqs, queue_name), AttributeNames=["RedrivePolicy"]
    ).get("Attributes", {})
    try:
        return int(json.loads(attributes["RedrivePolicy"])["maxReceiveCount"])
    except (KeyError, ValueError, TypeError):
        return None


def _visible(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _change_visibility(sqs: Any, url: str, handles: list[str], seconds: int) -> None:
    for start in range(0, len(handles), SQS_BATCH):
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for i, handle in enumerate(handles[start : start + SQS_BATCH])
            ],
        )


def _url(sqs: Any, name: str) -> str:
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])


def _value(attributes: Mapping[str, Any], name: str) -> str | None:
    attribute = attributes.get(name)
    value = attribute.get("StringValue") if isinstance(attribute, Mapping) else None
    return value if isinstance(value, str) else None


def _string(value: str) -> dict[str, str]:
    # SQS refuses an empty attribute value.
    return {"DataType": "String", "StringValue": value or "-"}
