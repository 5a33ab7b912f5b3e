"""Alert creation against a scripted stand-in for the Anthropic client."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import anthropic
import httpx2
import pytest

from shared.errors import ModelAnswerInvalid, ModelUnavailable
from shared.llm import prompts
from shared.llm.creation import CreationTurn, create_from_prompt, draft_alert
from shared.settings import Settings

DEFINITION: dict[str, Any] = {
    "name": "Competitor evaluation",
    "description": "A customer says they are evaluating a competitor.",
    "data_types": ["call_transcript", "email"],
    "instructions": 'Fire when the customer says "evaluating a competitor".',
    "state_schema": {"fields": [{"name": "mentions", "type": "integer"}]},
}


def tool_call(
    name: str, tool_input: dict[str, Any], n: int = 1
) -> anthropic.types.Message:
    return anthropic.types.Message.model_validate(
        {
            "id": f"msg_{n}",
            "type": "message",
            "role": "assistant",
            "model": "fake",
            "content": [
                {"type": "text", "text": "Here is my answer."},
                {
                    "type": "tool_use",
                    "id": f"tu_{n}",
                    "name": name,
                    "input": tool_input,
                },
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 100, "output_tokens": 20},
        }
    )


def status_error(code: int, retry_after: str | None = None) -> anthropic.APIStatusError:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    request = httpx2.Request("POST", "http://model.invalid/v1/messages")
    response = httpx2.Response(code, headers=headers, request=request)
    return anthropic.APIStatusError(f"status {code}", response=response, body=None)


class FakeMessages:
    def __init__(self, answers: list[anthropic.types.Message | Exception]) -> None:
        self._answers = answers
        self.requests: list[dict[str, Any]] = []

    async def create(self, **request: Any) -> anthropic.types.Message:
        # A deep copy: the caller's list keeps growing after the call.
        self.requests.append(copy.deepcopy(request))
        answer = self._answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeClient:
    """Answers ``messages.create`` from a script, one entry per call."""

    def __init__(self, *answers: anthropic.types.Message | Exception) -> None:
        self.messages = FakeMessages(list(answers))


@pytest.fixture
def settings() -> Settings:
    return Settings(llm_max_attempts=2, llm_retry_after_cap_seconds=0.0)


def create(settings: Settings, client: FakeClient, prompt: str) -> CreationTurn:
    return asyncio.run(create_from_prompt(settings, client, prompt))  # type: ignore[arg-type]


def test_a_clear_request_becomes_a_ready_definition(settings: Settings) -> None:
    client = FakeClient(tool_call(prompts.PROPOSE_TOOL_NAME, DEFINITION))

    turn = create(
        settings, client, 'tell me when someone says "evaluating a competitor"'
    )

    assert turn.kind == "ready"
    assert turn.definition is not None
    assert turn.definition.name == "Competitor evaluation"
    assert turn.definition.initial_state == {"mentions": 0}
    assert turn.usage.input_tokens == 100
    assert [m["role"] for m in turn.messages] == ["user", "assistant"]
    request = client.messages.requests[0]
    assert request["model"] == settings.creation_model
    assert request["tool_choice"] == {"type": "any"}
    assert "evaluating a competitor" in request["messages"][0]["content"]


def test_an_ambiguous_request_gets_questions_and_the_dialogue_continues(
    settings: Settings,
) -> None:
    questions = ["Which competitors?", "Calls, emails or both?"]
    client = FakeClient(
        tool_call(prompts.ASK_TOOL_NAME, {"questions": questions}, n=1),
        tool_call(prompts.PROPOSE_TOOL_NAME, DEFINITION, n=2),
    )

    turn = create(settings, client, "tell me about competitors")
    assert turn.kind == "questions"
    assert turn.questions == questions
    assert turn.definition is None

    follow_up = turn.answer("Acme and Globex, on calls.")
    second = asyncio.run(draft_alert(settings, client, follow_up))  # type: ignore[arg-type]

    assert second.kind == "ready"
    sent = client.messages.requests[1]["messages"]
    assert sent[-1]["content"] == [
        {
            "type": "tool_result",
            "tool_use_id": "tu_1",
            "content": "Acme and Globex, on calls.",
        }
    ]
    assert len(second.messages) == 4


def test_a_ready_definition_can_be_revised_in_the_same_dialogue(
    settings: Settings,
) -> None:
    emails_only = {**DEFINITION, "data_types": ["email"]}
    client = FakeClient(
        tool_call(prompts.PROPOSE_TOOL_NAME, DEFINITION, n=1),
        tool_call(prompts.PROPOSE_TOOL_NAME, emails_only, n=2),
    )

    turn = create(settings, client, 'when they say "evaluating a competitor"')
    follow_up = turn.answer("Emails only, please.")
    revised = asyncio.run(draft_alert(settings, client, follow_up))  # type: ignore[arg-type]

    assert revised.definition is not None
    assert revised.definition.data_types == ["email"]
    [result] = follow_up[-1]["content"]
    assert (result["tool_use_id"], result["content"]) == (
        "tu_1",
        "Emails only, please.",
    )


def test_a_request_that_is_no_alert_is_refused_with_the_models_reason(
    settings: Settings,
) -> None:
    reason = "Watchword does not see calendar data."
    client = FakeClient(tool_call(prompts.REFUSE_TOOL_NAME, {"reason": reason}))

    turn = create(settings, client, "alert me when my calendar is full")

    assert turn.kind == "refused"
    assert turn.reason == reason
    with pytest.raises(ValueError, match="asks nothing"):
        turn.answer("anything")


def test_a_proposal_that_breaks_the_limits_is_repaired_once(
    settings: Settings,
) -> None:
    too_many = {
        **DEFINITION,
        "state_schema": {
            "fields": [{"name": f"f{i}", "type": "integer"} for i in range(9)]
        },
    }
    client = FakeClient(
        tool_call(prompts.PROPOSE_TOOL_NAME, too_many, n=1),
        tool_call(prompts.PROPOSE_TOOL_NAME, DEFINITION, n=2),
    )

    turn = create(settings, client, "count nine different things")

    assert turn.kind == "ready"
    assert turn.usage.input_tokens == 200
    repair = client.messages.requests[1]["messages"][-1]
    assert repair["role"] == "user"
    [result] = repair["content"]
    assert result["tool_use_id"] == "tu_1"
    assert result["is_error"] is True
    assert "state_schema.fields" in result["content"]
    assert [m["role"] for m in turn.messages] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]


def test_an_initial_state_outside_the_schema_is_repaired(settings: Settings) -> None:
    stray = {**DEFINITION, "initial_state": {"mentions": 0, "extra": 1}}
    client = FakeClient(
        tool_call(prompts.PROPOSE_TOOL_NAME, stray, n=1),
        tool_call(prompts.PROPOSE_TOOL_NAME, DEFINITION, n=2),
    )

    turn = create(settings, client, "count mentions")

    assert turn.kind == "ready"
    [result] = client.messages.requests[1]["messages"][-1]["content"]
    assert "unknown state fields: ['extra']" in result["content"]


def test_a_proposal_that_breaks_the_limits_twice_is_refused_with_the_violation(
    settings: Settings,
) -> None:
    no_types = {**DEFINITION, "data_types": ["fax"]}
    client = FakeClient(
        tool_call(prompts.PROPOSE_TOOL_NAME, no_types, n=1),
        tool_call(prompts.PROPOSE_TOOL_NAME, no_types, n=2),
    )

    turn = create(settings, client, "alert me on faxes")

    assert turn.kind == "refused"
    assert "data_types" in turn.reason
    assert "fax" not in turn.reason  # the violation, without the input
    assert len(client.messages.requests) == 2


def test_invalid_questions_twice_are_a_model_error(settings: Settings) -> None:
    client = FakeClient(
        tool_call(prompts.ASK_TOOL_NAME, {"questions": []}, n=1),
        tool_call(prompts.ASK_TOOL_NAME, {"questions": ["a", "b", "c", "d"]}, n=2),
    )

    with pytest.raises(ModelAnswerInvalid, match="ask_clarifying_questions"):
        create(settings, client, "hm")


def test_an_answer_without_a_tool_call_is_a_model_error(settings: Settings) -> None:
    text_only = tool_call(prompts.PROPOSE_TOOL_NAME, {})
    text_only.content = text_only.content[:1]
    client = FakeClient(text_only)

    with pytest.raises(ModelAnswerInvalid, match="without a creation tool"):
        create(settings, client, "hello")


def test_an_overloaded_model_is_retried(settings: Settings) -> None:
    client = FakeClient(
        status_error(529, retry_after="0"),
        tool_call(prompts.PROPOSE_TOOL_NAME, DEFINITION),
    )

    turn = create(settings, client, 'when they say "pilot"')

    assert turn.kind == "ready"
    assert len(client.messages.requests) == 2


def test_a_model_that_stays_down_is_unavailable(settings: Settings) -> None:
    client = FakeClient(
        status_error(503, retry_after="0"), status_error(503, retry_after="0")
    )

    with pytest.raises(ModelUnavailable):
        create(settings, client, 'when they say "pilot"')


def test_a_rejected_request_is_not_retried(settings: Settings) -> None:
    client = FakeClient(status_error(400))

    with pytest.raises(anthropic.APIStatusError):
        create(settings, client, 'when they say "pilot"')
    assert len(client.messages.requests) == 1
