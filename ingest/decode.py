"""Turn an SQS message body into a ``Communication``, or say briefly why not.

A body arrives in one of two shapes: the SNS envelope (the topic's default
delivery: a JSON object with ``"Type": "Notification"`` whose ``Message`` is the
communication as a JSON *string*) or raw delivery (the communication JSON
itself, its attributes as SQS message attributes). Either way the communication
may have been too large for SNS and SQS: then its place holds an S3 pointer
(``{"s3_pointer": {"bucket", "key"}}``, see ``shared.aws.payloads``), which is
resolved before the communication is validated.

Every failure is an ``InvalidMessage`` whose reason goes into logs and into the
dead-letter queue's ``reason`` attribute. A reason therefore names where and
what kind of problem it is, and never quotes the communication: pydantic errors
are reduced to their location, type and message, without the input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from shared.aws.payloads import PayloadUnavailable, pointer_in
from shared.errors import InvalidMessage
from shared.models.communications import COMMUNICATION, Communication
from shared.settings import DATA_TYPES

# fetch(pointer) -> the bytes it leads to; raises PayloadUnavailable when it
# never will, anything else when S3 may answer later.
Fetch = Callable[[dict[str, str]], bytes]

DATA_TYPE_ATTRIBUTE = "data_type"

# A reason is an SQS message attribute and a log field: short, one line.
MAX_REASON = 480
# Several validation errors usually share one cause; the first few say enough.
MAX_ERRORS_IN_REASON = 3
# Attribute values are chosen by publishers, not by us: only a short, plain
# value is echoed back into a reason.
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_.:-]{1,40}$")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def decode_message(
    body: str | bytes,
    attributes: Mapping[str, Any] | None = None,
    fetch: Fetch | None = None,
) -> Communication:
    """Decode an SQS body (SNS envelope or raw delivery) into a communication.

    ``attributes`` are the SQS message attributes as boto3 returns them. When
    a ``data_type`` attribute is present (on the envelope or on the SQS
    message) it must agree with the body's: it is what routed the message to
    this queue. ``fetch`` resolves an S3 pointer; without it a pointer is
    invalid. It blocks, so call this off the event loop when it is given.
    """
    document, routed_as = _open(body, attributes)

    pointer = pointer_in(document)
    if pointer is not None:
        if fetch is None:
            raise InvalidMessage("body is an S3 pointer and no S3 reader was given")
        try:
            fetched = fetch(pointer)
        except PayloadUnavailable as err:
            raise InvalidMessage(err.reason) from None
        document = _load_json(_text(fetched, "S3 payload"), "S3 payload")

    _check_unicode(document)
    communication = _validate(document)

    if routed_as is not None and routed_as != communication.data_type:
        raise InvalidMessage(
            f"data_type attribute {_shown(routed_as)} disagrees with the "
            f"body's {communication.data_type!r}"
        )
    return communication


def peek_ids(body: str | bytes) -> tuple[str | None, str | None]:
    """The (tenant, communication id) of a body if it shows them, else Nones.

    For listings of dead letters: never raises, never fetches, and returns
    only values shaped like identifiers, never other text of the body.
    """
    try:
        document, _ = _open(body, None)
    except (InvalidMessage, RecursionError):
        return None, None
    if not isinstance(document, dict):
        return None, None
    tenant, communication = document.get("tenant"), document.get("id")
    return (
        tenant if isinstance(tenant, str) and _IDENTIFIER.match(tenant) else None,
        communication
        if isinstance(communication, str) and _IDENTIFIER.match(communication)
        else None,
    )


def unrouted_reason(body: str | bytes, attributes: Mapping[str, Any] | None) -> str:
    """The dead-letter reason of a message that reached the catch-all queue.

    The topic sends a message there when its ``data_type`` attribute is
    missing or not a known type, so nothing downstream would know what it is,
    whatever its body says.
    """
    value = sqs_data_type(attributes or {})
    if value is None:
        try:
            envelope = json.loads(_text(body))
        except (InvalidMessage, ValueError, RecursionError):
            envelope = None
        if isinstance(envelope, dict) and envelope.get("Type") == "Notification":
            value = _envelope_data_type(envelope)
    shown = "missing" if value is None else _shown(value)
    return f"missing or unknown data_type attribute ({shown})"


def sqs_data_type(attributes: Mapping[str, Any]) -> str | None:
    """The ``data_type`` SQS message attribute, if any (raw delivery)."""
    attribute = attributes.get(DATA_TYPE_ATTRIBUTE)
    if isinstance(attribute, Mapping):
        value = attribute.get("StringValue")
        return value if isinstance(value, str) else None
    return None


def _open(
    body: str | bytes, attributes: Mapping[str, Any] | None
) -> tuple[Any, str | None]:
    """The parsed document a body carries, and the data type it was routed as."""
    document = _load_json(_text(body), "body")
    if isinstance(document, dict) and document.get("Type") == "Notification":
        # The envelope's own attributes routed it; SQS carries none of its own.
        routed_as = _envelope_data_type(document)
        message = document.get("Message")
        if not isinstance(message, str):
            raise InvalidMessage("SNS envelope has no Message string")
        return _load_json(message, "SNS envelope Message"), routed_as
    return document, sqs_data_type(attributes or {})


def _text(body: str | bytes, what: str = "body") -> str:
    if isinstance(body, bytes):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidMessage(
                f"{what} is not valid UTF-8 (byte offset {err.start})"
            ) from None
    try:
        body.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidMessage(
            f"{what} has broken Unicode (lone surrogate at offset {err.start})"
        ) from None
    return body


def _load_json(text: str, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        # ``err.msg`` is the parser's description alone, without the document.
        raise InvalidMessage(
            f"{what} is not valid JSON ({err.msg} at line {err.lineno} "
            f"column {err.colno})"
        ) from None
    except _NonStandardConstant as err:
        raise InvalidMessage(f"{what} is not valid JSON ({err})") from None
    except RecursionError:
        raise InvalidMessage(f"{what} is nested too deeply") from None


class _NonStandardConstant(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON and the model do not.
    raise _NonStandardConstant(f"non-standard constant {name}")


def _envelope_data_type(envelope: Mapping[str, Any]) -> str | None:
    """The SNS message attribute ``data_type`` (``{"Type", "Value"}`` form)."""
    attributes = envelope.get("MessageAttributes")
    attribute = (
        attributes.get(DATA_TYPE_ATTRIBUTE) if isinstance(attributes, Mapping) else None
    )
    if isinstance(attribute, Mapping):
        value = attribute.get("Value")
        return value if isinstance(value, str) else None
    return None


def _check_unicode(document: Any) -> None:
    """Reject lone surrogates that JSON escapes (``"\\ud800"``) smuggle in.

    ``json.loads`` joins valid surrogate pairs into one character, so any
    surrogate left is broken text that would fail later, deep in an LLM call.
    """
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            _encodable(value, where)
        elif isinstance(value, dict):
            for key, item in value.items():
                _encodable(key, f"{where}.<key>".lstrip("."))
                stack.append((item, f"{where}.{key}".lstrip(".")))
        elif isinstance(value, list):
            stack.extend(
                (item, f"{where}.{i}".lstrip(".")) for i, item in enumerate(value)
            )


def _encodable(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        place = _location(where.split(".")) if where else "the document"
        raise InvalidMessage(f"broken Unicode (lone surrogate) in {place}") from None


def _validate(document: Any) -> Communication:
    if not isinstance(document, dict):
        raise InvalidMessage(
            f"communication must be a JSON object, not {_json_kind(document)}"
        )
    # Checked before pydantic, whose union errors would echo the tag value.
    data_type = document.get("data_type")
    if data_type is None:
        raise InvalidMessage("missing data_type in the communication")
    if data_type not in DATA_TYPES:
        raise InvalidMessage(f"unknown data_type {_shown(data_type)}")
    try:
        return COMMUNICATION.validate_python(document)
    except ValidationError as err:
        raise InvalidMessage(_describe(err)) from None


def _describe(err: ValidationError) -> str:
    errors = err.errors(include_input=False, include_url=False, include_context=False)
    parts = []
    for error in errors[:MAX_ERRORS_IN_REASON]:
        loc = _location([str(part) for part in error["loc"]])
        parts.append(f"{loc}: {error['msg']} ({error['type']})")
    more = len(errors) - MAX_ERRORS_IN_REASON
    if more > 0:
        parts.append(f"and {more} more")
    reason = "invalid communication: " + "; ".join(parts)
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def _location(parts: list[str]) -> str:
    # The first part of a union error's location is the tag (``email``); it is
    # kept, since it tells which schema the message was checked against.
    return ".".join(part if _PLAIN_VALUE.match(part) else "<key>" for part in parts)


def _shown(value: object) -> str:
    if isinstance(value, str) and _PLAIN_VALUE.match(value):
        return repr(value)
    return f"<{type(value).__name__}>"


def _json_kind(value: object) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")
