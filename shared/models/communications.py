"""A communication: one call transcript, email or Salesforce change of a tenant.

The wire shape is the one upstream systems publish (and ``../shared/data`` holds):
``id``, ``tenant``, ``data_type``, ``occurred_at``, ``payload``, ``source``. The
model is a discriminated union on ``data_type``; each data type validates and
renders its own payload here, in one place, so that ingestion and prompts never
branch on the type themselves:

- a transcript renders its turns, one ``speaker: text`` line each;
- an email keeps its new text apart from the quoted history it replies to or
  forwards (``-----Original Message-----``, ``From: ... Sent:`` blocks, Lotus
  Notes forwards, ``>`` lines), which it renders as a marked section: an alert
  about what the sender says must not fire on what someone else said earlier;
- a Salesforce change event cross-checks its ``ChangeEventHeader`` (entity,
  record, change type, changed field names, commit time) against the payload
  and the communication, and refuses an event whose header disagrees.

Validation messages written here never quote the communication's values: they
become dead-letter reasons and log fields.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

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

    def thread(self) -> tuple[str, str]:
        """The body split into (new text, quoted history); either may be empty."""
        return split_quoted_history(self.body)


# Where the quoted history of an email begins. Clients mark it in a few
# conventional ways; each pattern matches one line.
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(original message|forwarded message:?)\s*-{2,}\s*$", re.I
)
_FORWARDED_BY = re.compile(r"^\s*-{2,}\s*forwarded by\b", re.I)  # Lotus Notes
_FROM = re.compile(r"^\s*from:\s", re.I)
_SENT = re.compile(r"^\s*(sent|date):\s", re.I)
_TO = re.compile(r"^\s*to:\s", re.I)
_SUBJECT = re.compile(r"^\s*subject:\s", re.I)
_NOTES_DATE = re.compile(r"^\s*\d{1,2}/\d{1,2}/\d{2,4}\s+\d{1,2}:\d{2}\s*[AP]M\s*$")
_QUOTED_LINE = re.compile(r"^\s*>")
_ATTRIBUTION = re.compile(r"\bwrote:\s*$", re.I)
# How far below a ``From:`` line the rest of a reply header may sit.
_HEADER_SPAN = 6

QUOTED_OPEN = (
    "[quoted history: earlier messages this email replies to or forwards, "
    "not written by its sender]"
)
QUOTED_CLOSE = "[end of quoted history]"
NO_NEW_TEXT = "[no new text: the email only forwards or quotes earlier messages]"


def split_quoted_history(body: str) -> tuple[str, str]:
    """Split an email body into the sender's new text and the quoted history.

    Everything from the first history marker on is quoted; above it, ``>``
    lines (with a ``... wrote:`` line that introduces them) are quoted too,
    so an inline reply keeps its own lines as new text.
    """
    lines = body.splitlines()
    start = next(
        (i for i in range(len(lines)) if _history_starts(lines, i)), len(lines)
    )
    new: list[str] = []
    quoted: list[str] = []
    for i, line in enumerate(lines[:start]):
        if _QUOTED_LINE.match(line) or (
            _ATTRIBUTION.search(line) and _next_text_is_quoted(lines, i + 1, start)
        ):
            quoted.append(line)
        else:
            new.append(line)
    quoted.extend(lines[start:])
    return "\n".join(new).strip("\n"), "\n".join(quoted).strip("\n")


def _history_starts(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _SEPARATOR.match(line) or _FORWARDED_BY.match(line):
        return True
    below = lines[i + 1 : i + 1 + _HEADER_SPAN]
    if _FROM.match(line):
        # ``From:`` then ``Sent:`` (Outlook) or ``To:`` and ``Subject:``.
        return any(_SENT.match(b) for b in below) or (
            any(_TO.match(b) for b in below) and any(_SUBJECT.match(b) for b in below)
        )
    # A Lotus Notes reply header: sender, date line, then To: ... Subject:.
    return (
        i + 1 < len(lines)
        and bool(lines[i].strip())
        and bool(_NOTES_DATE.match(lines[i + 1]))
        and any(_TO.match(b) for b in below[1:3])
        and any(_SUBJECT.match(b) for b in below)
    )


def _next_text_is_quoted(lines: list[str], start: int, end: int) -> bool:
    following = next((line for line in lines[start:end] if line.strip()), "")
    return bool(_QUOTED_LINE.match(following))


ChangeType = Literal[
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
FieldName = Annotated[str, Field(min_length=1, max_length=255)]
# The header's commit time and the communication's occurred_at name one moment;
# the header counts milliseconds, ISO texts may round to the second.
COMMIT_TIME_TOLERANCE = timedelta(seconds=1)


class _Wire(BaseModel):
    # Salesforce's own field names on the wire, Python names in code; extra
    # keys (transactionKey, sequenceNumber, the record's values) are kept.
    model_config = ConfigDict(
        extra="allow", frozen=True, validate_by_name=True, serialize_by_alias=True
    )


class ChangeEventHeader(_Wire):
    """The ``ChangeEventHeader`` of a Change Data Capture event."""

    entity_name: Annotated[str, Field(min_length=1, max_length=80)] = Field(
        alias="entityName"
    )
    record_ids: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=40)]],
        Field(min_length=1, max_length=1_000),
    ] = Field(alias="recordIds")
    change_type: ChangeType = Field(alias="changeType")
    changed_fields: Annotated[list[FieldName], Field(max_length=2_000)] = Field(
        default=[], alias="changedFields"
    )
    nulled_fields: Annotated[list[FieldName], Field(max_length=2_000)] = Field(
        default=[], alias="nulledFields"
    )
    commit_timestamp: Annotated[int, Field(ge=0)] = Field(alias="commitTimestamp")

    @property
    def committed_at(self) -> datetime:
        return datetime.fromtimestamp(self.commit_timestamp / 1000, UTC)

    def field_names(self) -> list[str]:
        """Every field the event changed, those set to null included."""
        return [*self.changed_fields, *self.nulled_fields]


class CdcEvent(_Wire):
    """The event as Salesforce delivered it: the header and the record's values."""

    header: ChangeEventHeader | None = Field(default=None, alias="ChangeEventHeader")


class SalesforcePayload(_Strict):
    object_type: Annotated[str, Field(min_length=1, max_length=80)]
    record_id: Annotated[str, Field(min_length=1, max_length=40)]
    change_type: ChangeType
    changed_fields: dict[str, Any] = {}
    cdc_event: CdcEvent = CdcEvent()

    @model_validator(mode="after")
    def _header_agrees(self) -> SalesforcePayload:
        header = self.cdc_event.header
        if header is None:
            return self
        if header.entity_name != self.object_type:
            raise ValueError("ChangeEventHeader.entityName is not object_type")
        if self.record_id not in header.record_ids:
            raise ValueError("ChangeEventHeader.recordIds does not hold record_id")
        if header.change_type != self.change_type:
            raise ValueError("ChangeEventHeader.changeType is not change_type")
        named = {name.split(".", 1)[0] for name in header.field_names()}
        # Creations and gap events may list no fields; an update lists them all.
        if named and named != set(self.changed_fields):
            missing = len(named - set(self.changed_fields))
            unnamed = len(set(self.changed_fields) - named)
            raise ValueError(
                "ChangeEventHeader.changedFields disagrees with changed_fields "
                f"({missing} named but absent, {unnamed} present but not named)"
            )
        return self


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
        new_text, quoted = p.thread()
        lines += [f"subject: {p.subject}", "", new_text or NO_NEW_TEXT]
        if quoted:
            lines += ["", QUOTED_OPEN, quoted, QUOTED_CLOSE]
        return "\n".join(lines)


class SalesforceChange(_CommunicationBase):
    data_type: Literal["salesforce"]
    payload: SalesforcePayload

    @model_validator(mode="after")
    def _committed_when_it_occurred(self) -> SalesforceChange:
        header = self.payload.cdc_event.header
        if (
            header is not None
            and abs(header.committed_at - self.occurred_at) > COMMIT_TIME_TOLERANCE
        ):
            raise ValueError("ChangeEventHeader.commitTimestamp is not occurred_at")
        return self

    def render(self) -> str:
        p = self.payload
        header = p.cdc_event.header
        lines = [
            self.header(),
            f"object: {p.object_type} {p.record_id}",
            f"change: {p.change_type}",
        ]
        if header is not None:
            lines.append(f"committed_at: {header.committed_at.isoformat()}")
            if header.nulled_fields:
                lines.append("fields set to null: " + ", ".join(header.nulled_fields))
        names = header.changed_fields if header and header.changed_fields else None
        lines.append("changed fields: " + ", ".join(names or p.changed_fields))
        values = json.dumps(p.changed_fields, ensure_ascii=False, indent=1, default=str)
        lines += ["values:", values]
        return "\n".join(lines)


Communication = Annotated[
    CallTranscript | Email | SalesforceChange, Field(discriminator="data_type")
]
COMMUNICATION = TypeAdapter(Communication)


def parse_communication(raw: str | bytes | dict[str, Any]) -> Communication:
    """Validate a JSON text or a dict into a communication (raises ValidationError)."""
    if isinstance(raw, dict):
        return COMMUNICATION.validate_python(raw)
    return COMMUNICATION.validate_json(raw)
