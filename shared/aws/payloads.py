"""Bodies over the SQS/SNS size limit travel as a pointer to S3.

The usual extended-client pattern: the body is stored under a key in the
payload bucket and the message carries ``{"s3_pointer": {"bucket", "key"}}``
instead. ``unwrap`` turns either form back into the body.
"""

from __future__ import annotations

import json
from typing import Any

from shared.aws.clients import client
from shared.aws.names import ResourceNames
from shared.settings import Settings

# SNS and SQS take 256 KiB per message, attributes included: leave headroom.
MAX_INLINE_BYTES = 240 * 1024
POINTER_KEY = "s3_pointer"


def wrap_if_large(settings: Settings, body: str, key: str) -> str:
    if len(body.encode()) <= MAX_INLINE_BYTES:
        return body
    bucket = ResourceNames.of(settings).bucket
    client(settings, "s3").put_object(Bucket=bucket, Key=key, Body=body.encode())
    return json.dumps({POINTER_KEY: {"bucket": bucket, "key": key}})


def pointer_of(body: str) -> dict[str, str] | None:
    if POINTER_KEY not in body[:64]:
        return None
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    pointer = data.get(POINTER_KEY) if isinstance(data, dict) else None
    if isinstance(pointer, dict) and {"bucket", "key"} <= pointer.keys():
        return {"bucket": str(pointer["bucket"]), "key": str(pointer["key"])}
    return None


def unwrap(settings: Settings, body: str) -> str:
    pointer = pointer_of(body)
    if pointer is None:
        return body
    obj = client(settings, "s3").get_object(
        Bucket=pointer["bucket"], Key=pointer["key"]
    )
    return obj["Body"].read().decode("utf-8")
