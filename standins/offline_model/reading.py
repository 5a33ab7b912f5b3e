"""Reading a Messages API request body: its texts, tools, tags and phrases.

``problem`` checks a body the way the API does before anything reads it.
"""

from __future__ import annotations

import re
from typing import Any

# Phrases: the text between straight double quotes, or between curly ones.
_PHRASE = re.compile(r"\"([^\"\n]+)\"|“([^”\n]+)”")


def content_texts(content: Any, errors: bool = True) -> list[str]:
    """The texts of a message's content: text blocks and tool_result contents.

    ``errors=False`` leaves out tool results marked ``is_error``: they are
    the caller's complaints about a tool call, not the user's words.
    """
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_result" and (
            errors or not block.get("is_error")
        ):
            texts.extend(content_texts(block.get("content", "")))
    return texts


def tool_names(body: dict[str, Any]) -> list[str]:
    tools = body.get("tools") or []
    return [
        t["name"]
        for t in tools
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    ]


def request_text(body: dict[str, Any]) -> str:
    """System, message and tool-name text joined: what scripts match against."""
    system = body.get("system")
    parts = content_texts(system) if system else []
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            parts.extend(content_texts(message.get("content")))
    parts.extend(tool_names(body))
    return "\n".join(parts)


def phrases(text: str) -> list[str]:
    """The substrings in double or curly quotes, in order, without repeats."""
    found = [a or b for a, b in _PHRASE.findall(text)]
    return list(dict.fromkeys(p for p in found if p.strip()))


def between(text: str, open_tag: str, close_tag: str) -> str | None:
    """The text between the first ``open_tag`` and the next ``close_tag``."""
    start = text.find(open_tag)
    if start < 0:
        return None
    start += len(open_tag)
    end = text.find(close_tag, start)
    inner = text[start:] if end < 0 else text[start:end]
    return inner.removeprefix("\n").removesuffix("\n")


def user_turns(body: dict[str, Any], errors: bool = True) -> list[str]:
    return [
        "\n".join(content_texts(m.get("content"), errors))
        for m in body.get("messages") or []
        if isinstance(m, dict) and m.get("role") == "user"
    ]


def collapse(text: str) -> str:
    return " ".join(text.split())


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 3]
    if " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut + "..."


def quote_list(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(f'"{clip(p, 60)}"' for p in items[:limit])
    more = len(items) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def without_phrases(text: str) -> str:
    """The text with every quoted phrase blanked out."""
    return _PHRASE.sub(" ", text)


def required_fields(body: dict[str, Any], name: str) -> list[str]:
    """The required input fields of the offered tool ``name``."""
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("name") == name:
            schema = tool.get("input_schema") or {}
            return list(schema.get("required") or [])
    return []


def problem(body: Any) -> str | None:
    """Why the API would reject this body, or None."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        return "max_tokens: Field required"
    if max_tokens < 1:
        return "max_tokens: must be at least 1"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for index, item in enumerate(messages):
        if not isinstance(item, dict) or item.get("role") not in ("user", "assistant"):
            return f"messages.{index}: role must be 'user' or 'assistant'"
        if not isinstance(item.get("content"), str | list):
            return f"messages.{index}.content: must be a string or a list of blocks"
    system = body.get("system")
    if system is not None and not (
        isinstance(system, str)
        or (isinstance(system, list) and all(isinstance(b, dict) for b in system))
    ):
        return "system: must be a string or a list of text blocks"
    if any(
        not isinstance(block, dict)
        for item in messages
        if isinstance(item["content"], list)
        for block in item["content"]
    ):
        return "messages: every content block must be an object"
    tools = body.get("tools")
    if tools is not None and (
        not isinstance(tools, list)
        or any(
            not isinstance(t, dict)
            or not isinstance(t.get("name"), str)
            or not isinstance(t.get("input_schema", {}), dict)
            for t in tools
        )
    ):
        return "tools: each tool needs a name and an object input_schema"
    choice = body.get("tool_choice")
    if choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind not in ("auto", "any", "tool", "none"):
            return "tool_choice.type: must be auto, any, tool or none"
        if kind == "tool" and choice.get("name") not in tool_names(body):
            return f"tool_choice: tool {choice.get('name')!r} is not among the tools"
        if kind in ("any", "tool") and not tools:
            return "tool_choice: requires tools"
    return None
