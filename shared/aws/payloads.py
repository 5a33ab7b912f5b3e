"""Bodies over the SQS/SNS size limit travel as a pointer to S3.

The usual extended-client pattern: the body is stored under a key in the
payload bucket and the message carries ``{"s3_pointer": {"bucket", "key"}}``
instead. ``unwrap`` turns either form back into the body; ``fetch`` is the
stricter reader the ingest uses on what upstream systems sent: only this
deployment's bucket, only objects of a bounded size, and a missing object told
apart from S3 being unreachable (the first is a dead letter, the second a retry).

Objects are written once under a key derived from their content and never
changed, so a redelivered or redriven message always finds the body it was
sent with. Nothing deletes them when a message is processed: a duplicate or a
dead letter may still point at one. TODO(payload-expiry): a lifecycle rule on
the bucket (longer than the DLQ's 14-day retention) should expire them; add it
to provisioning.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from botocore.exceptions import ClientError

from shared.aws.clients import client
from shared.aws.names import ResourceNames
from shared.settings import Settings

# SNS and SQS take 256 KiB per message, attributes included: leave headroom.
MAX_INLINE_BYTES = 240 * 1024
# The largest body a pointer may lead to: well above the longest transcript a
# communication's limits allow, well below what would strain a poller's memory.
MAX_POINTER_BYTES = 8 * 1024 * 1024
POINTER_KEY = "s3_pointer"
KEY_PREFIX = "payloads/"

_PLAIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404"})


class PayloadUnavailable(Exception):
    """A pointer that cannot lead to a body, now or later (a dead letter)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def payload_key(record_id: str, body: str) -> str:
    """``payloads/<id>-<digest>.json``: the same body always gets the same key."""
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    name = record_id if _PLAIN_ID.match(record_id) else "record"
    return f"{KEY_PREFIX}{name}-{digest}.json"


def wrap_if_large(settings: Settings, body: str, key: str) -> str:
    if len(body.encode()) <= MAX_INLINE_BYTES:
        return body
    bucket = ResourceNames.of(settings).bucket
    client(settings, "s3").put_object(Bucket=bucket, Key=key, Body=body.encode())
    return json.dumps({POINTER_KEY: {"bucket": bucket, "key": key}})


def pointer_in(document: Any) -> dict[str, str] | None:
    """The pointer of a parsed message body, or None when it is not one."""
    if not isinstance(document, dict) or set(document) != {POINTER_KEY}:
        return None
    pointer = document[POINTER_KEY]
    if (
        isinstance(pointer, dict)
        and {"bucket", "key"} <= pointer.keys()
        and isinstance(pointer["bucket"], str)
        and isinstance(pointer["key"], str)
    ):
        return {"bucket": pointer["bucket"], "key": pointer["key"]}
    return None


def pointer_of(body: str) -> dict[str, str] | None:
    if POINTER_KEY not in body[:64]:
        return None
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    return pointer_in(data)


def unwrap(settings: Settings, body: str) -> str:
    pointer = pointer_of(body)
    if pointer is None:
        return body
    obj = client(settings, "s3").get_object(
        Bucket=pointer["bucket"], Key=pointer["key"]
    )
    return obj["Body"].read().decode("utf-8")


def fetch(settings: Settings, pointer: dict[str, str]) -> bytes:
    """The body a pointer leads to.

    Raises ``PayloadUnavailable`` for a pointer outside this deployment's bucket
    (a message must not make the ingest read whatever its role can read), an
    object that does not exist, or one over ``MAX_POINTER_BYTES``. Any other
    failure (S3 unreachable, throttled) propagates: a later try may succeed.
    """
    bucket = ResourceNames.of(settings).bucket
    key = pointer["key"]
    shown = key if _PLAIN_ID.match(key.removeprefix(KEY_PREFIX)) else "<key>"
    if pointer["bucket"] != bucket:
        raise PayloadUnavailable("S3 pointer names a bucket other than the payload's")
    try:
        obj = client(settings, "s3").get_object(Bucket=bucket, Key=key)
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") in _MISSING_CODES:
            raise PayloadUnavailable(f"S3 payload {shown} does not exist") from None
        raise
    if int(obj.get("ContentLength", 0)) > MAX_POINTER_BYTES:
        obj["Body"].close()
        raise PayloadUnavailable(
            f"S3 payload {shown} is over {MAX_POINTER_BYTES} bytes"
        )
    data: bytes = obj["Body"].read()
    return data
