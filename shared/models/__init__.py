"""The pydantic models every Watchword part speaks."""

from shared.models.alerts import (
    Alert,
    AlertDefinition,
    FieldType,
    SchemaLimits,
    StateField,
    StateSchema,
)
from shared.models.communications import (
    CallTranscript,
    Communication,
    Email,
    SalesforceChange,
    parse_communication,
)
from shared.models.evaluation import (
    CommunicationOutcome,
    EvaluationRequest,
    ModelVerdict,
    ProcessingResult,
    Usage,
)
from shared.models.notifications import AlertNotification, PendingAlert, Trigger

__all__ = [
    "Alert",
    "AlertDefinition",
    "AlertNotification",
    "CallTranscript",
    "Communication",
    "CommunicationOutcome",
    "Email",
    "EvaluationRequest",
    "FieldType",
    "ModelVerdict",
    "PendingAlert",
    "ProcessingResult",
    "SalesforceChange",
    "SchemaLimits",
    "StateField",
    "StateSchema",
    "Trigger",
    "Usage",
    "parse_communication",
]
