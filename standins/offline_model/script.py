"""Scripted responses: what tests make the offline model answer instead.

``POST /_control/script`` with ``{"match": "<substring>", "responses": [...]}``
queues responses. A request takes the next response of the oldest script
whose ``match`` occurs in its text (system, message texts and tool names,
joined; as sent, or HTML-unescaped). Each response is used once; a script
whose responses are used up is gone. Posting the same ``match`` again adds to
its queue. Requests that match no script get the rules' answer.

A response is one of (all fields optional, at most one kind):

* ``{"tool_input": {...}}``: the model calls the tool the rules would have
  called (or ``"tool_name"``) with exactly this input;
* ``{"tool_name": "..."}`` alone: that tool, with the rules' input for it;
* ``{"text": "..."}``: a text answer;
* ``{"error": {"status": 429, "retry_after": 2, "type": ..., "message": ...}}``:
  an error in Anthropic's shape (``type`` defaults from the status);
  ``"mid_stream": true`` sends it as an ``error`` event after
  ``message_start`` on a streamed request;
* ``{"timeout": true}``: no answer; the connection is held until the client
  gives up;
* ``{"malformed": true}`` (or ``"fields"``): the rules' tool call without its
  required fields; ``"json"``: tool input that is not valid JSON;
* ``{}``: the rules' answer, which with ``ttft_ms`` / ``total_ms`` (allowed
  on every kind but errors and timeouts) sets this response's latency.
"""

from __future__ import annotations

import html
from collections import deque
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ScriptedError(BaseModel):
    """An error the model answers with."""

    model_config = ConfigDict(extra="forbid")

    status: int = Field(ge=400, le=599)
    type: str | None = None
    message: str | None = None
    retry_after: float | None = Field(default=None, ge=0)
    mid_stream: bool = False


class ScriptedResponse(BaseModel):
    """One scripted response; see the module docstring."""

    model_config = ConfigDict(extra="forbid")

    tool_input: dict[str, Any] | None = None
    tool_name: str | None = None
    text: str | None = None
    error: ScriptedError | None = None
    timeout: bool = False
    malformed: bool | Literal["fields", "json"] = False
    ttft_ms: float | None = Field(default=None, ge=0)
    total_ms: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> ScriptedResponse:
        kinds = [
            self.tool_input is not None,
            self.text is not None,
            self.error is not None,
            self.timeout,
            bool(self.malformed),
        ]
        if sum(kinds) > 1:
            raise ValueError(
                "give at most one of tool_input, text, error, timeout, malformed"
            )
        if self.text is not None and self.tool_name is not None:
            raise ValueError("tool_name goes with a tool call, not with text")
        return self

    @property
    def malformation(self) -> str | None:
        if self.malformed is True:
            return "fields"
        return self.malformed or None


class Script(BaseModel):
    """The body of ``POST /_control/script``."""

    model_config = ConfigDict(extra="forbid")

    match: str = Field(min_length=1)
    responses: list[ScriptedResponse] = Field(min_length=1)


class ScriptBook:
    """The queued scripts, oldest first."""

    def __init__(self) -> None:
        self._scripts: dict[str, deque[ScriptedResponse]] = {}

    def add(self, script: Script) -> int:
        """Queue a script's responses; the number now queued for its match."""
        queue = self._scripts.setdefault(script.match, deque())
        queue.extend(script.responses)
        return len(queue)

    def take(self, text: str) -> ScriptedResponse | None:
        """The next response for a request with this text, if any script matches."""
        unescaped = html.unescape(text)
        for match, queue in self._scripts.items():
            if match in text or match in unescaped:
                response = queue.popleft()
                if not queue:
                    del self._scripts[match]
                return response
        return None

    def clear(self, match: str | None = None) -> int:
        """Drop one script (or all); the number of responses dropped."""
        if match is not None:
            return len(self._scripts.pop(match, ()))
        dropped = sum(len(q) for q in self._scripts.values())
        self._scripts.clear()
        return dropped

    def pending(self) -> dict[str, int]:
        return {match: len(queue) for match, queue in self._scripts.items()}
