"""TenantActor: one per active tenant, the only writer of its alerts' state.

Per communication it evaluates every enabled alert that applies to the data
type. The first alert runs alone until the model's response begins, so the
communication becomes a cached prompt prefix that the other alerts' calls then
read; when the prefix is too short to be cached there is no warm-up.

Ordering and idempotency, per (alert, communication):

- a per-alert asyncio lock, taken in arrival order (asyncio locks are FIFO),
  means two communications never evaluate one alert against the same state,
  while different alerts run concurrently;
- the ledger is read first: ``completed`` pairs are skipped, ``applied`` pairs
  only finish their side effects from the stored result (no second model call);
- the new state and the ledger record are written in one transaction
  conditioned on the state's version; a conflict (another writer, say a second
  actor during a hand-over) reloads the state and evaluates again;
- a firing result then goes to the pending alert, the ledger is marked
  ``completed``, and the alert's shard is told to arm its timer.

Any failed evaluation makes ``process`` raise a TransientError after the others
finished, so the message is received again and only the failed pairs redo.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shared import metrics
from shared.aws.alert_store import AlertStore
from shared.aws.evaluation_store import AlreadyApplied, EvaluationStore, LedgerRecord
from shared.aws.pending_store import PendingStore
from shared.errors import Retiring, TransientError, VersionConflict
from shared.faults import Faults
from shared.llm.prompts import prefix_tokens_estimate
from shared.models.alerts import Alert, utcnow
from shared.models.communications import Communication
from shared.models.evaluation import (
    CommunicationOutcome,
    EvaluationRequest,
    ProcessingResult,
    Usage,
)
from shared.models.notifications import Trigger
from shared.settings import Settings

logger = logging.getLogger(__name__)

# evaluate(request, started) -> result; sets ``started`` when the response begins.
EvaluateFn = Callable[[EvaluationRequest, asyncio.Event], Awaitable[ProcessingResult]]
# schedule(tenant, alert_id, shard) -> None: tell the shard to arm its timer.
ScheduleFn = Callable[[str, str, int], Awaitable[None]]
ShardOf = Callable[[str, str], int]

MAX_CONFLICT_RETRIES = 5


@dataclass(frozen=True)
class _Pass:
    """One communication on its way through a tenant's alerts."""

    comm: Communication
    text: str
    known: dict[str, LedgerRecord]  # the ledger's records for it, by alert
    cacheable: bool


class EvaluationFailed(TransientError):
    """Some alerts could not be evaluated; the message should come back."""


class TenantWorker:
    """The tenant's logic; ``TenantActor`` hosts one of these."""

    def __init__(
        self,
        settings: Settings,
        tenant: str,
        evaluate: EvaluateFn,
        schedule: ScheduleFn,
        shard_of: ShardOf,
        alerts: AlertStore | None = None,
        evaluations: EvaluationStore | None = None,
        pending: PendingStore | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.tenant = tenant
        self.faults = Faults()
        self._evaluate = evaluate
        self._schedule = schedule
        self._shard_of = shard_of
        self._alert_store = alerts or AlertStore(settings)
        self._evaluations = evaluations or EvaluationStore(settings)
        self._pending = pending or PendingStore(settings)
        self._clock = clock
        self._alerts: list[Alert] | None = None
        self._states: dict[str, tuple[dict[str, Any], int]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.retiring = False
        self.in_flight = 0
        self.last_active = clock()
        self.usage = Usage()
        self.counts: dict[str, int] = {
            "communications": 0,
            "fired": 0,
            "not_fired": 0,
            "failed": 0,
            "skipped": 0,
            "conflicts": 0,
        }

    # --- alert cache -----------------------------------------------------

    def invalidate(self) -> None:
        """Forget the cached alerts and states; the next message reloads them."""
        self._alerts = None
        self._states.clear()

    async def _enabled_alerts(self) -> list[Alert]:
        if self._alerts is None:
            alerts = await asyncio.to_thread(
                self._alert_store.all_for_tenant, self.tenant
            )
            self._alerts = [a for a in alerts if a.enabled]
            self._states = {a.alert_id: (a.state, a.version) for a in self._alerts}
        return self._alerts

    # --- processing ------------------------------------------------------

    async def process(self, comm: Communication) -> CommunicationOutcome:
        if self.retiring:
            raise Retiring(self.tenant)
        self.in_flight += 1
        self.last_active = self._clock()
        try:
            return await self._process(comm)
        finally:
            self.in_flight -= 1
            self.last_active = self._clock()

    async def _process(self, comm: Communication) -> CommunicationOutcome:
        alerts = [
            a
            for a in await self._enabled_alerts()
            if a.definition.applies_to(comm.data_type)
        ]
        text = comm.render()
        self.counts["communications"] += 1
        results: list[ProcessingResult] = []
        if alerts:
            results = await self._fan_out(alerts, comm, text)
        logger.info(
            "processed tenant=%s communication=%s type=%s alerts=%d fired=%d",
            self.tenant,
            comm.id,
            comm.data_type,
            len(alerts),
            sum(r.fired for r in results),
        )
        failed = [r.alert_id for r in results if r.outcome == "failed"]
        if failed:
            raise EvaluationFailed(f"{comm.id}: evaluation failed for {failed}")
        return CommunicationOutcome(
            tenant=self.tenant, communication_id=comm.id, results=results
        )

    def warm_up_worthwhile(self, alerts: list[Alert], text: str) -> bool:
        return (
            self.settings.evaluation_strategy == "warm_up"
            and len(alerts) > 1
            and prefix_tokens_estimate(text) >= self.settings.cache_min_tokens
        )

    async def _fan_out(
        self, alerts: list[Alert], comm: Communication, text: str
    ) -> list[ProcessingResult]:
        # One batched read of what the ledger already holds for this
        # communication (a redelivery), rather than one read per alert. A
        # duplicate that races past it is stopped by the ledger's condition.
        known = await asyncio.to_thread(
            self._evaluations.ledgers,
            self.tenant,
            [a.alert_id for a in alerts],
            comm.id,
        )
        job = _Pass(
            comm=comm,
            text=text,
            known=known,
            cacheable=len(alerts) > 1
            and self.settings.evaluation_strategy != "no_cache",
        )
        if not self.warm_up_worthwhile(alerts, text):
            return list(
                await asyncio.gather(*(self._run(a, job, None) for a in alerts))
            )
        # Warm up with an alert nobody else is evaluating right now, so the
        # rest do not wait behind another communication's evaluation.
        first = next(
            (a for a in alerts if not self._lock(a.alert_id).locked()), alerts[0]
        )
        started = asyncio.Event()
        leader = asyncio.create_task(self._run(first, job, started))
        signal = asyncio.create_task(started.wait())
        await asyncio.wait({leader, signal}, return_when=asyncio.FIRST_COMPLETED)
        signal.cancel()
        rest = [self._run(a, job, None) for a in alerts if a is not first]
        return list(await asyncio.gather(leader, *rest))

    def _lock(self, alert_id: str) -> asyncio.Lock:
        return self._locks.setdefault(alert_id, asyncio.Lock())

    async def _run(
        self, alert: Alert, job: _Pass, started: asyncio.Event | None
    ) -> ProcessingResult:
        try:
            if not alert.definition.state_schema.fields:
                # No state, so no order to keep: evaluations of this alert on
                # different communications run side by side.
                return await self._evaluate_and_apply(alert, job, started)
            async with self._lock(alert.alert_id):
                return await self._evaluate_and_apply(alert, job, started)
        finally:
            if started is not None:
                started.set()  # never leave the others waiting on a failure

    async def _evaluate_and_apply(
        self, alert: Alert, job: _Pass, started: asyncio.Event | None
    ) -> ProcessingResult:
        comm = job.comm
        record = job.known.get(alert.alert_id)
        if record is not None and record.status == "applied":
            # Read before this alert's lock: a duplicate that held the lock may
            # have finished the side effects since. Redoing them would add the
            # trigger again, after its window may have gone out with it.
            record = await asyncio.to_thread(
                self._evaluations.ledger, self.tenant, alert.alert_id, comm.id
            )
        if record is not None and record.status != "failed":
            # Seen before: skip, or (a crash after the state write) finish the
            # side effects from the stored result, without a second model call.
            self.counts["skipped"] += 1
            metrics.record_evaluation(self.settings, comm.data_type, "skipped")
            if record.status == "applied":
                await self._side_effects(alert, comm, record.result)
            return record.result

        for _ in range(MAX_CONFLICT_RETRIES):
            state, version = await self._state(alert.alert_id)
            request = EvaluationRequest(
                tenant=self.tenant,
                alert_id=alert.alert_id,
                communication_id=comm.id,
                communication_text=job.text,
                occurred_at=comm.occurred_at,
                instructions=alert.definition.instructions,
                state=state,
                state_schema=alert.definition.state_schema.model_dump(),
                warm_up=started is not None,
                cache=job.cacheable,
            )
            result = await self._evaluate(request, started or asyncio.Event())
            self.usage = self.usage + result.usage
            if result.outcome == "failed":
                self.counts["failed"] += 1
                metrics.record_evaluation(self.settings, comm.data_type, "failed")
                await asyncio.to_thread(self._evaluations.record_failure, result)
                return result
            try:
                if alert.definition.state_schema.fields:
                    new_version = await asyncio.to_thread(
                        self._evaluations.apply, result, version
                    )
                else:
                    await asyncio.to_thread(self._evaluations.apply_stateless, result)
                    new_version = version
            except VersionConflict:
                self.counts["conflicts"] += 1
                metrics.record_evaluation(self.settings, comm.data_type, "conflict")
                self._states.pop(alert.alert_id, None)
                continue
            except AlreadyApplied:
                # A duplicate of this communication applied it meanwhile.
                self._states.pop(alert.alert_id, None)
                applied = await asyncio.to_thread(
                    self._evaluations.ledger, self.tenant, alert.alert_id, comm.id
                )
                assert applied is not None
                if applied.status == "applied":
                    await self._side_effects(alert, comm, applied.result)
                return applied.result
            assert result.new_state is not None
            self._states[alert.alert_id] = (result.new_state, new_version)
            self.faults.reach("tenant.after_state_write")
            if result.fired:  # a result that did not fire is complete already
                await self._side_effects(alert, comm, result)
            self.counts[result.outcome] += 1
            metrics.record_evaluation(self.settings, comm.data_type, result.outcome)
            return result
        raise VersionConflict(f"alert {alert.alert_id}: too many version conflicts")

    async def _state(self, alert_id: str) -> tuple[dict[str, Any], int]:
        cached = self._states.get(alert_id)
        if cached is None:
            cached = await asyncio.to_thread(
                self._evaluations.load_state, self.tenant, alert_id
            )
            self._states[alert_id] = cached
        return cached

    async def _side_effects(
        self, alert: Alert, comm: Communication, result: ProcessingResult
    ) -> None:
        """Pending upsert for a firing result, then mark the ledger complete.

        Safe to run again: the trigger item is keyed by the communication.
        """
        if result.fired:
            shard = self._shard_of(self.tenant, alert.alert_id)
            window = alert.definition.window_seconds
            trigger = Trigger(
                communication_id=comm.id,
                data_type=comm.data_type,
                occurred_at=comm.occurred_at,
                received_at=utcnow(),
                reason=result.reason,
                evidence=result.evidence,
            )
            await asyncio.to_thread(
                self._pending.add_trigger,
                self.tenant,
                alert.alert_id,
                shard,
                self.settings.batch_window_seconds if window is None else window,
                trigger,
                result.new_state or {},
            )
            self.faults.reach("tenant.after_pending_upsert")
            await self._schedule(self.tenant, alert.alert_id, shard)
        await asyncio.to_thread(
            self._evaluations.mark_completed, self.tenant, alert.alert_id, comm.id
        )

    # --- lifecycle -------------------------------------------------------

    def idle_for(self) -> float:
        return self._clock() - self.last_active if self.in_flight == 0 else 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "in_flight": self.in_flight,
            "retiring": self.retiring,
            "alerts": len(self._alerts or []),
            "usage": self.usage.model_dump(),
            **self.counts,
        }
