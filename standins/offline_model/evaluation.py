"""The evaluation rule: does the alert fire, why, and its new state.

The rule is written out in the package docstring (``offline_model/__init__``).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from shared.llm.prompts import (
    ALERT_CLOSE,
    ALERT_OPEN,
    COMMUNICATION_CLOSE,
    COMMUNICATION_OPEN,
)
from standins.offline_model.reading import between, phrases, quote_list, user_turns

_SNIPPET_MAX = 200
_SNIPPET_CONTEXT = 60
_EVIDENCE_MAX = 3


def read_evaluation(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The communication text and the alert, unescaped, from the user turns."""
    text = "\n".join(user_turns(body))
    communication = between(text, COMMUNICATION_OPEN, COMMUNICATION_CLOSE) or ""
    alert_json = between(text, ALERT_OPEN, ALERT_CLOSE) or ""
    try:
        alert = json.loads(html.unescape(alert_json))
    except ValueError:
        alert = {}
    return html.unescape(communication), alert if isinstance(alert, dict) else {}


def evaluate(communication: str, alert: dict[str, Any]) -> dict[str, Any]:
    """The record_evaluation input for one communication and one alert."""
    instructions = alert.get("instructions")
    wanted = phrases(instructions) if isinstance(instructions, str) else []
    state = alert.get("current_state")
    new_state = dict(state) if isinstance(state, dict) else {}

    found = [
        phrase
        for phrase in wanted
        if re.search(re.escape(phrase), communication, re.IGNORECASE)
    ]
    if not wanted:
        reason = "The instructions quote no phrase to look for, so nothing matched."
    elif found:
        reason = f"The communication contains {quote_list(found)}."
    else:
        reason = f"None of {quote_list(wanted)} appears in the communication."
    if found:
        _count(new_state, alert.get("state_schema"))
    return {
        "fired": bool(found),
        "reason": reason,
        "evidence": evidence(communication, wanted),
        "new_state": new_state,
    }


def evidence(text: str, wanted: list[str]) -> list[str]:
    """Up to three verbatim snippets around the earliest matches, not overlapping."""
    spans = sorted(
        (m.start(), m.end())
        for phrase in wanted
        for m in re.finditer(re.escape(phrase), text, re.IGNORECASE)
    )
    snippets: list[str] = []
    covered = 0
    for start, end in spans:
        if start < covered:
            continue
        low, high = _snippet_bounds(text, start, end, covered)
        snippet = text[low:high].strip()
        if snippet:
            snippets.append(snippet)
        covered = high
        if len(snippets) == _EVIDENCE_MAX:
            break
    return snippets


def _snippet_bounds(text: str, start: int, end: int, floor: int) -> tuple[int, int]:
    """A window of at most 200 characters around [start, end), from ``floor`` on."""
    if end - start >= _SNIPPET_MAX:
        return start, start + _SNIPPET_MAX
    spare = _SNIPPET_MAX - (end - start)
    before = min(_SNIPPET_CONTEXT, spare // 2)
    low = max(floor, start - before)
    high = min(len(text), end + min(_SNIPPET_CONTEXT, spare - (start - low)))
    # Snap to whole words where the context allows, so snippets read cleanly.
    if low > floor and not text[low - 1].isspace():
        space = text.find(" ", low, start)
        low = space + 1 if space >= 0 else low
    if high < len(text) and not text[high].isspace():
        space = text.rfind(" ", end, high)
        high = space if space >= 0 else high
    return low, high


def _count(state: dict[str, Any], schema: Any) -> None:
    """Raise the schema's first integer field by one, not past its maximum."""
    fields = schema.get("fields") if isinstance(schema, dict) else None
    field: dict[str, Any] = next(
        (f for f in fields or [] if isinstance(f, dict) and f.get("type") == "integer"),
        {},
    )
    name = field.get("name")
    if not isinstance(name, str):
        return
    value = state.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        value = int(field.get("minimum") or 0)
    raised = int(value) + 1
    maximum = field.get("maximum")
    if isinstance(maximum, int | float):
        raised = min(raised, int(maximum))
    state[name] = raised
