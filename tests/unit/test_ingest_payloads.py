"""S3 pointers on the way in: resolved before validation, refused with a reason."""

from __future__ import annotations

import io
import json
import pickle
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

import shared.aws.payloads
from ingest.decode import decode_message, peek_ids
from shared.aws.payloads import (
    MAX_POINTER_BYTES,
    PayloadUnavailable,
    fetch,
    payload_key,
    pointer_in,
)
from shared.errors import InvalidMessage
from shared.settings import Settings

SETTINGS = Settings(resource_prefix="unit")
BUCKET = "unit-payloads"
EMAIL = {
    "id": "email-1",
    "tenant": "tenant-acme",
    "data_type": "email",
    "occurred_at": "2025-02-01T12:00:00+00:00",
    "payload": {"from": "Sales", "body": "Hello"},
}


def pointer(key: str = "payloads/email-1-abc.json", bucket: str = BUCKET) -> str:
    return json.dumps({"s3_pointer": {"bucket": bucket, "key": key}})


def envelope(message: str, data_type: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "Message": message,
            "MessageAttributes": {"data_type": {"Type": "String", "Value": data_type}},
        }
    )


class FakeS3:
    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects = objects or {}
        self.unreachable = False

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if self.unreachable:
            raise EndpointConnectionError(endpoint_url="http://s3.local")
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject")
        body = self.objects[Key]
        return {"Body": io.BytesIO(body), "ContentLength": len(body)}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> FakeS3:
    fake = FakeS3({"payloads/email-1-abc.json": json.dumps(EMAIL).encode()})
    monkeypatch.setattr(shared.aws.payloads, "client", lambda _s, _service: fake)
    return fake


def reader(pointer: dict[str, str]) -> bytes:
    return fetch(SETTINGS, pointer)


def test_a_pointer_in_an_sns_envelope_is_resolved_before_validation(
    s3: FakeS3,
) -> None:
    communication = decode_message(envelope(pointer(), "email"), {}, reader)
    assert communication.id == "email-1"


def test_a_raw_pointer_is_resolved_and_checked_against_its_attribute(
    s3: FakeS3,
) -> None:
    attributes = {"data_type": {"DataType": "String", "StringValue": "salesforce"}}
    with pytest.raises(InvalidMessage, match="disagrees with the body's 'email'"):
        decode_message(pointer(), attributes, reader)


def test_a_pointer_to_a_missing_object_is_invalid_with_its_key(s3: FakeS3) -> None:
    with pytest.raises(InvalidMessage) as caught:
        decode_message(pointer("payloads/gone-1.json"), {}, reader)
    assert caught.value.reason == "S3 payload payloads/gone-1.json does not exist"


def test_a_pointer_to_another_bucket_is_refused_without_reading_it(
    s3: FakeS3,
) -> None:
    s3.unreachable = True  # proves no S3 call is made
    with pytest.raises(InvalidMessage, match="bucket other than the payload's"):
        decode_message(pointer(bucket="someone-elses-secrets"), {}, reader)


def test_an_object_over_the_size_limit_is_refused(s3: FakeS3) -> None:
    s3.objects["payloads/huge.json"] = b" " * (MAX_POINTER_BYTES + 1)
    with pytest.raises(InvalidMessage, match="is over"):
        decode_message(pointer("payloads/huge.json"), {}, reader)


def test_s3_being_unreachable_is_not_a_dead_letter(s3: FakeS3) -> None:
    s3.unreachable = True
    with pytest.raises(EndpointConnectionError):
        decode_message(pointer(), {}, reader)


def test_a_pointer_without_a_reader_is_invalid() -> None:
    with pytest.raises(InvalidMessage, match="no S3 reader"):
        decode_message(pointer(), {})


def test_a_stored_payload_is_validated_like_any_body(s3: FakeS3) -> None:
    s3.objects["payloads/bad.json"] = b"\xff\xfe"
    with pytest.raises(InvalidMessage, match="S3 payload is not valid UTF-8"):
        decode_message(pointer("payloads/bad.json"), {}, reader)
    s3.objects["payloads/bad.json"] = json.dumps({**EMAIL, "tenant": None}).encode()
    with pytest.raises(InvalidMessage, match=r"email\.tenant"):
        decode_message(pointer("payloads/bad.json"), {}, reader)


def test_only_a_document_that_is_exactly_a_pointer_counts_as_one() -> None:
    assert pointer_in(json.loads(pointer())) == {
        "bucket": BUCKET,
        "key": "payloads/email-1-abc.json",
    }
    assert pointer_in({**json.loads(pointer()), "id": "x"}) is None
    assert pointer_in({"s3_pointer": {"bucket": 1, "key": "k"}}) is None


def test_a_payload_key_depends_on_the_record_and_its_content() -> None:
    key = payload_key("call-1", "body")
    assert key.startswith("payloads/call-1-") and key.endswith(".json")
    assert payload_key("call-1", "body") == key
    assert payload_key("call-1", "other body") != key
    assert payload_key("../../etc/passwd", "body").startswith("payloads/record-")


def test_peeking_shows_ids_of_raw_and_enveloped_bodies_only() -> None:
    assert peek_ids(json.dumps(EMAIL)) == ("tenant-acme", "email-1")
    assert peek_ids(envelope(json.dumps(EMAIL), "email")) == ("tenant-acme", "email-1")
    assert peek_ids('{"id": "broken"') == (None, None)
    assert peek_ids(json.dumps({**EMAIL, "tenant": "not an id!"})) == (
        None,
        "email-1",
    )
    assert peek_ids(pointer()) == (None, None)


def test_a_payload_unavailable_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(PayloadUnavailable("gone")))
    assert error.reason == "gone"
