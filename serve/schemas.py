"""The bodies of the alert API: create, update and public variants, and errors.

Every bound a request can meet is in ``ApiLimits`` (the README's table repeats
them); the state schema's own limits are ``shared.models.SchemaLimits``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.aws.evaluation_store import LedgerRecord
from shared.aws.tenant_store import (
    DOC_PATTERN,
    DRAFT_ID_PATTERN,
    TENANT_PATTERN,
    ContextDocument,
    Draft,
)
from shared.models.alerts import Alert, AlertDefinition, StateSchema
from shared.settings import DataType

__all__ = ["DOC_PATTERN", "DRAFT_ID_PATTERN", "TENANT_PATTERN"]

ALERT_ID_PATTERN = r"^al-[0-9a-f]{12}$"


class ApiLimits:
    """The bounds of every request; a body over ``MAX_BODY_BYTES`` gets 413."""

    MAX_BODY_BYTES = 128 * 1024
    MAX_PROMPT = 4_000
    MAX_REPLY = 2_000
    MAX_REPLIES_PER_DRAFT = 5
    MAX_CONTEXT_CHARS = 16_000
    MAX_CONTEXT_DOCS = 20
    MAX_PAGE = 100
    MAX_EVALUATIONS = 100


# The limits of the definition's own fields (name, instructions, ...) are those
# of AlertDefinition; these are the request's.
Prompt = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=ApiLimits.MAX_PROMPT
    ),
]
Owner = Annotated[str, Field(max_length=120)]
Window = Annotated[float, Field(ge=0, le=7 * 86_400)]

EXAMPLE_TENANT = "tenant-acme"
EXAMPLE_ALERT_ID = "al-3f9c2a7b1d04"
EXAMPLE_DRAFT_ID = "dr-3f9c2a7b1d04"
EXAMPLE_PROMPT = (
    'Tell me when a customer on a call says they are "evaluating a competitor".'
)
EXAMPLE_DEFINITION: dict[str, Any] = {
    "name": "Competitor evaluation",
    "description": "A customer says they evaluate a competitor.",
    "data_types": ["call_transcript"],
    "instructions": 'Fire when the customer says "evaluating a competitor".',
    "state_schema": {
        "fields": [
            {
                "name": "match_count",
                "type": "integer",
                "description": "How many matching calls so far.",
                "minimum": 0,
            }
        ]
    },
    "initial_state": {"match_count": 0},
    "window_seconds": None,
    "owner": "jane@acme.example",
}
EXAMPLE_TIME = "2025-01-01T12:00:00+00:00"


class AlertCreate(BaseModel):
    """A request for a new alert, in the user's own words."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "prompt": EXAMPLE_PROMPT,
                    "owner": "jane@acme.example",
                    "window_seconds": 0,
                }
            ]
        },
    )

    prompt: Prompt = Field(description="What to watch for, in plain language.")
    owner: Owner = Field(
        default="", description="Who receives the alert's notifications."
    )
    window_seconds: Window | None = Field(
        default=None,
        description="Batch window: 0 delivers at once, null takes the default.",
    )


class DraftReply(BaseModel):
    """The user's answer to the draft's questions, or a change they want."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "text": 'Only calls; trigger on "evaluating a competitor" or'
                    ' "looking at Umbrella".'
                }
            ]
        },
    )

    text: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=ApiLimits.MAX_REPLY
        ),
    ]


class AlertUpdate(BaseModel):
    """A change to an alert's definition; fields left out stay as they are.

    The result is validated as a whole. When the state schema changes, the
    alert's state restarts from the (new) initial state; ``reset_state`` forces
    that without a schema change.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"instructions": 'Fire when the customer says "switching vendors".'},
                {"window_seconds": 3600, "owner": "team-emea@acme.example"},
                {"state_schema": {"fields": [{"name": "mentions", "type": "integer"}]}},
            ]
        },
    )

    name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    description: Annotated[str, Field(min_length=1, max_length=1_000)] | None = None
    data_types: Annotated[list[DataType], Field(min_length=1, max_length=3)] | None = (
        None
    )
    instructions: Annotated[str, Field(min_length=1, max_length=4_000)] | None = None
    state_schema: StateSchema | None = None
    initial_state: dict[str, Any] | None = None
    window_seconds: Window | None = Field(
        default=None, description="0 delivers at once; null takes the default."
    )
    owner: Owner | None = None
    reset_state: bool = False


class AlertPublic(BaseModel):
    """An alert as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "alert_id": EXAMPLE_ALERT_ID,
                    "tenant": EXAMPLE_TENANT,
                    "enabled": True,
                    "status": "active",
                    "definition": EXAMPLE_DEFINITION,
                    "state": {"match_count": 0},
                    "version": 0,
                    "prompt": EXAMPLE_PROMPT,
                    "created_at": EXAMPLE_TIME,
                    "updated_at": EXAMPLE_TIME,
                }
            ]
        }
    )

    alert_id: str
    tenant: str
    enabled: bool
    status: Literal["active"]
    definition: AlertDefinition
    state: dict[str, Any]
    version: int
    prompt: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, alert: Alert) -> AlertPublic:
        return cls(
            alert_id=alert.alert_id,
            tenant=alert.tenant,
            enabled=alert.enabled,
            status=alert.status,
            definition=alert.definition,
            state=alert.state,
            version=alert.version,
            prompt=alert.prompt,
            created_at=alert.created_at,
            updated_at=alert.updated_at,
        )


class AlertPage(BaseModel):
    """One page of a tenant's alerts; pass ``next_cursor`` back for the next."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "next_cursor": EXAMPLE_ALERT_ID}]}
    )

    items: list[AlertPublic]
    next_cursor: str | None = None


class AlertState(BaseModel):
    """An alert's current state, its version and its schema."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "alert_id": EXAMPLE_ALERT_ID,
                    "state": {"match_count": 3},
                    "version": 3,
                    "state_schema": EXAMPLE_DEFINITION["state_schema"],
                    "updated_at": EXAMPLE_TIME,
                }
            ]
        }
    )

    alert_id: str
    state: dict[str, Any]
    version: int
    state_schema: StateSchema
    updated_at: datetime

    @classmethod
    def of(cls, alert: Alert) -> AlertState:
        return cls(
            alert_id=alert.alert_id,
            state=alert.state,
            version=alert.version,
            state_schema=alert.definition.state_schema,
            updated_at=alert.updated_at,
        )


class Evaluation(BaseModel):
    """One evaluation of the alert against one communication: why it fired or not."""

    communication_id: str
    evaluated_at: datetime
    outcome: Literal["fired", "not_fired", "failed"]
    reason: str
    evidence: list[str]
    new_state: dict[str, Any] | None
    error: str | None

    @classmethod
    def of(cls, record: LedgerRecord) -> Evaluation:
        result = record.result
        return cls(
            communication_id=result.communication_id,
            evaluated_at=datetime.fromisoformat(record.evaluated_at),
            outcome=result.outcome,
            reason=result.reason,
            evidence=result.evidence,
            new_state=result.new_state,
            error=result.error,
        )


class EvaluationList(BaseModel):
    """An alert's latest evaluations, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "communication_id": "call-0042",
                            "evaluated_at": EXAMPLE_TIME,
                            "outcome": "fired",
                            "reason": 'Found "evaluating a competitor".',
                            "evidence": ["we are evaluating a competitor"],
                            "new_state": {"match_count": 1},
                            "error": None,
                        }
                    ]
                }
            ]
        }
    )

    items: list[Evaluation]


class Clarification(BaseModel):
    """The request is ambiguous: answer the questions on the draft; nothing stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "needs_clarification",
                    "questions": ["Which competitors count?", "Calls, emails or both?"],
                    "draft_id": EXAMPLE_DRAFT_ID,
                }
            ]
        }
    )

    status: Literal["needs_clarification"] = "needs_clarification"
    questions: list[str]
    draft_id: str


class DraftPublic(BaseModel):
    """A draft: the questions still open, or the definition ready to accept."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "draft_id": EXAMPLE_DRAFT_ID,
                    "tenant": EXAMPLE_TENANT,
                    "status": "needs_clarification",
                    "prompt": "Tell me when a customer talks about our competitors.",
                    "questions": [
                        "Which exact words or phrases should trigger this alert?"
                    ],
                    "definition": None,
                    "reason": "",
                    "context": ["[competitors] Umbrella Corp and Initrode."],
                    "replies": 0,
                    "alert_id": None,
                    "created_at": EXAMPLE_TIME,
                    "updated_at": EXAMPLE_TIME,
                    "expires_at": "2025-01-08T12:00:00+00:00",
                },
                {
                    "draft_id": EXAMPLE_DRAFT_ID,
                    "tenant": EXAMPLE_TENANT,
                    "status": "ready",
                    "prompt": "Tell me when a customer talks about our competitors.",
                    "questions": [],
                    "definition": EXAMPLE_DEFINITION,
                    "reason": "",
                    "context": ["[competitors] Umbrella Corp and Initrode."],
                    "replies": 1,
                    "alert_id": None,
                    "created_at": EXAMPLE_TIME,
                    "updated_at": EXAMPLE_TIME,
                    "expires_at": "2025-01-08T12:00:00+00:00",
                },
            ]
        }
    )

    draft_id: str
    tenant: str
    status: Literal["needs_clarification", "ready", "refused", "accepted"]
    prompt: str
    questions: list[str]
    definition: AlertDefinition | None
    reason: str
    context: list[str] = Field(
        description="The tenant's context passages the model was given."
    )
    replies: int
    alert_id: str | None = Field(description="The alert, once the draft is accepted.")
    created_at: datetime
    updated_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, draft: Draft) -> DraftPublic:
        return cls(
            draft_id=draft.draft_id,
            tenant=draft.tenant,
            status=draft.status,
            prompt=draft.prompt,
            questions=draft.questions,
            definition=draft.definition,
            reason=draft.reason,
            context=draft.context,
            replies=draft.replies,
            alert_id=draft.alert_id,
            created_at=draft.created_at,
            updated_at=draft.updated_at,
            expires_at=draft.expires_at,
        )


class ContextPut(BaseModel):
    """A context document: a glossary, products and competitors, a team list."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "text": "Our competitors are Umbrella Corp and Initrode.\n\n"
                    "The enterprise plan is the annual plan with SSO."
                }
            ]
        },
    )

    text: Annotated[
        str,
        StringConstraints(min_length=1, max_length=ApiLimits.MAX_CONTEXT_CHARS),
    ]


class ContextPublic(BaseModel):
    """A stored context document."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "doc": "competitors",
                    "text": "Our competitors are Umbrella Corp and Initrode.",
                    "chars": 47,
                    "updated_at": EXAMPLE_TIME,
                }
            ]
        }
    )

    doc: str
    text: str
    chars: int
    updated_at: datetime

    @classmethod
    def of(cls, document: ContextDocument) -> ContextPublic:
        return cls(
            doc=document.doc,
            text=document.text,
            chars=len(document.text),
            updated_at=document.updated_at,
        )


class ContextSummary(BaseModel):
    """A context document without its text."""

    doc: str
    chars: int
    updated_at: datetime


class ContextList(BaseModel):
    """The tenant's context documents, by name."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"doc": "competitors", "chars": 47, "updated_at": EXAMPLE_TIME}
                    ]
                }
            ]
        }
    )

    items: list[ContextSummary]


ErrorCode = Literal[
    "unauthorized",
    "not_found",
    "conflict",
    "limit_reached",
    "too_large",
    "unsupported_media_type",
    "invalid",
    "refused",
    "model_unavailable",
    "model_answer_invalid",
    "store_unavailable",
]


class ErrorBody(BaseModel):
    """Why a request failed: a stable code and a sentence for people."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "refused",
                    "detail": "Watchword cannot see stock prices: it reads only"
                    " call transcripts, emails and Salesforce changes.",
                }
            ]
        }
    )

    error: ErrorCode
    detail: str


class Unprocessable(BaseModel):
    """A request that cannot be processed as it is (422).

    Either FastAPI's validation detail (``detail`` is a list of locations and
    messages, no ``error``), or an ``ErrorBody``: ``refused`` with the model's
    reason, or ``invalid`` when the combined result fails validation.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"error": "invalid", "detail": "state_schema.fields: too many"},
                {
                    "detail": [
                        {
                            "type": "string_too_long",
                            "loc": ["body", "prompt"],
                            "msg": "String should have at most 4000 characters",
                        }
                    ]
                },
            ]
        }
    )

    error: ErrorCode | None = None
    detail: str | list[dict[str, Any]]
