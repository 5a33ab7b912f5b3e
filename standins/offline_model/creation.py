"""The creation rule: which creation tool the model calls, and with what.

The rule is written out in the package docstring (``offline_model/__init__``).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from shared.llm.prompts import (
    ASK_TOOL_NAME,
    PROPOSE_TOOL_NAME,
    REFUSE_TOOL_NAME,
    REQUEST_CLOSE,
    REQUEST_OPEN,
)
from shared.settings import DATA_TYPES
from standins.offline_model.reading import (
    between,
    clip,
    collapse,
    phrases,
    user_turns,
    without_phrases,
)

CREATION_TOOLS = (PROPOSE_TOOL_NAME, ASK_TOOL_NAME, REFUSE_TOOL_NAME)

UNSEEN_SOURCES: dict[str, str] = {
    "stock price": "stock prices",
    "share price": "share prices",
    "weather": "the weather",
    "linkedin": "LinkedIn",
    "twitter": "Twitter",
    "slack": "Slack",
    "whatsapp": "WhatsApp",
}

CONDITION_WORDS = re.compile(
    r"\b(when|whenever|if|every|each|any|anyone|mention\w*|say\w*|said|contain\w*"
    r"|talk\w*|discuss\w*|ask\w*|alert\w*|notif\w*|tell me|let me know|flag\w*"
    r"|watch\w*|track\w*|count\w*|how many)\b",
    re.IGNORECASE,
)
DATA_TYPE_WORDS: dict[str, re.Pattern[str]] = {
    "call_transcript": re.compile(r"\b(call|transcript|meeting)", re.IGNORECASE),
    "email": re.compile(r"\b(e-?mail|mail)", re.IGNORECASE),
    "salesforce": re.compile(
        r"\b(salesforce|opportunit|account|case|crm)", re.IGNORECASE
    ),
}
COUNTING_WORDS = re.compile(r"\b(count\w*|how many|times|every time)\b", re.IGNORECASE)
IMMEDIATE_WORDS = re.compile(r"\b(immediately|right away|at once)\b", re.IGNORECASE)

_NAME_MAX = 80
_DESCRIPTION_MAX = 1000


@dataclass(frozen=True)
class CreationReading:
    """What the creation rule reads from a conversation."""

    request: str
    answers: str
    phrases: tuple[str, ...]
    unseen: str | None
    is_condition: bool
    data_types: tuple[str, ...]
    named_data: bool
    counting: bool
    immediate: bool


def read_creation(body: dict[str, Any]) -> CreationReading:
    turns = user_turns(body, errors=False)
    first = turns[0] if turns else ""
    inner = between(first, REQUEST_OPEN, REQUEST_CLOSE)
    request = html.unescape(first if inner is None else inner).strip()
    answers = html.unescape("\n".join(turns[1:])).strip()

    request_phrases = phrases(request)
    answer_phrases = phrases(answers)
    outside = without_phrases(f"{request}\n{answers}")
    lowered = outside.lower()
    unseen = next((k for k in UNSEEN_SOURCES if k in lowered), None)
    named = tuple(t for t in DATA_TYPES if DATA_TYPE_WORDS[t].search(outside))
    return CreationReading(
        request=request,
        answers=answers,
        phrases=tuple(answer_phrases or request_phrases),
        unseen=unseen,
        is_condition=bool(
            request_phrases or answers or CONDITION_WORDS.search(outside)
        ),
        data_types=named or DATA_TYPES,
        named_data=bool(named),
        counting=bool(COUNTING_WORDS.search(outside)),
        immediate=bool(IMMEDIATE_WORDS.search(outside)),
    )


def creation_tool(reading: CreationReading, offered: list[str]) -> str | None:
    """Which creation tool the rules call, among those offered."""
    if REFUSE_TOOL_NAME in offered and (reading.unseen or not reading.is_condition):
        return REFUSE_TOOL_NAME
    if ASK_TOOL_NAME in offered and not reading.phrases and not reading.answers:
        return ASK_TOOL_NAME
    return next((t for t in CREATION_TOOLS if t in offered), None)


def refuse_input(reading: CreationReading) -> dict[str, Any]:
    if reading.unseen:
        reason = (
            f"Watchword cannot see {UNSEEN_SOURCES[reading.unseen]}: it reads only"
            " call transcripts, emails and Salesforce changes."
        )
    elif not reading.is_condition:
        reason = (
            "This is not a condition to watch for in communications, so it"
            " cannot be an alert."
        )
    else:
        reason = "The offline model was asked to refuse this request."
    return {"reason": reason}


def ask_input(reading: CreationReading) -> dict[str, Any]:
    questions = [
        "Which exact words or phrases should trigger this alert? Please put each"
        " one in double quotes."
    ]
    if not reading.named_data:
        questions.append(
            "Should it watch call transcripts, emails, Salesforce changes, or all"
            " three?"
        )
    return {"questions": questions}


def propose_input(reading: CreationReading) -> dict[str, Any]:
    request = collapse(reading.request)
    listed = ", ".join(f'"{p}"' for p in reading.phrases)
    if reading.phrases:
        instructions = (
            "Fire when the communication contains any of these phrases"
            f" (case-insensitive): {listed}."
        )
    else:
        instructions = f"Fire when the communication matches this request: {request}"
        if reading.answers:
            instructions += f" Clarified: {collapse(reading.answers)}"
    if reading.counting:
        instructions += " Add 1 to match_count each time it fires."

    description = request or "An alert proposed by the offline model."
    if reading.answers:
        description += f" Clarified: {collapse(reading.answers)}"
    fields: list[dict[str, Any]] = []
    if reading.counting:
        fields.append(
            {
                "name": "match_count",
                "type": "integer",
                "description": "How many matching communications so far.",
                "minimum": 0,
            }
        )
    return {
        "name": clip(request, _NAME_MAX) or clip(f"Alert on {listed}", _NAME_MAX),
        "description": clip(description, _DESCRIPTION_MAX),
        "data_types": list(reading.data_types),
        "instructions": instructions,
        "state_schema": {"fields": fields},
        "initial_state": {f["name"]: 0 for f in fields},
        "window_seconds": 0 if reading.immediate else None,
    }
