"""The offline model's HTTP server: the Messages API, faults, scripts, latency.

``POST /v1/messages``, step by step:

1. The body is checked as the API checks it (``reading.problem``: model,
   ``max_tokens``, messages, system, tools, ``tool_choice``); a bad one gets 400
   ``invalid_request_error``. The key (``Authorization: Bearer`` or
   ``x-api-key``) is accepted without a look.
2. The request is recorded and takes the next scripted response whose match
   occurs in its text (``script.py``).
3. A scripted error answers at once, with ``retry-after`` when given; a
   scripted timeout holds the connection until the client gives up. A request
   with no script draws a random fault at the configured rates (``rate_429``,
   ``rate_529``, ``rate_500``; a 429 carries ``retry-after: retry_after_s``
   when that is set).
4. The rules (``rules.py``), or the script, give the answer; the prompt cache
   (``cache.py``) splits the input tokens as the request arrives.
5. After ``ttft`` the response begins: the cache entries it wrote become
   readable, and a stream sends ``message_start``. A plain response comes back
   whole at ``total``; a stream spreads its remaining events evenly up to then.

Every wait is an ``asyncio.sleep``, so hundreds of requests wait together.
``POST /v1/messages/count_tokens`` answers the cache module's token estimate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from standins.offline_model.cache import CacheUse, layout
from standins.offline_model.config import ModelConfig, latency, random_fault
from standins.offline_model.control import ModelState, control_router
from standins.offline_model.reading import (
    problem,
    request_text,
    required_fields,
    tool_names,
)
from standins.offline_model.rules import (
    Answer,
    TextAnswer,
    ToolCall,
    answer,
    tool_input,
)
from standins.offline_model.script import ScriptedError, ScriptedResponse
from standins.offline_model.wire import (
    Reply,
    build_reply,
    error_body,
    message,
    new_id,
    sse,
    stream_events,
    usage,
)

logger = logging.getLogger(__name__)

# How long a scripted timeout holds a connection whose client never gives up.
HOLD_LIMIT_S = 3600.0
_HOLD_POLL_S = 0.05

DEFAULT_MESSAGES = {
    429: "Number of request tokens has exceeded your rate limit (offline model).",
    500: "Internal server error (offline model).",
    529: "Overloaded (offline model).",
}


def _error(
    status: int,
    text: str,
    request_id: str,
    error_type: str | None = None,
    retry_after: float | None = None,
) -> JSONResponse:
    headers = {"request-id": request_id}
    if retry_after is not None:
        headers["retry-after"] = f"{retry_after:g}"
    return JSONResponse(
        error_body(status, text, error_type, request_id), status, headers=headers
    )


class _Exchange:
    """One ``/v1/messages`` request and its answer."""

    def __init__(
        self,
        state: ModelState,
        request: Request,
        body: dict[str, Any],
        scripted: ScriptedResponse | None,
        record: dict[str, Any],
        request_id: str,
    ) -> None:
        self.state = state
        self.request = request
        self.body = body
        self.scripted = scripted
        self.record = record
        self.msg_id: str = record["id"]
        self.request_id = request_id
        self.streaming = bool(body.get("stream"))

    async def run(self) -> Response:
        self.state.stats.enter()
        handed_over = False  # a stream leaves the in-flight count when it ends
        try:
            failure = self._failure()
            if failure is not None:
                return self._fail(failure)
            if self.scripted is not None and self.scripted.timeout:
                return await self._hold()

            said = self._answer()
            name = said.name if isinstance(said, ToolCall) else ""
            malformed = self.scripted.malformation if self.scripted else None
            reply = build_reply(
                said,
                self.body["max_tokens"],
                malformed,
                required_fields(self.body, name),
            )
            use = self.state.cache.plan(self.body["model"], layout(self.body))
            overrides = self.scripted or ScriptedResponse()
            first, total = latency(
                self.state.config, self.state.rng, overrides.ttft_ms, overrides.total_ms
            )
            mid_stream = self._mid_stream_error()
            if mid_stream is None:
                self._answered(name or "text", reply, use)
            if self.streaming:
                handed_over = True
                return StreamingResponse(
                    self._events(reply, use, first, total, mid_stream),
                    media_type="text/event-stream",
                    headers={
                        "request-id": self.request_id,
                        "cache-control": "no-cache",
                    },
                )
            await asyncio.sleep(first)
            self.state.cache.begin(use)
            await asyncio.sleep(total - first)
            return JSONResponse(
                message(self.msg_id, self.body["model"], reply, use),
                headers={"request-id": self.request_id},
            )
        finally:
            if not handed_over:
                self._done()

    def _failure(self) -> ScriptedError | None:
        """The error to answer with at once: scripted, or a random fault."""
        if self.scripted is not None:
            error = self.scripted.error
            if error is not None and not (error.mid_stream and self.streaming):
                return error
            return None
        config = self.state.config
        status = random_fault(config, self.state.rng)
        if status is None:
            return None
        retry_after = config.retry_after_s if status == 429 else None
        return ScriptedError(status=status, retry_after=retry_after)

    def _mid_stream_error(self) -> ScriptedError | None:
        error = self.scripted.error if self.scripted else None
        return error if error is not None and self.streaming else None

    def _fail(self, error: ScriptedError) -> JSONResponse:
        self._finish(error.status, "error")
        text = error.message or DEFAULT_MESSAGES.get(
            error.status, "Error (offline model)."
        )
        return _error(
            error.status, text, self.request_id, error.type, error.retry_after
        )

    async def _hold(self) -> Response:
        """Say nothing until the client closes the connection."""
        deadline = time.monotonic() + HOLD_LIMIT_S
        while time.monotonic() < deadline and not await self.request.is_disconnected():
            await asyncio.sleep(_HOLD_POLL_S)
        self.state.stats.timeouts += 1
        self._finish(504, "timeout")
        return _error(504, "The offline model held this request.", self.request_id)

    def _answer(self) -> Answer:
        scripted = self.scripted
        if scripted is not None and scripted.text is not None:
            return TextAnswer(scripted.text)
        ruled = answer(self.body)
        if scripted is None or (scripted.tool_input is None and not scripted.tool_name):
            return ruled
        name = scripted.tool_name or (
            ruled.name
            if isinstance(ruled, ToolCall)
            else (tool_names(self.body) or [""])[0]
        )
        if scripted.tool_input is not None:
            return ToolCall(name, scripted.tool_input)
        return ToolCall(name, tool_input(name, self.body))

    def _answered(self, said: str, reply: Reply, use: CacheUse) -> None:
        self.state.stats.answered(use, reply.output_tokens)
        self.record["usage"] = usage(use, reply.output_tokens)
        self._finish(200, said)
        logger.info(
            "message id=%s model=%s answer=%s stop=%s stream=%s input=%d"
            " cache_read=%d cache_write=%d output=%d",
            self.msg_id,
            self.body["model"],
            said,
            reply.stop_reason,
            self.streaming,
            use.input_tokens,
            use.read_tokens,
            use.write_tokens,
            reply.output_tokens,
        )

    def _done(self) -> None:
        self.record["answered_at"] = time.time()
        self.state.stats.leave()

    def _finish(self, status: int, outcome: str) -> None:
        self.record["status"] = status
        if status != 200:
            self.state.stats.errors[str(status)] += 1
            logger.info(
                "message id=%s status=%d outcome=%s", self.msg_id, status, outcome
            )

    async def _events(
        self,
        reply: Reply,
        use: CacheUse,
        first: float,
        total: float,
        error: ScriptedError | None,
    ) -> AsyncIterator[str]:
        try:
            await asyncio.sleep(first)
            self.state.cache.begin(use)
            events = stream_events(self.msg_id, self.body["model"], reply, use)
            gap = (total - first) / max(1, len(events) - 2)
            for index, (name, data) in enumerate(events):
                if index > 1 and gap > 0:
                    await asyncio.sleep(gap)
                yield sse(name, data)
                if name == "message_start" and error is not None:
                    self._finish(error.status, "error mid-stream")
                    text = error.message or DEFAULT_MESSAGES.get(error.status, "Error.")
                    yield sse("error", error_body(error.status, text, error.type))
                    return
        finally:
            self._done()


def create_app(
    config: ModelConfig | None = None, clock: Callable[[], float] = time.monotonic
) -> FastAPI:
    """The offline model as an ASGI app; ``app.state.model`` is its state."""
    state = ModelState.from_config(config or ModelConfig(), clock)
    app = FastAPI(title="Watchword offline model", docs_url=None, redoc_url=None)
    app.state.model = state
    app.include_router(control_router(state))

    @app.exception_handler(Exception)
    async def crashed(request: Request, error: Exception) -> Response:
        # A bug of the stand-in still answers in the API's error shape.
        return _error(
            500, f"Offline model error: {type(error).__name__}", new_id("req")
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Whether the server is up."""
        return {"status": "ok"}

    @app.post("/v1/messages")
    async def create_message(request: Request) -> Response:
        """Create a message, as Anthropic's Messages API does."""
        request_id = new_id("req")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "The request body is not valid JSON.", request_id)
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.", request_id)

        text = request_text(body)
        reason = problem(body)
        state.stats.requests += 1
        scripted = None if reason else state.scripts.take(text)
        record = state.log.add(new_id("msg"), text, body, scripted is not None)
        if reason:
            record.update(status=400, answered_at=time.time())
            state.stats.errors["400"] += 1
            return _error(400, reason, request_id)
        state.stats.scripted += scripted is not None
        exchange = _Exchange(state, request, body, scripted, record, request_id)
        return await exchange.run()

    @app.post("/v1/messages/count_tokens")
    async def count_tokens(request: Request) -> Response:
        """Count a request's input tokens, as the offline model estimates them."""
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "messages: Field required", new_id("req"))
        return JSONResponse({"input_tokens": layout(body).total_tokens})

    return app


def serve(host: str, port: int, config: ModelConfig) -> None:
    """Run the offline model until the process is told to stop."""
    import uvicorn

    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        # Held (scripted timeout) connections must not delay a shutdown long.
        timeout_graceful_shutdown=2,
    )
