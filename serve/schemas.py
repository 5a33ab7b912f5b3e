"""The bodies of the alert API: create and public variants, and error bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.models.alerts import Alert, AlertDefinition

TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ALERT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MAX_PROMPT = 4_000

EXAMPLE_PROMPT = (
    'Tell me when a customer on a call says they are "evaluating a competitor".'
)


class AlertCreate(BaseModel):
    """A request for a new alert, in the user's own words."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"prompt": EXAMPLE_PROMPT, "owner": "jane@example.com"},
            ]
        },
    )

    prompt: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PROMPT),
    ] = Field(description="What to watch for, in plain language.")
    owner: Annotated[str, Field(max_length=120)] = Field(
        default="", description="Who receives the alert's notifications."
    )
    window_seconds: Annotated[float, Field(ge=0, le=7 * 86_400)] | None = Field(
        default=None,
        description="Batch window: 0 delivers at once, null takes the default.",
    )


class AlertPublic(BaseModel):
    """An alert as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "alert_id": "al-3f9c2a7b1d04",
                    "tenant": "acme",
                    "enabled": True,
                    "status": "active",
                    "definition": {
                        "name": "Competitor evaluation",
                        "description": "A customer says they evaluate a competitor.",
                        "data_types": ["call_transcript"],
                        "instructions": (
                            'Fire when the customer says "evaluating a competitor".'
                        ),
                        "state_schema": {"fields": []},
                        "initial_state": {},
                        "window_seconds": None,
                        "owner": "jane@example.com",
                    },
                    "state": {},
                    "prompt": EXAMPLE_PROMPT,
                    "created_at": "2025-01-01T12:00:00+00:00",
                    "updated_at": "2025-01-01T12:00:00+00:00",
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
            prompt=alert.prompt,
            created_at=alert.created_at,
            updated_at=alert.updated_at,
        )


class AlertPage(BaseModel):
    """One page of a tenant's alerts; pass ``next_cursor`` back for the next."""

    items: list[AlertPublic]
    next_cursor: str | None = None


class Clarification(BaseModel):
    """The model needs answers before it can define the alert; nothing stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "needs_clarification",
                    "questions": ["Which competitors count?", "Calls, emails or both?"],
                }
            ]
        }
    )

    status: Literal["needs_clarification"] = "needs_clarification"
    questions: list[str]


class ErrorBody(BaseModel):
    """Why a request failed: a stable code and a sentence for people."""

    error: Literal[
        "refused",
        "not_found",
        "model_unavailable",
        "model_answer_invalid",
        "store_unavailable",
    ]
    detail: str
