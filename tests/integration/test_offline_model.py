"""The offline model over HTTP, through the real ``anthropic`` SDK.

One server serves the whole session (the ``model_server`` fixture). Each test
puts its own tag in its requests and scripts only that tag, so tests never
take each other's scripted responses or cache entries.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import pytest

from shared.llm.prompts import (
    ASK_TOOL_NAME,
    EVALUATION_TOOL_NAME,
    PROPOSE_TOOL_NAME,
    creation_first_turn,
    creation_request,
    evaluation_request,
)
from standins.process import ServerProcess

pytestmark = pytest.mark.integration

MODEL = "claude-sonnet-4-5"
COUNTER = {"fields": [{"name": "match_count", "type": "integer", "minimum": 0}]}


# --- helpers ----------------------------------------------------------------


def tag() -> str:
    return f"tag{uuid.uuid4().hex[:10]}"


def control(server: ServerProcess, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        server.url + path,
        data=data,
        method=method,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def script(server: ServerProcess, match: str, *responses: dict[str, Any]) -> None:
    control(
        server, "POST", "/_control/script", {"match": match, "responses": responses}
    )


def client(server: ServerProcess, **options: Any) -> anthropic.AsyncAnthropic:
    options.setdefault("max_retries", 0)
    return anthropic.AsyncAnthropic(base_url=server.url, api_key="test-key", **options)


def create(server: ServerProcess, request: dict[str, Any], **options: Any) -> Any:
    async def go() -> Any:
        async with client(server, **options) as sdk:
            return await sdk.messages.create(**request)

    return asyncio.run(go())


def evaluation(
    label: str,
    text: str,
    phrases: list[str],
    state: dict[str, Any] | None = None,
    schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    listed = ", ".join(f'"{p}"' for p in phrases)
    return evaluation_request(
        MODEL,
        f"[{label}] {text}",
        f"alert-{label}",
        f"Fire when the communication contains any of these phrases: {listed}.",
        state or {},
        schema or {"fields": []},
    )


def long_evaluation(label: str) -> dict[str, Any]:
    """An evaluation whose cached prefix is well over 1,024 tokens."""
    sentence = "The customer walked through renewal terms, seats and support. "
    return evaluation(label, sentence * 100, ["renewal"])


def creation(label: str, prompt: str) -> dict[str, Any]:
    first = creation_first_turn(f"{prompt} ({label})", [])
    return creation_request(MODEL, [{"role": "user", "content": first}])


# --- rules through the SDK ----------------------------------------------------


def test_creation_proposes_an_alert_that_keeps_the_quoted_phrases(
    model_server: ServerProcess,
) -> None:
    request = creation(tag(), 'Tell me right away when a call says "pricing pushback"')

    reply = create(model_server, request)

    (block,) = reply.content
    assert reply.stop_reason == "tool_use"
    assert (block.type, block.name) == ("tool_use", PROPOSE_TOOL_NAME)
    assert block.id.startswith("toolu_")
    assert '"pricing pushback"' in block.input["instructions"]
    assert block.input["data_types"] == ["call_transcript"]
    assert block.input["window_seconds"] == 0


def test_creation_asks_first_and_proposes_with_the_answer(
    model_server: ServerProcess,
) -> None:
    request = creation(tag(), "Alert me when deals look shaky")
    asked = create(model_server, request)
    (question,) = asked.content
    request["messages"] += [
        {"role": "assistant", "content": [question.model_dump(exclude_none=True)]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": question.id,
                    "content": 'Emails saying "on hold"',
                }
            ],
        },
    ]

    proposed = create(model_server, request)

    assert question.name == ASK_TOOL_NAME
    assert proposed.content[0].name == PROPOSE_TOOL_NAME
    assert proposed.content[0].input["data_types"] == ["email"]
    assert '"on hold"' in proposed.content[0].input["instructions"]


def test_evaluation_fires_on_a_phrase_and_raises_the_counter(
    model_server: ServerProcess,
) -> None:
    request = evaluation(
        tag(),
        "Buyer: the budget is FROZEN until May.",
        ["frozen"],
        {"match_count": 1},
        COUNTER,
    )

    reply = create(model_server, request)

    (block,) = reply.content
    assert block.name == EVALUATION_TOOL_NAME
    assert block.input["fired"] is True
    assert block.input["new_state"] == {"match_count": 2}
    assert any("FROZEN" in quote for quote in block.input["evidence"])
    assert reply.usage.output_tokens > 0


def test_evaluation_does_not_fire_without_a_phrase_and_keeps_the_state(
    model_server: ServerProcess,
) -> None:
    request = evaluation(
        tag(), "Buyer: all fine.", ["frozen"], {"match_count": 1}, COUNTER
    )

    block = create(model_server, request).content[0]

    assert block.input["fired"] is False
    assert block.input["new_state"] == {"match_count": 1}
    assert block.input["evidence"] == []


# --- streaming ----------------------------------------------------------------


def test_messages_stream_gives_the_same_tool_call_as_a_plain_create(
    model_server: ServerProcess,
) -> None:
    request = evaluation(
        tag(), "They mentioned a budget freeze. " * 20, ["budget freeze"]
    )

    async def streamed() -> Any:
        async with (
            client(model_server) as sdk,
            sdk.messages.stream(**request) as stream,
        ):
            return await stream.get_final_message()

    final = asyncio.run(streamed())
    plain = create(model_server, request)

    assert final.stop_reason == "tool_use"
    assert final.content[0].input == plain.content[0].input
    assert final.usage.output_tokens == plain.usage.output_tokens


def test_a_raw_stream_sends_the_events_in_the_api_order(
    model_server: ServerProcess,
) -> None:
    request = evaluation(tag(), "churn risk " * 30, ["churn"])

    async def events() -> list[Any]:
        async with client(model_server) as sdk:
            stream = await sdk.messages.create(**request, stream=True)
            return [event async for event in stream]

    received = asyncio.run(events())

    kinds = [event.type for event in received]
    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start"
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [e.delta.partial_json for e in received if e.type == "content_block_delta"]
    assert json.loads("".join(deltas))["fired"] is True
    assert received[0].message.usage.input_tokens > 0
    assert received[-2].delta.stop_reason == "tool_use"


# --- scripted responses -------------------------------------------------------


def test_a_scripted_429_with_retry_after_raises_rate_limit_error(
    model_server: ServerProcess,
) -> None:
    label = tag()
    script(model_server, label, {"error": {"status": 429, "retry_after": 7}})

    with pytest.raises(anthropic.RateLimitError) as raised:
        create(model_server, evaluation(label, "text", ["x"]))

    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.body["error"]["type"] == "rate_limit_error"
    assert create(model_server, evaluation(label, "text", ["x"])).content


def test_the_sdk_retries_a_scripted_overload_and_then_gets_the_answer(
    model_server: ServerProcess,
) -> None:
    label = tag()
    script(model_server, label, {"error": {"status": 529, "retry_after": 0}})

    reply = create(model_server, evaluation(label, "x", ["x"]), max_retries=1)

    recorded = control(model_server, "GET", f"/_control/requests?match={label}")
    assert reply.content[0].input["fired"] is True
    assert [r["status"] for r in recorded["requests"]] == [529, 200]


def test_a_scripted_tool_input_comes_back_as_given(
    model_server: ServerProcess,
) -> None:
    label = tag()
    verdict = {"fired": True, "reason": "scripted", "evidence": [], "new_state": {}}
    script(model_server, label, {"tool_input": verdict})

    block = create(model_server, evaluation(label, "nothing", ["x"])).content[0]

    assert (block.name, block.input) == (EVALUATION_TOOL_NAME, verdict)


def test_a_scripted_malformed_answer_lacks_the_required_fields(
    model_server: ServerProcess,
) -> None:
    label = tag()
    script(model_server, label, {"malformed": True})

    block = create(model_server, evaluation(label, "x", ["x"])).content[0]

    assert block.input == {}


def test_a_scripted_timeout_ends_in_the_clients_timeout(
    model_server: ServerProcess,
) -> None:
    label = tag()
    script(model_server, label, {"timeout": True})

    with pytest.raises(anthropic.APITimeoutError):
        create(model_server, evaluation(label, "x", ["x"]), timeout=0.5)


def test_an_error_mid_stream_reaches_the_stream_reader(
    model_server: ServerProcess,
) -> None:
    label = tag()
    script(model_server, label, {"error": {"status": 529, "mid_stream": True}})

    async def read() -> None:
        async with (
            client(model_server) as sdk,
            sdk.messages.stream(**evaluation(label, "x", ["x"])) as stream,
        ):
            await stream.get_final_message()

    with pytest.raises(anthropic.APIStatusError) as raised:
        asyncio.run(read())

    assert raised.value.body["error"]["type"] == "overloaded_error"


def test_an_invalid_request_gets_a_400_in_the_api_error_shape(
    model_server: ServerProcess,
) -> None:
    request = evaluation(tag(), "x", ["x"])
    request["tool_choice"] = {"type": "tool", "name": "not_offered"}

    with pytest.raises(anthropic.BadRequestError) as raised:
        create(model_server, request)

    assert raised.value.body["type"] == "error"
    assert raised.value.body["error"]["type"] == "invalid_request_error"


def test_recorded_requests_show_what_the_model_received(
    model_server: ServerProcess,
) -> None:
    label = tag()
    create(model_server, evaluation(label, "first", ["x"]))
    create(model_server, evaluation(label, "second", ["x"]))

    recorded = control(model_server, "GET", f"/_control/requests?match={label}&limit=1")

    (only,) = recorded["requests"]
    assert "second" in only["body"]["messages"][0]["content"][0]["text"]
    assert only["status"] == 200
    assert only["usage"]["input_tokens"] > 0


def test_random_faults_follow_the_configured_rate(
    model_server: ServerProcess,
) -> None:
    control(model_server, "POST", "/_control/config", {"rate_500": 1.0})
    try:
        with pytest.raises(anthropic.InternalServerError):
            create(model_server, evaluation(tag(), "x", ["x"]))
    finally:
        control(model_server, "POST", "/_control/config", {"rate_500": 0.0})

    assert create(model_server, evaluation(tag(), "x", ["x"])).content


# --- prompt cache -------------------------------------------------------------


def test_a_second_long_request_reads_what_the_first_wrote(
    model_server: ServerProcess,
) -> None:
    request = long_evaluation(tag())

    first = create(model_server, request).usage
    second = create(model_server, request).usage

    assert first.cache_creation_input_tokens > 1024
    assert first.cache_read_input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0
    assert second.input_tokens == first.input_tokens


def test_a_short_request_is_never_cached(model_server: ServerProcess) -> None:
    request = evaluation(tag(), "short note", ["x"])

    usages = [create(model_server, request).usage for _ in range(2)]

    for usage in usages:
        assert usage.cache_creation_input_tokens == 0
        assert usage.cache_read_input_tokens == 0


def test_two_long_requests_sent_together_both_write(
    model_server: ServerProcess,
) -> None:
    label = tag()
    request = long_evaluation(label)
    # Both begin only after 300 ms, so neither finds the other's entry.
    script(model_server, label, {"ttft_ms": 300}, {"ttft_ms": 300})

    async def together() -> list[Any]:
        async with client(model_server) as sdk:
            return await asyncio.gather(
                sdk.messages.create(**request), sdk.messages.create(**request)
            )

    replies = asyncio.run(together())
    after = create(model_server, request).usage

    written = [r.usage.cache_creation_input_tokens for r in replies]
    assert written[0] == written[1] > 1024
    assert after.cache_read_input_tokens == written[0]


def test_hundreds_of_concurrent_requests_wait_together(
    model_server: ServerProcess,
) -> None:
    # Plain HTTP from threads: the SDK's own client costs milliseconds of CPU
    # per request and would measure itself here, not the server.
    label = tag()
    count = 200
    script(model_server, label, *[{"ttft_ms": 1000, "total_ms": 1000}] * count)
    body = json.dumps(evaluation(label, "parallel", ["parallel"])).encode()

    def post(_: int) -> dict[str, Any]:
        request = urllib.request.Request(
            model_server.url + "/v1/messages",
            data=body,
            method="POST",
            headers={"content-type": "application/json", "x-api-key": "test"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=count) as pool:
        replies = list(pool.map(post, range(count)))
    elapsed = time.monotonic() - started

    recorded = control(
        model_server, "GET", f"/_control/requests?match={label}&limit={count}"
    )["requests"]
    assert all(r["content"][0]["input"]["fired"] for r in replies)
    assert len(recorded) == count
    # One at a time would take 200 s; all waiting together takes about 1 s.
    assert elapsed < 10.0
    assert peak_overlap(recorded) >= count // 2


def peak_overlap(records: list[dict[str, Any]]) -> int:
    """The most requests the server held at one moment."""
    edges = sorted(
        [(r["received_at"], 1) for r in records]
        + [(r["answered_at"], -1) for r in records]
    )
    held = peak = 0
    for _, step in edges:
        held += step
        peak = max(peak, held)
    return peak
