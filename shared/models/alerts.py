"""Alert definitions and their small, typed state.

The state schema is deliberately constrained, and every limit lives in
``SchemaLimits`` below (the README's table repeats them):

=============  ====================================================
field type     value
=============  ====================================================
integer        whole number within [minimum, maximum] if given
number         real number within [minimum, maximum] if given
boolean        true / false
string         text of at most ``max_length`` characters
enum           one of ``values``
string_list    at most ``max_items`` strings of ``max_length`` each
timestamp      ISO 8601 date-time with a time zone
=============  ====================================================

A schema has at most ``MAX_FIELDS`` fields with unique snake_case names. A state
is valid when it has exactly the schema's fields, each of its type and bounds:
``StateSchema.validate_state`` is the single check that the model's answers, the
API and the stores all go through, so nothing the model says can add a field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.errors import StateViolation
from shared.settings import DataType


class SchemaLimits:
    MAX_FIELDS = 6
    NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
    MAX_STRING = 200
    MAX_LIST_ITEMS = 20
    MAX_ENUM_VALUES = 12
    MAX_DESCRIPTION = 200
    ABS_NUMBER = 1e12


class FieldType(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    STRING = "string"
    ENUM = "enum"
    STRING_LIST = "string_list"
    TIMESTAMP = "timestamp"


class StateField(BaseModel):
    """One typed field of an alert's state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=SchemaLimits.NAME_PATTERN)]
    type: FieldType
    description: Annotated[str, Field(max_length=SchemaLimits.MAX_DESCRIPTION)] = ""
    values: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=40)]],
        Field(max_length=SchemaLimits.MAX_ENUM_VALUES),
    ] = []
    max_length: Annotated[int, Field(ge=1, le=SchemaLimits.MAX_STRING)] = (
        SchemaLimits.MAX_STRING
    )
    max_items: Annotated[int, Field(ge=1, le=SchemaLimits.MAX_LIST_ITEMS)] = (
        SchemaLimits.MAX_LIST_ITEMS
    )
    minimum: float | None = None
    maximum: float | None = None

    @model_validator(mode="after")
    def _coherent(self) -> StateField:
        if self.type is FieldType.ENUM:
            if not self.values:
                raise ValueError(f"enum field {self.name!r} needs 'values'")
            if len(set(self.values)) != len(self.values):
                raise ValueError(f"enum field {self.name!r} repeats a value")
        elif self.values:
            raise ValueError(f"only enum fields take 'values' ({self.name!r})")
        numeric = self.type in (FieldType.INTEGER, FieldType.NUMBER)
        if not numeric and (self.minimum is not None or self.maximum is not None):
            raise ValueError(f"only numeric fields take bounds ({self.name!r})")
        if (
            self.minimum is not None
            and self.maximum is not None
            and self.minimum > self.maximum
        ):
            raise ValueError(f"field {self.name!r}: minimum is above maximum")
        return self

    def default(self) -> Any:
        match self.type:
            case FieldType.INTEGER | FieldType.NUMBER:
                low = self.minimum if self.minimum is not None else 0
                return int(low) if self.type is FieldType.INTEGER else float(low)
            case FieldType.BOOLEAN:
                return False
            case FieldType.STRING:
                return ""
            case FieldType.ENUM:
                return self.values[0]
            case FieldType.STRING_LIST:
                return []
            case FieldType.TIMESTAMP:
                return None

    def check(self, value: Any) -> Any:
        """The value, normalised, or StateViolation saying what is wrong."""
        where = f"state field {self.name!r}"
        match self.type:
            case FieldType.INTEGER | FieldType.NUMBER:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise StateViolation(f"{where} must be a {self.type.value}")
                if self.type is FieldType.INTEGER:
                    if isinstance(value, float) and not value.is_integer():
                        raise StateViolation(f"{where} must be a whole number")
                    value = int(value)
                else:
                    value = float(value)
                if abs(value) > SchemaLimits.ABS_NUMBER:
                    raise StateViolation(f"{where} is out of range")
                if self.minimum is not None and value < self.minimum:
                    raise StateViolation(f"{where} is below {self.minimum}")
                if self.maximum is not None and value > self.maximum:
                    raise StateViolation(f"{where} is above {self.maximum}")
                return value
            case FieldType.BOOLEAN:
                if not isinstance(value, bool):
                    raise StateViolation(f"{where} must be true or false")
                return value
            case FieldType.STRING:
                if not isinstance(value, str) or len(value) > self.max_length:
                    raise StateViolation(
                        f"{where} must be a string of at most {self.max_length}"
                        " characters"
                    )
                return value
            case FieldType.ENUM:
                if value not in self.values:
                    raise StateViolation(f"{where} must be one of {self.values}")
                return value
            case FieldType.STRING_LIST:
                if (
                    not isinstance(value, list)
                    or len(value) > self.max_items
                    or any(
                        not isinstance(v, str) or len(v) > self.max_length
                        for v in value
                    )
                ):
                    raise StateViolation(
                        f"{where} must be a list of at most {self.max_items} strings"
                        f" of at most {self.max_length} characters"
                    )
                return value
            case FieldType.TIMESTAMP:
                if value is None:
                    return None
                try:
                    parsed = datetime.fromisoformat(str(value))
                except ValueError:
                    raise StateViolation(f"{where} must be an ISO 8601 time") from None
                if parsed.tzinfo is None:
                    raise StateViolation(f"{where} needs a time zone")
                return parsed.astimezone(UTC).isoformat()


class StateSchema(BaseModel):
    """The fields of an alert's state; at most ``SchemaLimits.MAX_FIELDS``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: Annotated[list[StateField], Field(max_length=SchemaLimits.MAX_FIELDS)] = []

    @model_validator(mode="after")
    def _unique_names(self) -> StateSchema:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("state field names must be unique")
        return self

    def initial_state(self) -> dict[str, Any]:
        return {f.name: f.default() for f in self.fields}

    def validate_state(self, state: Any) -> dict[str, Any]:
        """Exactly the schema's fields, each valid, or StateViolation."""
        if not isinstance(state, dict):
            raise StateViolation("state must be an object")
        known = {f.name: f for f in self.fields}
        unknown = sorted(set(state) - set(known))
        if unknown:
            raise StateViolation(f"unknown state fields: {unknown}")
        missing = sorted(set(known) - set(state))
        if missing:
            raise StateViolation(f"missing state fields: {missing}")
        return {name: field.check(state[name]) for name, field in known.items()}

    def counter_field(self) -> str | None:
        """The first integer field, which simple counting alerts use."""
        return next((f.name for f in self.fields if f.type is FieldType.INTEGER), None)


Name = Annotated[str, Field(min_length=1, max_length=80)]
Text = Annotated[str, Field(max_length=2_000)]


class AlertDefinition(BaseModel):
    """What an alert watches for: the LLM's structured reading of a prompt."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    description: Annotated[str, Field(min_length=1, max_length=1_000)]
    data_types: Annotated[list[DataType], Field(min_length=1, max_length=3)]
    instructions: Annotated[str, Field(min_length=1, max_length=4_000)]
    state_schema: StateSchema = StateSchema()
    initial_state: dict[str, Any] | None = None
    window_seconds: Annotated[float, Field(ge=0, le=7 * 86_400)] | None = Field(
        default=None,
        description="Batch window: 0 delivers at once, None takes the default.",
    )
    owner: Annotated[str, Field(max_length=120)] = ""

    @model_validator(mode="after")
    def _state_fits_schema(self) -> AlertDefinition:
        self.data_types = sorted(set(self.data_types))  # type: ignore[assignment]
        if self.initial_state is None:
            self.initial_state = self.state_schema.initial_state()
        else:
            try:
                self.initial_state = self.state_schema.validate_state(
                    self.initial_state
                )
            except StateViolation as err:
                # A ValueError, so that pydantic reports it as a validation
                # error of this model (a 422 at the API, a repair turn in
                # creation) rather than letting a bare exception through.
                raise ValueError(f"initial_state: {err}") from None
        return self

    def applies_to(self, data_type: str) -> bool:
        return data_type in self.data_types


def utcnow() -> datetime:
    return datetime.now(UTC)


class Alert(BaseModel):
    """A stored alert: its definition plus identity, status and current state."""

    model_config = ConfigDict(extra="forbid")

    tenant: str
    alert_id: str
    definition: AlertDefinition
    enabled: bool = True
    state: dict[str, Any]
    version: int = 0
    created_at: datetime
    updated_at: datetime
    prompt: Annotated[str, Field(max_length=4_000)] = ""
    status: Literal["active"] = "active"
