"""The Ray actor that hosts a tenant's ``TenantWorker`` (``tenant/<id>``).

Detached, so it outlives the poller that created it. After
``tenant_idle_seconds`` without work it marks itself retiring (new calls get
``Retiring`` and the router retries on a fresh actor) and exits; every durable
fact is in DynamoDB, so the next message simply creates a new one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from typing import Any

import ray

from actors import names
from actors.alert_batch import shard_handle
from actors.evaluator import STARTED, evaluator_pool
from actors.hashing import shard_of
from actors.placement import actor_options
from actors.tenant import TenantWorker
from shared import metrics
from shared.logs import configure as configure_logging
from shared.models.communications import Communication
from shared.models.evaluation import (
    CommunicationOutcome,
    EvaluationRequest,
    ProcessingResult,
)
from shared.settings import Settings

logger = logging.getLogger(__name__)


# Ray accepts max_concurrency here; its type stubs do not list it.
@ray.remote(num_cpus=0, max_concurrency=1000)  # type: ignore[call-overload]
class TenantActor:
    """Serializes a tenant's state updates and fans out its evaluations."""

    def __init__(self, settings: Settings, tenant: str) -> None:
        configure_logging()
        self._settings = settings
        self._evaluators = itertools.cycle(evaluator_pool(settings))
        self._shards: dict[int, Any] = {}
        shards = settings.alert_batch_shards
        self._worker = TenantWorker(
            settings,
            tenant,
            evaluate=self._evaluate,
            schedule=self._schedule,
            shard_of=lambda t, a: shard_of(t, a, shards),
        )
        self._watcher: asyncio.Task[None] | None = None
        metrics.set_tenant_actor_active(settings, True)

    async def process(self, comm: Communication) -> CommunicationOutcome:
        """Evaluate every applicable alert; returns once all is durable."""
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._retire_when_idle())
        return await self._worker.process(comm)

    async def reload(self) -> None:
        """The tenant's alerts changed: drop the cache."""
        self._worker.invalidate()

    async def stats(self) -> dict[str, Any]:
        return {
            **self._worker.stats(),
            "evaluations_last_minute": metrics.evaluations_last_minute(),
            "fault_hits": self._worker.faults.hits(),
            "pid": os.getpid(),
        }

    async def arm_fault(self, point: str, times: int = 1) -> None:
        self._worker.faults.arm(point, times)

    async def _evaluate(
        self, request: EvaluationRequest, started: asyncio.Event
    ) -> ProcessingResult:
        evaluator = next(self._evaluators)
        if not request.warm_up:
            # A streamed call costs Ray more per call; only the warm-up needs
            # to know when the response begins.
            result: ProcessingResult = await evaluator.run.remote(request)
            return result
        stream = evaluator.evaluate.options(num_returns="streaming").remote(request)
        async for ref in stream:
            item = await ref
            if item == STARTED:
                started.set()
            else:
                return item  # type: ignore[no-any-return]
        raise RuntimeError("the evaluator ended without a result")

    async def _schedule(self, tenant: str, alert_id: str, shard: int) -> None:
        handle = self._shards.get(shard)
        if handle is None:
            handle = self._shards[shard] = shard_handle(self._settings, shard)
        await handle.schedule.remote(tenant, alert_id)

    async def retire(self) -> None:
        """Deactivate: refuse new work, let work in flight finish, then exit.

        Called by the idle watcher, or by an operator. Nothing is lost: every
        durable fact is in DynamoDB, and refused callers retry on a fresh actor.
        """
        self._worker.retiring = True
        metrics.set_tenant_actor_active(self._settings, False)
        logger.info("tenant actor retiring tenant=%s", self._worker.tenant)
        while self._worker.in_flight:
            await asyncio.sleep(0.05)
        # Exit a little later, so that this call returns and calls already
        # queued here are refused rather than lost with the process (either
        # is safe; a refusal is cheaper).
        asyncio.get_running_loop().call_later(0.5, self._exit)

    def _exit(self) -> None:
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

    async def _retire_when_idle(self) -> None:
        idle = self._settings.tenant_idle_seconds
        while True:
            await asyncio.sleep(min(idle / 4, 5.0))
            if self._worker.idle_for() >= idle:
                await self.retire()
                return


def tenant_handle(settings: Settings, tenant: str) -> Any:
    return TenantActor.options(  # type: ignore[attr-defined]
        name=names.tenant_actor(tenant),
        namespace=settings.ray_namespace,
        get_if_exists=True,
        lifetime="detached",
        **actor_options(settings),
    ).remote(settings, tenant)
