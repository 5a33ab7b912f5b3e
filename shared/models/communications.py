"""A communication: one call transcript, email or Salesforce change of a tenant.

The wire shape is the one upstream systems publish (and ``../shared/data`` holds):
``id``, ``tenant``, ``data_type``, ``occurred_at``, ``payload``, ``source``. The
model is a discriminated union on ``data_type``; each data type validates and
renders its own payload here, in one place, so that ingestion and prompts never
branch on the type themselves.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

# Bounds keep a single message well inside an evaluation prompt. A transcript
# of several hours stays under them; anything larger is rejected, not truncated,
# so that no alert is evaluated on a silently shortened text.
MAX_TEXT = 200_000
MAX_TURNS = 5_000

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]
TenantId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
ShortText = Annotated[str, Field(max_length=1_000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Turn(_Strict):
    speaker: ShortText
    text: Annotated[str, Field(max_length=MAX_TEXT)]


class TranscriptPayload(_Strict):
    kind: ShortText | None = None
    title: ShortText | None = None
    participants: Annotated[list[ShortText], Field(max_length=200)] = []
    turns: Annotated[list[Turn], Field(min_length=1, max_length=MAX_TURNS)]


class EmailPayload(_Strict):
    model_config = ConfigDict(populate_by_name=True)

    sender: ShortText = Field(alias="from")
    to: Annotated[list[ShortText], Field(max_length=500)] = []
    cc: Annotated[list[ShortText], Field(max_length=500)] = []
    subject: Annotated[str, Field(max_length=2_000)] = ""
    body: Annotated[str, Field(max_length=MAX_TEXT)]


class SalesforcePayload(_Strict):
    object_type: Annotated[str, Field(min_length=1, max_length=80)]
    record_id: Annotated[str, Field(min_length=1, max_length=40)]
    change_type: Literal[
        "CREATE",
        "UPDATE",
        "DELETE",
        "UNDELETE",
        "GAP_CREATE",
        "GAP_UPDATE",
        "GAP_DELETE",
        "GAP_UNDELETE",
        "GAP_OVERFLOW",
    ]
    changed_fields: dict[str, Any] = {}
    cdc_event: dict[str, Any] = {}


class _CommunicationBase(_Strict):
    id: Identifier
    tenant: TenantId
    occurred_at: AwareDatetime
    source: dict[str, Any] | None = None

    # Each data type defines ``render()``: the text the model reads, without
    # any delimiters (the prompt adds and escapes those).

    def header(self) -> str:
        data_type = getattr(self, "data_type", "?")
        return (
            f"id: {self.id}\ntype: {data_type}\n"
            f"occurred_at: {self.occurred_at.isoformat()}"
        )


class CallTranscript(_CommunicationBase):
    data_type: Literal["call_transcript"]
    payload: TranscriptPayload

    def render(self) -> str:
        p = self.payload
        lines = [self.header()]
        if p.title:
            lines.append(f"title: {p.title}")
        if p.participants:
            lines.append("participants: " + ", ".join(p.participants))
        lines.append("")
        lines.extend(f"{t.speaker}: {t.text}" for t in p.turns)
        return "\n".join(lines)


class Email(_CommunicationBase):
    data_type: Literal["email"]
    payload: EmailPayload

    def render(self) -> str:
        p = self.payload
        lines = [self.header(), f"from: {p.sender}", "to: " + ", ".join(p.to)]
        if p.cc:
            lines.append("cc: " + ", ".join(p.cc))
        lines += [f"subject: {p.subject}", "", p.body]
        return "\n".join(lines)


class SalesforceChange(_CommunicationBase):
    data_type: Literal["salesforce"]
    payload: SalesforcePayload

    def render(self) -> str:
        p = self.payload
        fields = json.dumps(p.changed_fields, ensure_ascii=False, indent=1, default=str)
        return "\n".join(
            [
                self.header(),
                f"object: {p.object_type} {p.record_id}",
                f"change: {p.change_type}",
                "changed fields:",
                fields,
            ]
        )


Communication = Annotated[
    CallTranscript | Email | SalesforceChange, Field(discriminator="data_type")
]
COMMUNICATION = TypeAdapter(Communication)


def parse_communication(raw: str | bytes | dict[str, Any]) -> Communication:
    """Validate a JSON text or a dict into a communication (raises ValidationError)."""
    if isinstance(raw, dict):
        return COMMUNICATION.validate_python(raw)
    return COMMUNICATION.validate_json(raw)
