"""The domain models accept what they should and say why they refuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.errors import StateViolation
from shared.models import (
    AlertDefinition,
    CallTranscript,
    Email,
    SalesforceChange,
    SchemaLimits,
    StateField,
    StateSchema,
    parse_communication,
)


def record(**overrides: object) -> dict:
    base = {
        "id": "email-1",
        "tenant": "tenant-acme",
        "data_type": "email",
        "occurred_at": "2025-01-01T10:00:00+00:00",
        "payload": {"from": "a", "to": ["b"], "subject": "hi", "body": "hello"},
    }
    base.update(overrides)
    return base


def test_every_real_record_parses_into_its_data_type(data_dir: Path) -> None:
    kinds = {
        "call_transcript": CallTranscript,
        "email": Email,
        "salesforce": SalesforceChange,
    }
    count = 0
    for path in sorted(data_dir.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            comm = parse_communication(line)
            assert isinstance(comm, kinds[comm.data_type])
            assert comm.id in comm.render()
            count += 1
    assert count == 327


def test_an_unknown_data_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="data_type"):
        parse_communication(record(data_type="fax"))


def test_a_missing_tenant_is_refused() -> None:
    raw = record()
    del raw["tenant"]
    with pytest.raises(ValidationError, match="tenant"):
        parse_communication(raw)


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        parse_communication(record(occurred_at="2025-01-01T10:00:00"))


def test_an_email_renders_its_headers_and_body() -> None:
    text = parse_communication(json.dumps(record())).render()
    assert "from: a" in text and "subject: hi" in text and text.endswith("hello")


def test_a_schema_with_too_many_fields_is_refused() -> None:
    fields = [
        {"name": f"f{i}", "type": "integer"} for i in range(SchemaLimits.MAX_FIELDS + 1)
    ]
    with pytest.raises(ValidationError):
        StateSchema.model_validate({"fields": fields})


def test_an_enum_needs_values_and_only_enums_take_them() -> None:
    with pytest.raises(ValidationError, match="needs 'values'"):
        StateField(name="stage", type="enum")
    with pytest.raises(ValidationError, match="only enum"):
        StateField(name="n", type="integer", values=["a"])


def test_validate_state_rejects_unknown_missing_and_out_of_bounds_fields() -> None:
    schema = StateSchema(
        fields=[
            StateField(name="count", type="integer", minimum=0, maximum=10),
            StateField(name="stage", type="enum", values=["open", "won"]),
        ]
    )
    assert schema.validate_state({"count": 3, "stage": "won"}) == {
        "count": 3,
        "stage": "won",
    }
    with pytest.raises(StateViolation, match="unknown"):
        schema.validate_state({"count": 1, "stage": "open", "extra": 1})
    with pytest.raises(StateViolation, match="missing"):
        schema.validate_state({"count": 1})
    with pytest.raises(StateViolation, match="above"):
        schema.validate_state({"count": 11, "stage": "open"})
    with pytest.raises(StateViolation, match="one of"):
        schema.validate_state({"count": 1, "stage": "lost"})
    with pytest.raises(StateViolation, match="integer"):
        schema.validate_state({"count": True, "stage": "open"})


def test_a_definition_gets_its_initial_state_from_the_schema() -> None:
    definition = AlertDefinition(
        name="Competitor",
        description="d",
        data_types=["email", "call_transcript", "email"],
        instructions='Fire on "Globex".',
        state_schema=StateSchema(fields=[StateField(name="mentions", type="integer")]),
    )
    assert definition.initial_state == {"mentions": 0}
    assert definition.data_types == ["call_transcript", "email"]
    assert definition.applies_to("email") and not definition.applies_to("salesforce")


def test_a_definition_with_an_invalid_initial_state_is_refused() -> None:
    with pytest.raises(ValidationError, match="initial_state"):
        AlertDefinition(
            name="x",
            description="d",
            data_types=["email"],
            instructions="i",
            state_schema=StateSchema(fields=[StateField(name="n", type="integer")]),
            initial_state={"n": "three"},
        )
