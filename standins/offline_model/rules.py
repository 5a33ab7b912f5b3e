"""The offline model's decisions: pure functions of a request body.

The rules are written out in the package docstring (``offline_model/__init__``).
This module picks which rule applies and honours ``tool_choice``; the rules
themselves live in ``creation.py`` and ``evaluation.py``. Nothing here does I/O
or keeps state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.llm.prompts import ASK_TOOL_NAME, EVALUATION_TOOL_NAME, PROPOSE_TOOL_NAME
from standins.offline_model.creation import (
    CREATION_TOOLS,
    ask_input,
    creation_tool,
    propose_input,
    read_creation,
    refuse_input,
)
from standins.offline_model.evaluation import evaluate, read_evaluation
from standins.offline_model.reading import tool_names


@dataclass(frozen=True)
class ToolCall:
    """The model calls ``name`` with ``input``."""

    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class TextAnswer:
    """The model answers in words."""

    text: str


Answer = ToolCall | TextAnswer


def answer(body: dict[str, Any]) -> Answer:
    """What the offline model answers to a Messages API request body."""
    offered = tool_names(body)
    choice = body.get("tool_choice") or {"type": "auto"}
    if not offered or choice.get("type") == "none":
        return TextAnswer(text_answer(body))
    if choice.get("type") == "tool" and isinstance(choice.get("name"), str):
        return ToolCall(choice["name"], tool_input(choice["name"], body))

    chosen: str | None = None
    if EVALUATION_TOOL_NAME in offered:
        chosen = EVALUATION_TOOL_NAME
    elif any(name in offered for name in CREATION_TOOLS):
        chosen = creation_tool(read_creation(body), offered)
    elif choice.get("type") == "any":
        chosen = offered[0]
    if chosen is None:
        return TextAnswer(text_answer(body))
    return ToolCall(chosen, tool_input(chosen, body))


def tool_input(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The input the rules give tool ``name`` for this request."""
    if name == EVALUATION_TOOL_NAME:
        communication, alert = read_evaluation(body)
        return evaluate(communication, alert)
    if name in CREATION_TOOLS:
        reading = read_creation(body)
        if name == PROPOSE_TOOL_NAME:
            return propose_input(reading)
        if name == ASK_TOOL_NAME:
            return ask_input(reading)
        return refuse_input(reading)
    schema = next(
        (
            t.get("input_schema")
            for t in body.get("tools") or []
            if isinstance(t, dict) and t.get("name") == name
        ),
        None,
    )
    filled = fill_schema(schema or {})
    return filled if isinstance(filled, dict) else {}


def text_answer(body: dict[str, Any]) -> str:
    offered = tool_names(body)
    count = len(body.get("messages") or [])
    if offered:
        return (
            "Offline model: I have no rule for the offered tools"
            f" ({', '.join(offered)}), so I answer in words."
        )
    return (
        "Offline model: I only answer Watchword's evaluation and creation"
        f" requests; this one had {count} message(s) and no tool to call."
    )


def fill_schema(schema: dict[str, Any]) -> Any:
    """The simplest value a JSON schema allows: required properties only."""
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {
            key: fill_schema(properties.get(key) or {})
            for key in schema.get("required") or []
        }
    defaults = {"string": "", "integer": 0, "number": 0, "boolean": False}
    return [] if kind == "array" else defaults.get(kind)
