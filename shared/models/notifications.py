"""Pending alerts and the notification a flush sends (schema version 1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

NOTIFICATION_SCHEMA_VERSION: Literal[1] = 1


class Trigger(BaseModel):
    """One communication that made an alert fire."""

    model_config = ConfigDict(extra="forbid")

    communication_id: str
    data_type: str
    occurred_at: datetime
    received_at: datetime
    reason: str
    evidence: list[str] = []


class PendingAlert(BaseModel):
    """The one pending entry of an alert while its window is open."""

    tenant: str
    alert_id: str
    shard: int
    first_seen_at: datetime
    last_updated_at: datetime
    window_seconds: float
    state: dict[str, Any]

    def due_at(self) -> float:
        return self.first_seen_at.timestamp() + self.window_seconds


class AlertNotification(BaseModel):
    """What the output queue receives: one per alert and window."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = NOTIFICATION_SCHEMA_VERSION
    notification_id: str
    tenant: str
    alert_id: str
    alert_name: str
    owner: str
    window_started_at: datetime
    flushed_at: datetime
    triggers: list[Trigger]
    state: dict[str, Any]
