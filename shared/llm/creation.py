"""Alert creation: one turn of the dialogue that turns a request into a definition.

The model must call one of three tools (see ``shared.llm.prompts``):

- ``propose_alert``: its input is validated into an ``AlertDefinition``. When it
  breaks the schema limits, the violation goes back to the model once, as an
  error ``tool_result``, and the model answers again; a second violation ends
  the turn as a refusal that names the limit;
- ``ask_clarifying_questions``: at most three questions for the user;
- ``refuse_alert``: the reason it cannot be an alert.

A ``CreationTurn`` carries the whole message list, the model's answer included,
so that a dialogue continues from it: ``turn.answer(text)`` (or ``with_reply``
on stored messages) gives the messages of the next turn once the user has
answered the questions, or asked for a change to a ready definition.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import anthropic
from pydantic import BaseModel, Field, ValidationError, model_validator

from shared.errors import ModelAnswerInvalid, StateViolation
from shared.llm import prompts
from shared.llm.client import retrying, translate
from shared.models.alerts import AlertDefinition
from shared.models.evaluation import Usage
from shared.settings import Settings

logger = logging.getLogger(__name__)

Message = dict[str, Any]
Question = Annotated[str, Field(min_length=1, max_length=500)]


class _Questions(BaseModel):
    questions: Annotated[list[Question], Field(min_length=1, max_length=3)]


class _Refusal(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=1_000)]


class CreationTurn(BaseModel):
    """The outcome of one creation turn, and the dialogue so far."""

    kind: Literal["ready", "questions", "refused"]
    definition: AlertDefinition | None = None
    questions: list[str] = []
    reason: str = ""
    messages: list[Message]
    usage: Usage = Usage()

    @model_validator(mode="after")
    def _one_answer(self) -> CreationTurn:
        if (self.kind == "ready") != (self.definition is not None):
            raise ValueError("a ready turn, and only that, carries a definition")
        if self.kind == "questions" and not self.questions:
            raise ValueError("a questions turn needs questions")
        if self.kind == "refused" and not self.reason:
            raise ValueError("a refused turn needs a reason")
        return self

    def answer(self, text: str) -> list[Message]:
        """The messages of the next turn, with the user's reply.

        A reply answers the questions of a ``questions`` turn, or asks for a
        change to the definition of a ``ready`` one; a refusal ends the dialogue.
        """
        if self.kind == "refused":
            raise ValueError("a refused turn asks nothing to answer")
        return with_reply(self.messages, text)


def with_reply(messages: list[Message], text: str) -> list[Message]:
    """The dialogue with the user's reply to the model's last tool call."""
    return [*messages, _tool_result(_last_tool_use_id(messages), text)]


async def create_from_prompt(
    settings: Settings,
    client: anthropic.AsyncAnthropic,
    prompt: str,
    context_passages: Sequence[str] = (),
) -> CreationTurn:
    """The first turn of a creation dialogue, from the user's request."""
    first = prompts.creation_first_turn(prompt, list(context_passages))
    return await draft_alert(settings, client, [{"role": "user", "content": first}])


async def draft_alert(
    settings: Settings,
    client: anthropic.AsyncAnthropic,
    messages: list[Message],
) -> CreationTurn:
    """Ask the model for the next answer of a creation dialogue.

    Raises ``ModelUnavailable`` or ``SpendingLimit`` when the model cannot be
    reached, and ``ModelAnswerInvalid`` when it answers without one of the
    creation tools or asks or refuses with an invalid input even after the
    repair.
    """
    messages = list(messages)
    usage = Usage()
    repaired = False
    while True:
        response = await _call(settings, client, messages)
        usage = usage + _usage(response)
        messages.append({"role": "assistant", "content": _content(response)})
        tool = _tool_use(response)
        try:
            return _turn(tool, messages, usage)
        except ValidationError as err:
            violation = _describe(err)
        except StateViolation as err:
            # AlertDefinition checks initial_state against the schema with
            # StateViolation, which pydantic lets through unwrapped.
            violation = f"initial_state: {err}"
        if repaired:
            if tool.name != prompts.PROPOSE_TOOL_NAME:
                raise ModelAnswerInvalid(
                    f"{tool.name} input invalid twice: {violation}"
                )
            # The model keeps proposing what the limits forbid: the request
            # itself asks for too much, which the user should hear.
            logger.info("alert proposal broke the limits twice; refusing")
            reason = f"The alert does not fit Watchword's limits: {violation}"
            return CreationTurn(
                kind="refused", reason=reason, messages=messages, usage=usage
            )

        # One repair: the model sees exactly what broke and may fix it, ask or
        # refuse.
        repaired = True
        messages.append(
            _tool_result(
                tool.id,
                f"Invalid {tool.name} input: {violation}. Call one of the tools"
                " again with this fixed.",
                is_error=True,
            )
        )


async def _call(
    settings: Settings, client: anthropic.AsyncAnthropic, messages: list[Message]
) -> anthropic.types.Message:
    request = prompts.creation_request(settings.creation_model, messages)
    try:
        async for attempt in retrying(settings):
            with attempt:
                return await client.messages.create(**request)
    except anthropic.APIError as err:
        mapped = translate(err)
        if mapped is err:
            raise
        raise mapped from err
    raise AssertionError("unreachable: tenacity reraises the last error")


def _turn(
    tool: anthropic.types.ToolUseBlock, messages: list[Message], usage: Usage
) -> CreationTurn:
    """The turn a tool call stands for; ValidationError or StateViolation if bad."""
    match tool.name:
        case prompts.PROPOSE_TOOL_NAME:
            definition = AlertDefinition.model_validate(tool.input)
            return CreationTurn(
                kind="ready", definition=definition, messages=messages, usage=usage
            )
        case prompts.ASK_TOOL_NAME:
            questions = _Questions.model_validate(tool.input).questions
            return CreationTurn(
                kind="questions", questions=questions, messages=messages, usage=usage
            )
        case prompts.REFUSE_TOOL_NAME:
            reason = _Refusal.model_validate(tool.input).reason
            return CreationTurn(
                kind="refused", reason=reason, messages=messages, usage=usage
            )
    raise ModelAnswerInvalid(f"the model called an unknown tool {tool.name!r}")


def _tool_use(response: anthropic.types.Message) -> anthropic.types.ToolUseBlock:
    for block in response.content:
        if block.type == "tool_use":
            return block
    raise ModelAnswerInvalid(
        f"the model answered without a creation tool (stop={response.stop_reason})"
    )


def _content(response: anthropic.types.Message) -> list[dict[str, Any]]:
    """The answer as request blocks: only the text and tool calls, JSON-ready."""
    blocks: list[dict[str, Any]] = []
    for block in response.content:
        if block.type == "text":
            blocks.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            blocks.append(
                {
                    "type": "tool_use",
                    "id": block.id,
                    "name": block.name,
                    "input": block.input,
                }
            )
    return blocks


def _tool_result(tool_use_id: str, text: str, is_error: bool = False) -> Message:
    result: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": tool_use_id,
        "content": text,
    }
    if is_error:
        result["is_error"] = True
    return {"role": "user", "content": [result]}


def _last_tool_use_id(messages: list[Message]) -> str:
    content = messages[-1]["content"] if messages else []
    for block in content if isinstance(content, list) else []:
        if block.get("type") == "tool_use":
            return str(block["id"])
    raise ValueError("the dialogue does not end with a tool call")


def _describe(error: ValidationError) -> str:
    # Without the input: it echoes the model's (and so the user's) text.
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "input"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _usage(response: anthropic.types.Message) -> Usage:
    used = response.usage
    return Usage(
        input_tokens=used.input_tokens,
        output_tokens=used.output_tokens,
        cache_creation_input_tokens=used.cache_creation_input_tokens or 0,
        cache_read_input_tokens=used.cache_read_input_tokens or 0,
    )
