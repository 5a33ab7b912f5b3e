"""The Messages API's shapes: message JSON, server-sent events and errors.

Pure functions from what the model says (a ``Reply``) and how its input tokens
split (``CacheUse``) to what goes on the wire, in Anthropic's formats:

* a message: ``{"id", "type": "message", "role": "assistant", "model",
  "content", "stop_reason", "stop_sequence", "usage"}``;
* a stream: ``message_start`` (usage so far), ``ping``, then per content block
  ``content_block_start`` / ``content_block_delta`` (``text_delta`` or
  ``input_json_delta`` with ``partial_json`` chunks) / ``content_block_stop``,
  then ``message_delta`` (stop reason, final usage) and ``message_stop``;
* an error: ``{"type": "error", "error": {"type", "message"}, "request_id"}``.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from standins.offline_model.cache import ONE_HOUR, CacheUse
from standins.offline_model.rules import Answer, ToolCall

JSON_CHUNK_CHARS = 48
TEXT_CHUNK_CHARS = 24

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass
class Block:
    """One content block: text, or a tool call with its input and input JSON."""

    type: str
    text: str = ""
    name: str = ""
    id: str = ""
    input: Any = field(default_factory=dict)
    json_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        if self.type == "text":
            return {"type": "text", "text": self.text}
        return {
            "type": "tool_use",
            "id": self.id,
            "name": self.name,
            "input": self.input,
        }


@dataclass
class Reply:
    """What the model says: content blocks, stop reason, output tokens."""

    blocks: list[Block]
    stop_reason: str
    output_tokens: int


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


def build_reply(
    answer: Answer,
    max_tokens: int,
    malformed: str | None = None,
    required: Collection[str] = (),
) -> Reply:
    """The reply to ``answer``, cut short at ``max_tokens`` as the API does.

    ``malformed`` spoils a tool call on purpose: ``"fields"`` leaves out the
    ``required`` fields, ``"json"`` makes its input text that is not JSON.
    """
    if isinstance(answer, ToolCall):
        data = dict(answer.input)
        if malformed == "fields":
            data = {k: v for k, v in data.items() if k not in required}
        text = json.dumps(data, ensure_ascii=False)
        block = Block("tool_use", name=answer.name, id=new_id("toolu"))
        block.input, block.json_text = data, text
        if malformed == "json":
            block.json_text = text[: max(2, len(text) // 2)] + ', "": }'
            block.input = block.json_text
        used = _tokens(len(block.json_text))
        if used > max_tokens:
            # The API stops mid-call: the input never got past its opening.
            block.input, block.json_text = {}, ""
            return Reply([block], "max_tokens", max_tokens)
        return Reply([block], "tool_use", used)

    used = _tokens(len(answer.text))
    if used > max_tokens:
        return Reply(
            [Block("text", text=answer.text[: max_tokens * 4])],
            "max_tokens",
            max_tokens,
        )
    return Reply([Block("text", text=answer.text)], "end_turn", used)


def usage(use: CacheUse, output_tokens: int) -> dict[str, Any]:
    written = use.write_tokens
    one_hour = use.write_ttl == ONE_HOUR
    return {
        "input_tokens": use.input_tokens,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": use.read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0 if one_hour else written,
            "ephemeral_1h_input_tokens": written if one_hour else 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message(msg_id: str, model: str, reply: Reply, use: CacheUse) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [b.to_dict() for b in reply.blocks],
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": usage(use, reply.output_tokens),
    }


def stream_events(
    msg_id: str, model: str, reply: Reply, use: CacheUse
) -> list[tuple[str, dict[str, Any]]]:
    """The events of a streamed reply, in order, as (event name, data)."""
    start = message(msg_id, model, reply, use)
    start.update(content=[], stop_reason=None, usage=usage(use, 1))
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(reply.blocks):
        opening = block.to_dict()
        if block.type == "text":
            opening["text"] = ""
            pieces = _chunks(block.text, TEXT_CHUNK_CHARS)
            deltas = [{"type": "text_delta", "text": p} for p in pieces]
        else:
            opening["input"] = {}
            pieces = _chunks(block.json_text, JSON_CHUNK_CHARS)
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": opening,
                },
            )
        )
        events.extend(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
            for delta in deltas
        )
        events.append(
            ("content_block_stop", {"type": "content_block_stop", "index": index})
        )
    final_usage = usage(use, reply.output_tokens)
    final_usage.pop("cache_creation")
    final_usage.pop("service_tier")
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                "usage": final_usage,
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def _chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def error_body(
    status: int, message: str, error_type: str | None = None, request_id: str = ""
) -> dict[str, Any]:
    kind = error_type or ERROR_TYPES.get(status, "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": request_id,
    }
