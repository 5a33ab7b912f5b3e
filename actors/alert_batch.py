"""AlertBatch shards: timers that flush each alert's window to the output queue.

A fixed number of detached shards (``alert-batch/<k>``); an alert belongs to
shard ``shard_of(tenant, alert, N)``. A shard keeps no durable state of its own:
on start it lists its open windows from the pending table's GSI and arms their
timers (overdue ones flush at once), and a periodic sweep re-arms anything a
lost ``schedule`` call never reached.

Flushing one window, with the crash points that matter:

1. claim the entry, saving the exact notification body and the trigger keys it
   covers (conditional: nobody else claimed, the window did not move);
2. send the body (the notification id derives from tenant, alert and window
   start, so a resend carries the same id and the same saved body);
3. remove exactly the claimed triggers; later arrivals stay;
4. close the window, or restart it at the earliest remaining trigger.

A crash after 1 resends the saved body on the next attempt: delivery is at
least once, never with two bodies under one id.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import ray

from actors import names
from actors.placement import actor_options
from shared import metrics
from shared.aws.alert_store import AlertStore
from shared.aws.pending_store import Claim, PendingStore
from shared.delivery import Sink, sinks_for
from shared.faults import Faults
from shared.logs import configure as configure_logging
from shared.models.alerts import utcnow
from shared.models.notifications import AlertNotification, PendingAlert
from shared.settings import Settings

logger = logging.getLogger(__name__)


def notification_id(tenant: str, alert_id: str, first_seen_at: str) -> str:
    raw = f"{tenant}|{alert_id}|{first_seen_at}".encode()
    return "nt-" + hashlib.sha256(raw).hexdigest()[:32]


class Shard:
    """The logic of one shard; the actor below only hosts it."""

    def __init__(
        self,
        settings: Settings,
        shard: int,
        pending: PendingStore | None = None,
        alerts: AlertStore | None = None,
        sender: Sink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.shard = shard
        self.faults = Faults()
        self._pending = pending or PendingStore(settings)
        self._alerts = alerts or AlertStore(settings)
        self._sender = sender or sinks_for(settings)
        self._clock = clock
        self._timers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.sent = 0
        self.flush_errors = 0

    async def rearm_all(self) -> int:
        """Arm a timer for every open window of this shard; how many were found."""
        entries = await asyncio.to_thread(self._pending.entries_of_shard, self.shard)
        for entry in entries:
            self._arm(entry)
        return len(entries)

    async def sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_seconds)
            try:
                await self.rearm_all()
            except Exception:
                logger.exception("sweep failed shard=%d", self.shard)

    async def schedule(self, tenant: str, alert_id: str) -> None:
        snapshot = await asyncio.to_thread(self._pending.entry, tenant, alert_id)
        if snapshot is not None:
            self._arm(snapshot.pending)

    def pending_timers(self) -> int:
        return sum(1 for t in self._timers.values() if not t.done())

    def _arm(self, entry: PendingAlert) -> None:
        key = (entry.tenant, entry.alert_id)
        timer = self._timers.get(key)
        if timer is not None and not timer.done():
            return  # one timer per alert; it re-reads the entry when it fires
        delay = max(0.0, entry.due_at() - self._clock())
        self._timers[key] = asyncio.create_task(self._fire_after(key, delay))
        metrics.set_pending_alerts(self.settings, self.shard, self.pending_timers())

    async def _fire_after(self, key: tuple[str, str], delay: float) -> None:
        await asyncio.sleep(delay)
        self._timers.pop(key, None)
        metrics.set_pending_alerts(self.settings, self.shard, self.pending_timers())
        try:
            await self.flush(*key)
        except Exception:
            # The entry (and any claim) is still in DynamoDB: the sweep or the
            # next schedule retries, resending a saved body unchanged.
            self.flush_errors += 1
            metrics.record_flush_error(self.settings)
            logger.exception("flush failed tenant=%s alert=%s", *key)

    async def flush(self, tenant: str, alert_id: str) -> str | None:
        """Flush the alert's window if it is due; the notification id sent."""
        key = (tenant, alert_id)
        async with self._locks.setdefault(key, asyncio.Lock()):
            snapshot = await asyncio.to_thread(self._pending.entry, tenant, alert_id)
            if snapshot is None:
                return None
            entry, claim = snapshot.pending, snapshot.claim
            if claim is None:
                if entry.due_at() > self._clock():
                    self._arm(entry)
                    return None
                claim = await self._make_claim(entry)
                if claim is None:
                    return None
            ident = AlertNotification.model_validate_json(claim.body).notification_id

            self.faults.reach("batch.before_send")
            await asyncio.to_thread(self._sender.send, claim.body, ident)
            self.sent += 1
            metrics.record_notification_sent(self.settings)
            self.faults.reach("batch.after_send")

            await asyncio.to_thread(
                self._pending.remove_triggers, tenant, alert_id, claim.trigger_keys
            )
            self.faults.reach("batch.after_remove")
            following = await asyncio.to_thread(
                self._pending.close_window, entry, claim.last_updated_at
            )
            logger.info(
                "flushed tenant=%s alert=%s notification=%s triggers=%d",
                tenant,
                alert_id,
                ident,
                len(claim.trigger_keys),
            )
        if following is not None:
            self._arm(following)
        return ident

    async def _make_claim(self, entry: PendingAlert) -> Claim | None:
        tenant, alert_id = entry.tenant, entry.alert_id
        triggers = await asyncio.to_thread(self._pending.triggers, tenant, alert_id)
        alert = await asyncio.to_thread(self._alerts.get, tenant, alert_id)
        if not triggers or alert is None:
            # Nothing to say (its triggers went out already), or the alert was
            # deleted: close the window without a notification.
            if alert is None:
                keys = [k for k, _ in triggers]
                await asyncio.to_thread(
                    self._pending.remove_triggers, tenant, alert_id, keys
                )
            await asyncio.to_thread(self._pending.drop_entry, tenant, alert_id)
            return None
        started = entry.first_seen_at.isoformat(timespec="microseconds")
        notification = AlertNotification(
            notification_id=notification_id(tenant, alert_id, started),
            tenant=tenant,
            alert_id=alert_id,
            alert_name=alert.definition.name,
            owner=alert.definition.owner,
            window_started_at=entry.first_seen_at,
            flushed_at=utcnow(),
            triggers=[t for _, t in triggers],
            state=alert.state,  # the state at flush time, not at first trigger
        )
        claim = Claim(
            body=notification.model_dump_json(),
            trigger_keys=[k for k, _ in triggers],
            last_updated_at=entry.last_updated_at.isoformat(timespec="microseconds"),
        )
        ok = await asyncio.to_thread(
            self._pending.claim, entry, claim, notification.notification_id
        )
        return claim if ok else None


# Ray accepts max_concurrency here; its type stubs do not list it.
@ray.remote(num_cpus=0, max_concurrency=1000)  # type: ignore[call-overload]
class AlertBatchActor:
    """One AlertBatch shard (``alert-batch/<k>``): timers over pending windows."""

    def __init__(self, settings: Settings, shard: int) -> None:
        configure_logging()
        self._shard = Shard(settings, shard)
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> int:
        """Re-arm the shard's open windows and start its sweep; idempotent."""
        if not self._tasks:
            self._tasks.append(asyncio.create_task(self._shard.sweep_forever()))
        return await self._shard.rearm_all()

    async def schedule(self, tenant: str, alert_id: str) -> None:
        """Arm (or keep) the timer of an alert whose window is open."""
        await self._shard.schedule(tenant, alert_id)

    async def flush(self, tenant: str, alert_id: str) -> str | None:
        """Flush one alert's window now if it is due (used by tests and sweeps)."""
        return await self._shard.flush(tenant, alert_id)

    async def arm_fault(self, point: str, times: int = 1) -> None:
        self._shard.faults.arm(point, times)

    async def stats(self) -> dict[str, Any]:
        return {
            "shard": self._shard.shard,
            "timers": self._shard.pending_timers(),
            "sent": self._shard.sent,
            "flush_errors": self._shard.flush_errors,
            "fault_hits": self._shard.faults.hits(),
        }


def shard_handle(settings: Settings, shard: int) -> Any:
    return AlertBatchActor.options(  # type: ignore[attr-defined]
        name=names.alert_batch(shard),
        namespace=settings.ray_namespace,
        get_if_exists=True,
        lifetime="detached",
        **actor_options(settings),
    ).remote(settings, shard)


async def start_shards(settings: Settings) -> list[Any]:
    """Create every shard (or find it) and have it re-arm its windows."""
    handles = [shard_handle(settings, k) for k in range(settings.alert_batch_shards)]
    await asyncio.gather(*(h.start.remote() for h in handles))
    return handles
