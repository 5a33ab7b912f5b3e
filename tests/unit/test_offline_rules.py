"""The offline model's pure parts: its rules, prompt cache, replies and scripts.

Requests are built with ``shared.llm.prompts`` so that the rules are tested
against the real prompt contract; the cache runs on a fake clock.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from shared.llm.prompts import (
    ASK_TOOL_NAME,
    EVALUATION_TOOL_NAME,
    PROPOSE_TOOL_NAME,
    REFUSE_TOOL_NAME,
    creation_first_turn,
    creation_request,
    evaluation_request,
    prefix_tokens_estimate,
)
from shared.models.alerts import AlertDefinition
from shared.models.evaluation import ModelVerdict
from standins.offline_model.cache import CacheUse, PromptCache, layout
from standins.offline_model.config import ModelConfig, latency, random_fault
from standins.offline_model.rules import TextAnswer, ToolCall, answer
from standins.offline_model.script import Script, ScriptBook, ScriptedResponse
from standins.offline_model.wire import build_reply, stream_events

MODEL = "claude-sonnet-4-5"
COUNTER = {"fields": [{"name": "match_count", "type": "integer", "minimum": 0}]}


# --- helpers ----------------------------------------------------------------


def creation(prompt: str, *answers: str) -> dict[str, Any]:
    """A creation request; each answer follows a question, as a tool result."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": creation_first_turn(prompt, ["Acme is a rival."])}
    ]
    for number, reply in enumerate(answers):
        call_id = f"toolu_{number}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": call_id,
                        "name": ASK_TOOL_NAME,
                        "input": {"questions": ["Which words?"]},
                    }
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call_id, "content": reply}
                ],
            }
        )
    return creation_request(MODEL, messages)


def call(body: dict[str, Any]) -> ToolCall:
    said = answer(body)
    assert isinstance(said, ToolCall)
    return said


def evaluation(
    text: str,
    instructions: str,
    state: dict[str, Any] | None = None,
    schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return evaluation_request(
        MODEL, text, "alert-1", instructions, state or {}, schema or {"fields": []}
    )


def phrase_instructions(*phrases: str) -> str:
    listed = ", ".join(f'"{p}"' for p in phrases)
    return f"Fire when the communication contains any of these phrases: {listed}."


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def long_text(tag: str, chars: int = 6000) -> str:
    sentence = f"{tag}: the customer talked about renewal terms and seat counts. "
    return (sentence * (chars // len(sentence) + 1))[:chars]


# --- creation -----------------------------------------------------------------


def test_a_request_with_quoted_phrases_is_proposed_with_the_phrases_verbatim() -> None:
    said = call(creation('Tell me when anyone says "budget freeze" or "Q3 cuts"'))

    assert said.name == PROPOSE_TOOL_NAME
    assert said.input["instructions"] == (
        "Fire when the communication contains any of these phrases"
        ' (case-insensitive): "budget freeze", "Q3 cuts".'
    )


def test_curly_quotes_count_as_phrases() -> None:
    said = call(creation("Alert me when an email mentions “switching vendors”"))

    assert said.name == PROPOSE_TOOL_NAME
    assert '"switching vendors"' in said.input["instructions"]


def test_a_proposal_is_a_valid_alert_definition() -> None:
    said = call(creation('Count every call where "discount" comes up, immediately'))

    definition = AlertDefinition(**said.input)

    assert definition.state_schema.counter_field() == "match_count"
    assert definition.initial_state == {"match_count": 0}
    assert definition.window_seconds == 0


def test_a_request_without_phrases_gets_clarifying_questions() -> None:
    said = call(creation("Alert me when deals look risky"))

    assert said.name == ASK_TOOL_NAME
    assert 1 <= len(said.input["questions"]) <= 3
    assert "double quotes" in said.input["questions"][0]
    assert any("emails" in q for q in said.input["questions"])


def test_questions_leave_out_the_data_question_when_a_data_type_is_named() -> None:
    said = call(creation("Alert me when an email sounds unhappy"))

    assert said.name == ASK_TOOL_NAME
    assert len(said.input["questions"]) == 1


@pytest.mark.parametrize(
    ("prompt", "source"),
    [
        ('Alert me when our stock price falls and a call says "sell"', "stock prices"),
        ("Tell me when the weather in Boston turns bad", "the weather"),
        ('Notify me when a prospect posts "hiring" on LinkedIn', "LinkedIn"),
        ("Alert me when anyone in Slack mentions churn", "Slack"),
    ],
)
def test_a_request_for_data_watchword_cannot_see_is_refused(
    prompt: str, source: str
) -> None:
    said = call(creation(prompt))

    assert said.name == REFUSE_TOOL_NAME
    assert source in said.input["reason"]


def test_a_request_that_is_no_condition_is_refused() -> None:
    said = call(creation("Write me a poem about our quarterly numbers"))

    assert said.name == REFUSE_TOOL_NAME
    assert "not a condition" in said.input["reason"]


def test_a_source_keyword_inside_quotes_is_a_phrase_and_not_a_refusal() -> None:
    said = call(creation('Tell me when an email says "we moved to Slack"'))

    assert said.name == PROPOSE_TOOL_NAME
    assert '"we moved to Slack"' in said.input["instructions"]


def test_answers_with_quoted_phrases_replace_the_phrases_of_the_request() -> None:
    said = call(creation('Alert on "risk" in calls', 'Use "at risk" and "churn" only'))

    assert said.name == PROPOSE_TOOL_NAME
    assert said.input["instructions"].endswith('"at risk", "churn".')
    assert '"risk",' not in said.input["instructions"]
    assert "Clarified:" in said.input["description"]


def test_an_error_tool_result_is_not_an_answer() -> None:
    body = creation('Alert on "risk" in calls')
    proposed = call(body)
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": proposed.name}
    body["messages"] += [
        {"role": "assistant", "content": [tool_use | {"input": proposed.input}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "is_error": True,
                    "content": 'Invalid input: "name" is too long.',
                }
            ],
        },
    ]

    said = call(body)

    assert said.input["instructions"].endswith('(case-insensitive): "risk".')
    assert "Clarified" not in said.input["description"]


def test_answers_without_phrases_lead_to_a_proposal_restating_the_request() -> None:
    said = call(creation("Alert me when deals look risky", "Mostly in emails"))

    assert said.name == PROPOSE_TOOL_NAME
    assert said.input["instructions"].startswith(
        "Fire when the communication matches this request: Alert me when deals"
    )
    assert said.input["data_types"] == ["email"]


@pytest.mark.parametrize(
    ("prompt", "data_types"),
    [
        ('When a call transcript says "pilot"', ["call_transcript"]),
        ('When a meeting or an e-mail says "pilot"', ["call_transcript", "email"]),
        ('When an opportunity note says "pilot"', ["salesforce"]),
        ('When a CRM case says "pilot"', ["salesforce"]),
        ('When anyone says "pilot"', ["call_transcript", "email", "salesforce"]),
        ('When anyone says "call me"', ["call_transcript", "email", "salesforce"]),
    ],
)
def test_data_types_follow_keywords_outside_the_phrases(
    prompt: str, data_types: list[str]
) -> None:
    assert call(creation(prompt)).input["data_types"] == data_types


@pytest.mark.parametrize(
    ("prompt", "counting"),
    [
        ('Count the emails that say "refund"', True),
        ('Tell me how many calls mention "refund"', True),
        ('Alert me every time a call says "refund"', True),
        ('Alert me when an account says "refund"', False),
    ],
)
def test_requests_about_counting_get_one_integer_field(
    prompt: str, counting: bool
) -> None:
    fields = call(creation(prompt)).input["state_schema"]["fields"]

    assert fields == (
        [
            {
                "name": "match_count",
                "type": "integer",
                "description": "How many matching communications so far.",
                "minimum": 0,
            }
        ]
        if counting
        else []
    )


@pytest.mark.parametrize(
    ("words", "window"),
    [("immediately", 0), ("right away", 0), ("at once", 0), ("in a digest", None)],
)
def test_asking_for_speed_sets_a_zero_window_and_otherwise_null(
    words: str, window: int | None
) -> None:
    said = call(creation(f'Tell me {words} when a call says "cancel"'))

    assert said.input["window_seconds"] == window


def test_the_name_is_the_request_cut_to_80_characters() -> None:
    prompt = 'Tell me when "renewal" comes up ' + "in any conversation at all " * 5

    name = call(creation(prompt)).input["name"]

    assert len(name) <= 80
    assert name.startswith('Tell me when "renewal" comes up in any')


def test_the_request_is_read_html_unescaped() -> None:
    said = call(creation('Alert me when a call says "R&D <budget>"'))

    assert '"R&D <budget>"' in said.input["instructions"]


def test_a_forced_proposal_proposes_even_what_would_be_refused() -> None:
    body = creation("Tell me the weather")
    body["tool_choice"] = {"type": "tool", "name": PROPOSE_TOOL_NAME}

    assert call(body).name == PROPOSE_TOOL_NAME


# --- evaluation ---------------------------------------------------------------


def test_evaluation_fires_when_a_phrase_occurs_ignoring_case() -> None:
    body = evaluation(
        "Buyer: we face a BUDGET Freeze.", phrase_instructions("budget freeze")
    )

    said = call(body)

    assert said.name == EVALUATION_TOOL_NAME
    assert said.input["fired"] is True
    assert said.input["reason"] == 'The communication contains "budget freeze".'
    assert said.input["evidence"] == ["Buyer: we face a BUDGET Freeze."]


def test_evaluation_does_not_fire_and_keeps_the_state_without_a_phrase() -> None:
    body = evaluation(
        "Buyer: all good here.",
        phrase_instructions("budget freeze", "churn"),
        {"match_count": 4},
        COUNTER,
    )

    verdict = call(body).input

    assert verdict == {
        "fired": False,
        "reason": 'None of "budget freeze", "churn" appears in the communication.',
        "evidence": [],
        "new_state": {"match_count": 4},
    }


def test_firing_raises_the_first_integer_field_by_one() -> None:
    schema = {
        "fields": [
            {"name": "last_seen", "type": "string"},
            {"name": "hits", "type": "integer"},
            {"name": "misses", "type": "integer"},
        ]
    }
    state = {"last_seen": "x", "hits": 2, "misses": 7}

    verdict = call(evaluation("churn", phrase_instructions("churn"), state, schema))

    assert verdict.input["new_state"] == {"last_seen": "x", "hits": 3, "misses": 7}


def test_the_counter_stops_at_its_maximum() -> None:
    schema = {"fields": [{"name": "hits", "type": "integer", "maximum": 3}]}

    verdict = call(
        evaluation("churn", phrase_instructions("churn"), {"hits": 3}, schema)
    )

    assert verdict.input["new_state"] == {"hits": 3}


def test_a_verdict_is_a_valid_model_verdict() -> None:
    body = evaluation(
        "churn " * 400, phrase_instructions("churn"), {"match_count": 0}, COUNTER
    )

    verdict = ModelVerdict(**call(body).input)

    assert verdict.fired and verdict.new_state == {"match_count": 1}


def test_evidence_is_at_most_three_short_verbatim_snippets() -> None:
    text = " ".join(
        f"Sentence {i} has filler words before churn and after." for i in range(40)
    )

    snippets = call(evaluation(text, phrase_instructions("churn"))).input["evidence"]

    assert len(snippets) == 3
    for snippet in snippets:
        assert len(snippet) <= 200
        assert snippet in text
        assert "churn" in snippet
    assert text.index(snippets[0]) < text.index(snippets[1]) < text.index(snippets[2])


def test_the_communication_and_alert_are_read_html_unescaped() -> None:
    body = evaluation("Note: <b>R&D</b> is cut.", phrase_instructions("<b>R&D</b>"))

    verdict = call(body).input

    assert verdict["fired"] is True
    assert verdict["evidence"] == ["Note: <b>R&D</b> is cut."]


def test_instructions_that_quote_no_phrase_never_fire() -> None:
    verdict = call(evaluation("anything at all", "Fire on bad news.")).input

    assert verdict["fired"] is False
    assert "quote no phrase" in verdict["reason"]


# --- tool choice and other requests -------------------------------------------


def test_a_forced_tool_without_a_rule_gets_the_simplest_input_its_schema_allows() -> (
    None
):
    tool = {
        "name": "grade",
        "input_schema": {
            "type": "object",
            "properties": {
                "score": {"type": "integer"},
                "label": {"enum": ["good", "bad"]},
                "notes": {"type": ["string", "null"]},
                "tags": {"type": "array"},
                "extra": {"type": "string"},
            },
            "required": ["score", "label", "notes", "tags"],
        },
    }
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "tools": [tool],
        "tool_choice": {"type": "tool", "name": "grade"},
        "messages": [{"role": "user", "content": "grade this"}],
    }

    assert answer(body) == ToolCall(
        "grade", {"score": 0, "label": "good", "notes": "", "tags": []}
    )


def test_no_tools_or_tool_choice_none_get_a_text_answer() -> None:
    plain = {
        "model": MODEL,
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    declined = evaluation("churn", phrase_instructions("churn")) | {
        "tool_choice": {"type": "none"}
    }

    assert isinstance(answer(plain), TextAnswer)
    assert isinstance(answer(declined), TextAnswer)


def test_tool_choice_any_with_unknown_tools_calls_the_first_one() -> None:
    body = {
        "model": MODEL,
        "max_tokens": 10,
        "tools": [{"name": "a", "input_schema": {"type": "object"}}, {"name": "b"}],
        "tool_choice": {"type": "any"},
        "messages": [{"role": "user", "content": "hi"}],
    }

    assert answer(body) == ToolCall("a", {})


# --- prompt cache ---------------------------------------------------------------


def test_the_token_estimate_is_the_prompts_prefix_estimate_rounded_up() -> None:
    text = long_text("estimate")
    body = evaluation(text, phrase_instructions("x"))

    (point,) = layout(body).breakpoints

    assert point.tokens - prefix_tokens_estimate(text) in (0, 1)
    assert layout(body).total_tokens > point.tokens


def test_a_prefix_becomes_readable_only_when_the_writing_response_begins() -> None:
    clock = FakeClock()
    cache = PromptCache(1024, clock)
    request = layout(evaluation(long_text("begin"), phrase_instructions("x")))
    prefix = request.breakpoints[0].tokens

    first = cache.plan(MODEL, request)
    early = cache.plan(MODEL, request)
    cache.begin(first)
    clock.now += 1
    late = cache.plan(MODEL, request)

    assert (first.write_tokens, first.read_tokens) == (prefix, 0)
    assert (early.write_tokens, early.read_tokens) == (prefix, 0)
    assert (late.write_tokens, late.read_tokens) == (0, prefix)


def test_input_tokens_are_what_is_neither_read_nor_written() -> None:
    cache = PromptCache(1024, FakeClock())
    request = layout(evaluation(long_text("split"), phrase_instructions("x")))

    use = cache.plan(MODEL, request)

    assert use.input_tokens + use.write_tokens + use.read_tokens == request.total_tokens
    assert use.input_tokens == request.total_tokens - request.breakpoints[0].tokens


def test_a_prefix_under_the_minimum_is_never_cached() -> None:
    cache = PromptCache(1024, FakeClock())
    request = layout(evaluation("short", phrase_instructions("x")))
    assert request.breakpoints[0].tokens < 1024

    for _ in range(2):
        use = cache.plan(MODEL, request)
        cache.begin(use)
        assert (use.write_tokens, use.read_tokens) == (0, 0)
    assert len(cache) == 0


def test_an_entry_lives_five_minutes_from_its_last_use() -> None:
    clock = FakeClock()
    cache = PromptCache(1024, clock)
    request = layout(evaluation(long_text("ttl"), phrase_instructions("x")))
    cache.begin(cache.plan(MODEL, request))

    clock.now += 299
    renewed = cache.plan(MODEL, request)
    clock.now += 299
    still = cache.plan(MODEL, request)
    clock.now += 301
    gone = cache.plan(MODEL, request)

    assert renewed.read_tokens and still.read_tokens
    assert gone.read_tokens == 0 and gone.write_tokens > 0


def test_a_one_hour_ttl_outlives_five_minutes() -> None:
    clock = FakeClock()
    cache = PromptCache(1024, clock)
    body = evaluation(long_text("hour"), phrase_instructions("x"))
    body["messages"][0]["content"][0]["cache_control"]["ttl"] = "1h"
    request = layout(body)
    written = cache.plan(MODEL, request)
    cache.begin(written)

    clock.now += 3000

    assert written.write_ttl == 3600
    assert cache.plan(MODEL, request).read_tokens == request.breakpoints[0].tokens


def test_the_cache_is_keyed_on_the_model_and_the_whole_prefix() -> None:
    cache = PromptCache(1024, FakeClock())
    body = evaluation(long_text("key"), phrase_instructions("x"))
    cache.begin(cache.plan(MODEL, layout(body)))
    other_tools = json.loads(json.dumps(body))
    other_tools["tools"][0]["description"] += " Changed."

    assert cache.plan("another-model", layout(body)).read_tokens == 0
    assert cache.plan(MODEL, layout(other_tools)).read_tokens == 0
    assert cache.plan(MODEL, layout(body)).read_tokens > 0


def test_a_later_breakpoint_writes_only_the_tokens_past_the_cached_prefix() -> None:
    cache = PromptCache(1024, FakeClock())
    body = evaluation(long_text("two"), phrase_instructions("x"))
    short = layout(body)
    cache.begin(cache.plan(MODEL, short))
    body["messages"][0]["content"][1]["cache_control"] = {"type": "ephemeral"}
    longer = layout(body)

    use = cache.plan(MODEL, longer)

    first, second = longer.breakpoints
    assert use.read_tokens == first.tokens
    assert use.write_tokens == second.tokens - first.tokens
    assert use.input_tokens == longer.total_tokens - second.tokens


def test_cache_control_itself_is_not_part_of_the_prefix() -> None:
    plain = evaluation(long_text("marks"), phrase_instructions("x"))
    marked = json.loads(json.dumps(plain))
    marked["system"][0]["cache_control"] = {"type": "ephemeral"}

    assert layout(plain).breakpoints[0] == layout(marked).breakpoints[1]


# --- replies, scripts and settings ----------------------------------------------


def test_max_tokens_cuts_a_tool_call_short_with_an_empty_input() -> None:
    said = ToolCall(EVALUATION_TOOL_NAME, {"fired": True, "reason": "x" * 100})

    reply = build_reply(said, max_tokens=1)

    assert reply.stop_reason == "max_tokens"
    assert reply.output_tokens == 1
    assert reply.blocks[0].input == {}


def test_a_malformed_call_lacks_its_required_fields_or_valid_json() -> None:
    said = ToolCall("t", {"fired": True, "reason": "r", "note": "n"})

    missing = build_reply(said, 100, "fields", required=["fired", "reason"])
    broken = build_reply(said, 100, "json")

    assert missing.blocks[0].input == {"note": "n"}
    assert isinstance(broken.blocks[0].input, str)
    with pytest.raises(ValueError):
        json.loads(broken.blocks[0].json_text)


def test_a_stream_carries_the_tool_input_in_json_chunks_in_api_order() -> None:
    said = ToolCall("t", {"reason": "a long reason " * 20})
    reply = build_reply(said, 1000)
    use = CacheUse(MODEL, input_tokens=10, read_tokens=5, write_tokens=0)

    events = stream_events("msg_1", MODEL, reply, use)

    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-4:] == [
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    chunks = [
        d["delta"]["partial_json"] for n, d in events if n == "content_block_delta"
    ]
    assert len(chunks) > 1
    assert json.loads("".join(chunks)) == said.input
    assert events[0][1]["message"]["usage"]["cache_read_input_tokens"] == 5


def test_scripts_are_taken_in_order_only_by_requests_that_match() -> None:
    book = ScriptBook()
    book.add(Script(match="tag-1", responses=[ScriptedResponse(text="a")]))
    book.add(Script(match="tag-1", responses=[ScriptedResponse(text="b")]))

    assert book.take("no match here") is None
    first, second = book.take("x tag-1 y"), book.take("tag-1")
    assert (first and first.text, second and second.text) == ("a", "b")
    assert book.take("tag-1") is None


def test_scripts_match_the_unescaped_text_too() -> None:
    book = ScriptBook()
    book.add(Script(match="R&D", responses=[ScriptedResponse(timeout=True)]))

    taken = book.take("about R&amp;D")

    assert taken is not None and taken.timeout


def test_a_scripted_response_has_at_most_one_kind() -> None:
    with pytest.raises(ValueError):
        ScriptedResponse(text="a", timeout=True)


def test_random_faults_follow_the_configured_rates() -> None:
    rng = random.Random(7)

    assert random_fault(ModelConfig(rate_429=1.0), rng) == 429
    assert random_fault(ModelConfig(rate_529=1.0), rng) == 529
    assert random_fault(ModelConfig(), rng) is None
    draws = [random_fault(ModelConfig(rate_500=0.25), rng) for _ in range(4000)]
    assert math.isclose(draws.count(500) / 4000, 0.25, abs_tol=0.03)


def test_latency_jitters_within_bounds_and_never_ends_before_it_begins() -> None:
    config = ModelConfig(ttft_ms=100, total_ms=120, jitter_ms=50)
    rng = random.Random(1)

    for _ in range(200):
        first, total = latency(config, rng)
        assert 0.05 <= first <= 0.15
        assert first <= total <= 0.17
