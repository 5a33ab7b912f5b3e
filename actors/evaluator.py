"""The evaluator pool: async actors that run many model calls each.

Model calls wait on the network, so a few async actors with many calls in
flight do the work of hundreds of processes. Each actor holds an equal share
of the cluster-wide cap (``llm_max_concurrency``) as a semaphore.

``Evaluator.evaluate`` is an async generator. For a warm-up call it yields
``STARTED`` as soon as the model's response begins (the stream's
``message_start``): from that moment the prompt-cache entry the call wrote is
readable, so the tenant actor starts the other alerts' calls then, not when
this one ends. The last item is always the ``ProcessingResult``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import ray
from pydantic import ValidationError

from actors import names
from actors.placement import actor_options
from shared import metrics
from shared.errors import StateViolation
from shared.llm import prompts
from shared.llm.client import make_client, retrying, translate
from shared.logs import configure as configure_logging
from shared.models.alerts import StateSchema
from shared.models.evaluation import (
    EvaluationRequest,
    ModelVerdict,
    ProcessingResult,
    Usage,
)
from shared.settings import Settings

logger = logging.getLogger(__name__)

STARTED = "started"


class AnswerRejected(Exception):
    """The model's answer broke the evaluation contract."""


def usage_of(message: Any) -> Usage:
    u = message.usage
    return Usage(
        input_tokens=u.input_tokens or 0,
        output_tokens=u.output_tokens or 0,
        cache_creation_input_tokens=getattr(u, "cache_creation_input_tokens", 0) or 0,
        cache_read_input_tokens=getattr(u, "cache_read_input_tokens", 0) or 0,
    )


def read_verdict(message: Any, schema: StateSchema) -> tuple[ModelVerdict, Any]:
    """The validated verdict and its tool_use block, or AnswerRejected."""
    block = next(
        (
            b
            for b in message.content
            if b.type == "tool_use" and b.name == prompts.EVALUATION_TOOL_NAME
        ),
        None,
    )
    if block is None:
        raise AnswerRejected(f"no {prompts.EVALUATION_TOOL_NAME} call in the answer")
    try:
        verdict = ModelVerdict.model_validate(block.input)
        # The one check every state goes through: no extra fields, no field
        # of the wrong type or out of bounds, whatever the model answered.
        verdict.new_state = schema.validate_state(verdict.new_state)
    except ValidationError as err:
        details = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in err.errors(include_input=False, include_url=False)
        )
        raise AnswerRejected(details) from None
    except StateViolation as err:
        raise AnswerRejected(str(err)) from None
    return verdict, block


class Evaluator:
    """Evaluates one alert against one communication through the model."""

    def __init__(
        self, settings: Settings, client: Any = None, concurrency: int | None = None
    ) -> None:
        self._settings = settings
        self._client = client or make_client(settings)
        share = concurrency or math.ceil(
            settings.llm_max_concurrency / max(1, settings.evaluator_pool_size)
        )
        self._slots = asyncio.Semaphore(share)
        self._model = settings.evaluation_model
        self.calls = 0
        self.retries = 0

    async def evaluate(
        self, request: EvaluationRequest
    ) -> AsyncIterator[str | ProcessingResult]:
        started = asyncio.Event()
        work = asyncio.create_task(self.run(request, started))
        signal = asyncio.create_task(started.wait())
        await asyncio.wait({work, signal}, return_when=asyncio.FIRST_COMPLETED)
        signal.cancel()
        if started.is_set():
            yield STARTED
        yield await work

    async def run(
        self, request: EvaluationRequest, started: asyncio.Event | None = None
    ) -> ProcessingResult:
        """Call the model, validate, repair once; never raises for model trouble."""
        begun = time.monotonic()
        schema = StateSchema.model_validate(request.state_schema)
        kwargs = prompts.evaluation_request(
            self._settings.evaluation_model,
            request.communication_text,
            request.alert_id,
            request.instructions,
            request.state,
            request.state_schema,
            cache=request.cache,
        )
        usage = Usage()
        attempts = 0
        base: dict[str, Any] = {
            "tenant": request.tenant,
            "alert_id": request.alert_id,
            "communication_id": request.communication_id,
        }
        for repair in range(2):
            attempts += 1
            call_began = time.monotonic()
            try:
                message = await self._call(kwargs, request.warm_up, started)
            except Exception as err:  # the retries are spent or it is permanent
                error = translate(err)
                metrics.record_llm_error(self._settings, self._model, error)
                logger.warning(
                    "evaluation failed tenant=%s alert=%s communication=%s error=%s",
                    request.tenant,
                    request.alert_id,
                    request.communication_id,
                    type(error).__name__,
                )
                return ProcessingResult(
                    **base,
                    outcome="failed",
                    usage=usage,
                    attempts=attempts,
                    error=f"{type(error).__name__}: {error}"[:500],
                    latency_ms=(time.monotonic() - begun) * 1000,
                )
            usage = usage + usage_of(message)
            metrics.record_llm_call(
                self._settings,
                self._model,
                time.monotonic() - call_began,
                usage_of(message),
            )
            try:
                verdict, _ = read_verdict(message, schema)
            except AnswerRejected as rejected:
                metrics.record_llm_error(self._settings, self._model, "answer_rejected")
                if repair == 0:
                    kwargs = self._with_repair(kwargs, message, str(rejected))
                    continue
                return ProcessingResult(
                    **base,
                    outcome="failed",
                    usage=usage,
                    attempts=attempts,
                    error=f"answer rejected twice: {rejected}"[:500],
                    latency_ms=(time.monotonic() - begun) * 1000,
                )
            return ProcessingResult(
                **base,
                outcome="fired" if verdict.fired else "not_fired",
                reason=verdict.reason,
                evidence=verdict.evidence,
                new_state=verdict.new_state,
                usage=usage,
                attempts=attempts,
                latency_ms=(time.monotonic() - begun) * 1000,
            )
        raise AssertionError("unreachable: the loop returns on its last pass")

    async def _call(
        self, kwargs: dict[str, Any], stream: bool, started: asyncio.Event | None
    ) -> Any:
        async with self._slots:
            async for attempt in retrying(self._settings, on_retry=self._count_retry):
                with attempt:
                    self.calls += 1
                    if not stream:
                        return await self._client.messages.create(**kwargs)
                    async with self._client.messages.stream(**kwargs) as events:
                        async for event in events:
                            if event.type == "message_start" and started is not None:
                                started.set()
                        return await events.get_final_message()
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _count_retry(self, _state: Any) -> None:
        self.retries += 1
        metrics.record_llm_retry(self._settings, self._model)

    @staticmethod
    def _with_repair(kwargs: dict[str, Any], message: Any, problem: str) -> dict:
        """The same request plus the rejected answer and what was wrong with it."""
        tool_use = next((b for b in message.content if b.type == "tool_use"), None)
        assistant = [b.model_dump(exclude_none=True) for b in message.content]
        if tool_use is not None:
            reply: list[dict[str, Any]] = [
                {
                    "type": "tool_result",
                    "tool_use_id": tool_use.id,
                    "is_error": True,
                    "content": f"Rejected: {problem}. Call the tool again, correctly.",
                }
            ]
        else:
            reply = [{"type": "text", "text": f"Rejected: {problem}. Use the tool."}]
        return {
            **kwargs,
            "messages": [
                *kwargs["messages"],
                {"role": "assistant", "content": assistant},
                {"role": "user", "content": reply},
            ],
        }


# Ray accepts max_concurrency here; its type stubs do not list it.
@ray.remote(num_cpus=0, max_concurrency=1000)  # type: ignore[call-overload]
class EvaluatorActor:
    """One member of the evaluator pool (``evaluator/<i>``)."""

    def __init__(self, settings: Settings) -> None:
        configure_logging()
        self._logic = Evaluator(settings)

    async def evaluate(
        self, request: EvaluationRequest
    ) -> AsyncIterator[str | ProcessingResult]:
        """Streamed: ``STARTED`` when the response begins (warm-up), then the result."""
        async for item in self._logic.evaluate(request):
            yield item

    async def run(self, request: EvaluationRequest) -> ProcessingResult:
        """One evaluation, answered whole (no start signal: cheaper to call)."""
        return await self._logic.run(request)

    async def stats(self) -> dict[str, int]:
        return {"calls": self._logic.calls, "retries": self._logic.retries}


def evaluator_pool(settings: Settings) -> list[Any]:
    """Handles of the pool's actors, created on first use (detached)."""
    return [
        EvaluatorActor.options(  # type: ignore[attr-defined]
            name=names.evaluator(i),
            namespace=settings.ray_namespace,
            get_if_exists=True,
            lifetime="detached",
            **actor_options(settings),
        ).remote(settings)
        for i in range(settings.evaluator_pool_size)
    ]
