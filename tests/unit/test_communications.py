"""Each data type's own handling, on real records: email threads, Salesforce headers."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ingest.decode import decode_message
from ingest.publish import load_records
from shared.errors import InvalidMessage
from shared.models import Email, SalesforceChange, parse_communication
from shared.models.communications import (
    NO_NEW_TEXT,
    QUOTED_CLOSE,
    QUOTED_OPEN,
    split_quoted_history,
)


@pytest.fixture(scope="module")
def records(data_dir: Path) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in load_records(data_dir)}


def email(records: dict[str, dict[str, Any]], record_id: str) -> Email:
    communication = parse_communication(records[record_id])
    assert isinstance(communication, Email)
    return communication


def salesforce(records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records.values() if r["data_type"] == "salesforce"]


def reason(record: dict[str, Any]) -> str:
    with pytest.raises(InvalidMessage) as caught:
        decode_message(json.dumps(record))
    return caught.value.reason


# --- email ----------------------------------------------------------------


def test_an_outlook_reply_keeps_the_original_message_apart(
    records: dict[str, dict[str, Any]],
) -> None:
    new_text, quoted = email(records, "email-enron-6cda57c6a084").payload.thread()

    assert new_text.startswith("[name] [name] and Tom Bachtell have agreed")
    assert new_text.endswith("since the record date has passed.")
    assert quoted.lstrip().startswith("-----Original Message-----")
    assert "Subject:\tCrown Energy" in quoted
    assert "Original Message" not in new_text


def test_greater_than_lines_are_quoted_and_the_text_after_them_is_not(
    records: dict[str, dict[str, Any]],
) -> None:
    new_text, quoted = email(records, "email-enron-1497ddb89d4a").payload.thread()

    assert "Peoples was cut for gas day June 5" in new_text
    assert all(line.startswith(">") for line in quoted.splitlines())
    assert "> From: \tIsais, Irene" in quoted
    # The disclaimer below the quoted block is the sender's own text.
    assert "intended only for the person" in new_text


def test_a_lotus_notes_forward_is_quoted_history(
    records: dict[str, dict[str, Any]],
) -> None:
    new_text, quoted = email(records, "email-enron-e929a79c4d37").payload.thread()

    assert new_text.endswith("Kish")
    assert quoted.startswith("---------------------- Forwarded by")
    assert "Subject:\tUrgent" in quoted


def test_a_lotus_notes_reply_header_starts_the_quoted_history(
    records: dict[str, dict[str, Any]],
) -> None:
    new_text, quoted = email(records, "email-enron-7bef6ff8ff93").payload.thread()

    assert "Do you know how long it takes to do this?" in new_text
    assert quoted.startswith("[recipient]@ENRON_DEVELOPMENT\n05/08/2001 12:10 PM")
    assert "The usual payment terms of PDVSA" in quoted


def test_a_memo_with_its_own_header_lines_is_not_mistaken_for_a_quote(
    records: dict[str, dict[str, Any]],
) -> None:
    new_text, quoted = email(records, "email-enron-ca8084a54676").payload.thread()

    assert quoted == ""
    assert new_text.startswith("Date:\t\tFebruary 26, 2002")


def test_an_email_that_only_forwards_renders_a_marked_empty_new_text(
    records: dict[str, dict[str, Any]],
) -> None:
    communication = email(records, "email-enron-146fb6ea7fba")
    assert communication.payload.thread()[0] == ""

    text = communication.render()

    assert NO_NEW_TEXT in text
    assert text.index(NO_NEW_TEXT) < text.index(QUOTED_OPEN)


def test_a_reply_renders_its_new_text_then_the_marked_quoted_history(
    records: dict[str, dict[str, Any]],
) -> None:
    text = email(records, "email-enron-6cda57c6a084").render()

    new_at = text.index("have agreed with our recommendation")
    open_at, close_at = text.index(QUOTED_OPEN), text.index(QUOTED_CLOSE)
    assert new_at < open_at < text.index("Original Message") < close_at
    assert text.endswith(QUOTED_CLOSE)


def test_an_email_without_history_renders_its_body_last(
    records: dict[str, dict[str, Any]],
) -> None:
    communication = email(records, "email-enron-484d6430dccf")

    assert communication.payload.thread()[1] == ""
    assert communication.render().endswith("Saludos")
    assert QUOTED_OPEN not in communication.render()


def test_every_real_email_keeps_every_line_of_its_body(
    records: dict[str, dict[str, Any]],
) -> None:
    split = 0
    for record in records.values():
        if record["data_type"] != "email":
            continue
        body = record["payload"]["body"]
        new_text, quoted = split_quoted_history(body)
        kept = sorted(line for line in (new_text + "\n" + quoted).splitlines())
        original = sorted(line for line in body.splitlines())
        assert [x for x in kept if x.strip()] == [x for x in original if x.strip()]
        split += bool(quoted)
    # The Enron mail is full of replies and forwards.
    assert split > 100


def test_an_inline_attribution_goes_with_the_lines_it_introduces() -> None:
    body = "Agreed.\n\nOn Monday, Sales wrote:\n> can we move the call?\n\nThanks"

    assert split_quoted_history(body) == (
        "Agreed.\n\n\nThanks",
        "On Monday, Sales wrote:\n> can we move the call?",
    )


# --- Salesforce -----------------------------------------------------------


def test_every_real_salesforce_event_agrees_with_its_header(
    records: dict[str, dict[str, Any]],
) -> None:
    events = salesforce(records)
    for record in events:
        communication = parse_communication(record)
        assert isinstance(communication, SalesforceChange)
        header = communication.payload.cdc_event.header
        assert header is not None
        assert header.committed_at == communication.occurred_at
    assert len(events) == 107


def test_a_salesforce_event_renders_its_header(
    records: dict[str, dict[str, Any]],
) -> None:
    text = parse_communication(records["sf-dadb6ea872ef"]).render()

    assert "object: Account 001XX0000DADB6EA87" in text
    assert "change: CREATE" in text
    assert "committed_at: 2025-02-03T12:51:00+00:00" in text
    assert "changed fields: AnnualRevenue, BillingCity," in text
    assert '"Name": "Quimm 109"' in text


def test_the_cdc_event_keeps_salesforce_field_names_on_the_wire(
    records: dict[str, dict[str, Any]],
) -> None:
    record = records["sf-dadb6ea872ef"]
    communication = parse_communication(record)
    assert isinstance(communication, SalesforceChange)

    dumped = communication.payload.cdc_event.model_dump(mode="json", exclude_unset=True)

    assert dumped == record["payload"]["cdc_event"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda p: p["cdc_event"]["ChangeEventHeader"].update(entityName="Case"),
            "ChangeEventHeader.entityName is not object_type",
        ),
        (
            lambda p: p["cdc_event"]["ChangeEventHeader"].update(recordIds=["00X"]),
            "ChangeEventHeader.recordIds does not hold record_id",
        ),
        (
            lambda p: p["cdc_event"]["ChangeEventHeader"].update(changeType="DELETE"),
            "ChangeEventHeader.changeType is not change_type",
        ),
        (
            lambda p: p["changed_fields"].pop("Name"),
            "(1 named but absent, 0 present but not named)",
        ),
    ],
    ids=["entity", "record", "change type", "changed fields"],
)
def test_a_header_that_disagrees_with_the_payload_is_refused_without_values(
    records: dict[str, dict[str, Any]], change: Any, expected: str
) -> None:
    record = copy.deepcopy(records["sf-dadb6ea872ef"])
    change(record["payload"])

    refused = reason(record)

    assert refused.startswith("invalid communication: salesforce.payload: Value error")
    assert expected in refused
    assert "Quimm" not in refused and "001XX" not in refused


def test_a_commit_time_far_from_occurred_at_is_refused(
    records: dict[str, dict[str, Any]],
) -> None:
    record = copy.deepcopy(records["sf-dadb6ea872ef"])
    record["occurred_at"] = "2025-02-03T13:51:00+00:00"

    assert "commitTimestamp is not occurred_at" in reason(record)


def test_an_update_may_null_fields_and_an_event_may_lack_its_header(
    records: dict[str, dict[str, Any]],
) -> None:
    record = copy.deepcopy(records["sf-dadb6ea872ef"])
    header = record["payload"]["cdc_event"]["ChangeEventHeader"]
    header.update(changeType="UPDATE", changedFields=["Phone"], nulledFields=["Fax"])
    record["payload"].update(
        change_type="UPDATE", changed_fields={"Phone": "1", "Fax": None}
    )

    text = parse_communication(record).render()

    assert "fields set to null: Fax" in text
    assert "changed fields: Phone" in text
    del record["payload"]["cdc_event"]["ChangeEventHeader"]
    assert "committed_at" not in parse_communication(record).render()


def test_a_header_of_the_wrong_shape_is_refused_by_location(
    records: dict[str, dict[str, Any]],
) -> None:
    record = copy.deepcopy(records["sf-dadb6ea872ef"])
    record["payload"]["cdc_event"]["ChangeEventHeader"]["commitTimestamp"] = "soon"

    with pytest.raises(ValidationError):
        parse_communication(record)
    assert "cdc_event.ChangeEventHeader.commitTimestamp" in reason(record)
