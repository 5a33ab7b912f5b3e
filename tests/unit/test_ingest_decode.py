"""Decoding SQS bodies into communications, and the reasons given when it fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest.decode import decode_message, unrouted_reason
from ingest.publish import load_records
from shared.errors import InvalidMessage

SECRET = "the-confidential-phrase-nobody-may-log"


def envelope(message: str, data_type: str | None = None) -> str:
    """An SNS notification as SNS delivers it to an SQS queue."""
    document: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": "5e1b0d3e-0000-4000-8000-000000000000",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:t-communications",
        "Message": message,
        "Timestamp": "2025-02-01T12:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "c2lnbmF0dXJl",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }
    if data_type is not None:
        document["MessageAttributes"] = {
            "data_type": {"Type": "String", "Value": data_type}
        }
    return json.dumps(document)


def sqs_attribute(data_type: str) -> dict[str, Any]:
    return {"data_type": {"DataType": "String", "StringValue": data_type}}


def email(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "email-1",
        "tenant": "tenant-acme",
        "data_type": "email",
        "occurred_at": "2025-02-01T12:00:00+00:00",
        "payload": {"from": "Sales", "to": ["Buyer"], "subject": "Hi", "body": SECRET},
    }
    record.update(changes)
    return record


def reason_of(body: str | bytes, attributes: dict[str, Any] | None = None) -> str:
    with pytest.raises(InvalidMessage) as caught:
        decode_message(body, attributes or {})
    reason = caught.value.reason
    assert SECRET not in reason
    assert reason == str(caught.value)
    return reason


@pytest.fixture(scope="module")
def records(data_dir: Path) -> list[dict[str, Any]]:
    return load_records(data_dir)


def test_every_real_record_decodes_from_raw_delivery(
    records: list[dict[str, Any]],
) -> None:
    for record in records:
        body = json.dumps(record, ensure_ascii=False)
        communication = decode_message(body, sqs_attribute(record["data_type"]))
        assert (communication.id, communication.tenant) == (
            record["id"],
            record["tenant"],
        )


def test_every_real_record_decodes_from_an_sns_envelope(
    records: list[dict[str, Any]],
) -> None:
    for record in records:
        body = envelope(json.dumps(record), record["data_type"])
        communication = decode_message(body, {})
        assert communication.id == record["id"]
        assert communication.data_type == record["data_type"]


def test_the_real_records_cover_every_data_type(records: list[dict[str, Any]]) -> None:
    assert {r["data_type"] for r in records} == {
        "call_transcript",
        "email",
        "salesforce",
    }


def test_a_body_may_come_as_utf8_bytes() -> None:
    body = json.dumps(email(), ensure_ascii=False).encode()
    assert decode_message(body).id == "email-1"


def test_a_raw_message_without_attributes_is_accepted() -> None:
    assert decode_message(json.dumps(email())).data_type == "email"


def test_invalid_json_is_rejected_with_the_parser_position() -> None:
    reason = reason_of('{"id": "email-1", "payload": ' + SECRET)
    assert reason.startswith("body is not valid JSON")
    assert "line 1 column" in reason


def test_an_empty_body_is_invalid_json() -> None:
    assert reason_of("").startswith("body is not valid JSON")


def test_nan_is_not_json() -> None:
    body = json.dumps(email()).replace('"Hi"', "NaN")
    assert "non-standard constant NaN" in reason_of(body)


def test_an_envelope_with_a_mangled_message_is_rejected() -> None:
    reason = reason_of(envelope('{"id": "email-1", "body": "' + SECRET, "email"))
    assert reason.startswith("SNS envelope Message is not valid JSON")


def test_an_envelope_without_a_message_string_is_rejected() -> None:
    body = json.dumps({"Type": "Notification", "Message": {"id": "x"}})
    assert reason_of(body) == "SNS envelope has no Message string"


def test_a_missing_data_type_is_named() -> None:
    record = email()
    del record["data_type"]
    assert reason_of(json.dumps(record)) == "missing data_type in the communication"


def test_an_unknown_data_type_is_named() -> None:
    reason = reason_of(json.dumps(email(data_type="fax")))
    assert reason == "unknown data_type 'fax'"


def test_an_unknown_data_type_that_is_not_a_plain_word_is_not_echoed() -> None:
    reason = reason_of(json.dumps(email(data_type=SECRET + " and more")))
    assert reason == "unknown data_type <str>"


def test_a_missing_tenant_is_named_by_its_location() -> None:
    record = email()
    del record["tenant"]
    reason = reason_of(json.dumps(record))
    assert reason == "invalid communication: email.tenant: Field required (missing)"


def test_an_over_long_field_is_rejected_without_quoting_it() -> None:
    record = email(payload={"from": "x", "body": SECRET * 10_000})
    reason = reason_of(json.dumps(record))
    assert "email.payload.body" in reason
    assert "string_too_long" in reason


def test_a_communication_that_is_not_an_object_is_rejected() -> None:
    assert reason_of(json.dumps([email()])) == (
        "communication must be a JSON object, not an array"
    )
    assert reason_of(json.dumps(SECRET)) == (
        "communication must be a JSON object, not a string"
    )


def test_a_payload_of_the_wrong_shape_is_rejected() -> None:
    record = email(payload={"from": "x", "body": {"text": SECRET}})
    reason = reason_of(json.dumps(record))
    assert "email.payload.body: Input should be a valid string" in reason


def test_an_unexpected_field_is_named_but_an_odd_key_is_masked() -> None:
    record = email(extra=1)
    record[SECRET + " key!"] = 2
    reason = reason_of(json.dumps(record))
    assert "email.extra: Extra inputs are not permitted" in reason
    assert "email.<key>: Extra inputs are not permitted" in reason


def test_many_errors_are_summarized() -> None:
    record = {"data_type": "email", "payload": {}}
    reason = reason_of(json.dumps(record))
    assert reason.count("(missing)") == 3
    assert reason.endswith("more")


def test_a_lone_surrogate_escape_is_broken_unicode() -> None:
    body = json.dumps(email()).replace('"Hi"', '"Hi \\ud800 there"')
    reason = reason_of(body)
    assert reason == "broken Unicode (lone surrogate) in payload.subject"


def test_a_lone_surrogate_inside_an_envelope_is_broken_unicode() -> None:
    message = json.dumps(email()).replace('"Hi"', '"\\udfff"')
    assert reason_of(envelope(message, "email")).startswith("broken Unicode")


def test_an_escaped_surrogate_pair_is_a_valid_character() -> None:
    body = json.dumps(email()).replace('"Hi"', '"launch \\ud83d\\ude80"')
    assert decode_message(body).payload.subject == "launch \U0001f680"  # type: ignore[union-attr]


def test_a_body_string_with_a_raw_surrogate_is_broken_unicode() -> None:
    body = json.dumps(email(), ensure_ascii=False).replace("Hi", "Hi \udc80")
    assert reason_of(body).startswith("body has broken Unicode")


def test_invalid_utf8_bytes_are_rejected() -> None:
    body = json.dumps(email()).encode().replace(b"Hi", b"H\xff\xfe")
    assert reason_of(body).startswith("body is not valid UTF-8")


def test_a_data_type_attribute_that_disagrees_with_the_body_is_rejected() -> None:
    reason = reason_of(json.dumps(email()), sqs_attribute("salesforce"))
    assert (
        reason == "data_type attribute 'salesforce' disagrees with the body's 'email'"
    )


def test_an_envelope_attribute_that_disagrees_with_the_body_is_rejected() -> None:
    reason = reason_of(envelope(json.dumps(email()), "call_transcript"))
    assert "disagrees" in reason


def test_an_unrouted_envelope_names_its_unknown_data_type() -> None:
    body = envelope(json.dumps(email(data_type="fax")), "fax")
    assert unrouted_reason(body, {}) == "missing or unknown data_type attribute ('fax')"


def test_an_unrouted_message_without_the_attribute_says_missing() -> None:
    assert unrouted_reason(json.dumps(email()), {}) == (
        "missing or unknown data_type attribute (missing)"
    )
    assert unrouted_reason(b"\xff", None).endswith("(missing)")


def test_an_unrouted_raw_message_names_its_sqs_attribute() -> None:
    reason = unrouted_reason("not json", sqs_attribute("fax"))
    assert reason == "missing or unknown data_type attribute ('fax')"
