"""What an evaluation of one alert against one communication produces."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Usage(BaseModel):
    """Token accounting of one LLM call (as the Messages API reports it)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens
            + other.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens
            + other.cache_read_input_tokens,
        )

    def billed_input(self) -> float:
        """Input cost in base-token units: writes at 1.25x, reads at 0.1x."""
        return (
            self.input_tokens
            + 1.25 * self.cache_creation_input_tokens
            + 0.1 * self.cache_read_input_tokens
        )


class ModelVerdict(BaseModel):
    """The model's answer through the evaluation tool, before validation."""

    model_config = ConfigDict(extra="forbid")

    fired: bool
    reason: Annotated[str, Field(max_length=1_000)]
    evidence: Annotated[
        list[Annotated[str, Field(max_length=500)]], Field(max_length=5)
    ] = []
    new_state: dict[str, Any]


class EvaluationRequest(BaseModel):
    """What the tenant actor asks the evaluator pool to evaluate."""

    tenant: str
    alert_id: str
    communication_id: str
    communication_text: str
    occurred_at: datetime
    instructions: str
    state: dict[str, Any]
    state_schema: dict[str, Any]
    warm_up: bool = False
    # False when no other call will share the prefix (a single alert applies,
    # or the strategy says so): a cache write costs 1.25x and nobody reads it.
    cache: bool = True


class ProcessingResult(BaseModel):
    """The validated outcome of one (alert, communication) evaluation."""

    tenant: str
    alert_id: str
    communication_id: str
    outcome: Literal["fired", "not_fired", "failed"]
    reason: str = ""
    evidence: list[str] = []
    new_state: dict[str, Any] | None = None
    usage: Usage = Usage()
    latency_ms: float = 0.0
    attempts: int = 1
    error: str | None = None

    @property
    def fired(self) -> bool:
        return self.outcome == "fired"


class CommunicationOutcome(BaseModel):
    """What a tenant actor reports once a communication is durably processed."""

    tenant: str
    communication_id: str
    results: list[ProcessingResult] = []

    @property
    def fired(self) -> list[str]:
        return [r.alert_id for r in self.results if r.fired]
