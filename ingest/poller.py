"""The polling loop of one input queue, as a plain class the tests drive directly.

``Poller`` long-polls its queue, decodes each message and hands it to ``route``
(in production ``TenantDirectory.process``). Its promises, in the order the
architecture gives them:

- a message is deleted only after ``route`` returned, that is, after its tenant
  durably processed it; until then its visibility timeout is extended, so a
  slow evaluation is not delivered twice;
- a message that cannot be decoded, or that ``route`` rejects as permanently
  invalid, goes to the queue's dead-letter queue with the reason, then is
  deleted; nothing is dropped silently (``ingest.dead_letters`` lists them and
  sends them back);
- a body that is an S3 pointer (a communication over the SQS size limit) is
  resolved before it is validated; a pointer to nothing is a dead letter, S3
  being unreachable a retry;
- a retryable failure makes the message visible again after a backoff; after
  ``sqs_max_receive_count`` receives the queue's redrive policy dead-letters it;
- at most ``ingest_max_in_flight`` messages are in work: while full, it does
  not receive.

boto3 blocks, so every SQS call runs in a worker thread (``asyncio.to_thread``);
the event loop stays free for the routes in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from ingest.dead_letters import dead_letter_attributes
from ingest.decode import MAX_REASON, decode_message, unrouted_reason
from ingest.deleter import BatchDeleter
from shared import metrics
from shared.aws import payloads
from shared.aws.clients import client
from shared.aws.names import UNROUTED, ResourceNames
from shared.errors import InvalidMessage, PermanentError, TransientError
from shared.faults import Faults, InjectedFault
from shared.models import Communication, CommunicationOutcome
from shared.settings import Settings

logger = logging.getLogger(__name__)

Route = Callable[[Communication], Awaitable[object]]

SQS_BATCH = 10  # the most messages one SQS call receives or changes
MAX_BACKOFF_SECONDS = 60
# How long a stop waits for a receive in progress, beyond its long-poll wait.
RECEIVE_GRACE_SECONDS = 10.0


@dataclass(eq=False)
class _InWork:
    """A received message while it is being handled."""

    message_id: str
    receipt_handle: str
    receive_count: int
    # Set, under the visibility lock, once the message's visibility is no longer
    # ours to extend: it is deleted, dead-lettered, backed off or released.
    settled: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


STAT_KEYS = ("received", "processed", "dead_lettered", "retried", "in_flight")


@dataclass
class PollerStats:
    received: int = 0
    processed: int = 0
    dead_lettered: int = 0
    retried: int = 0


class Poller:
    """Receives, decodes, routes and deletes the messages of one input queue.

    ``sqs`` is a boto3 SQS client or anything with the same methods; ``route``
    is awaited once per valid communication and must return only once the
    communication is durably processed.
    """

    def __init__(
        self,
        settings: Settings,
        kind: str,
        route: Route,
        *,
        sqs: Any | None = None,
        name: str | None = None,
    ) -> None:
        names = ResourceNames.of(settings)
        self.kind = kind
        self.name = name or f"ingest/{kind}"
        self.queue_name = names.queue(kind)
        self.dlq_name = names.dlq(kind)
        self._settings = settings
        self._route = route
        self._sqs = sqs if sqs is not None else client(settings, "sqs")
        self._visibility = settings.sqs_visibility_timeout
        self._max_in_flight = settings.ingest_max_in_flight

        self._queue_url = ""
        self._dlq_url = ""
        # A set, not a dict by message id: a standard queue may deliver one
        # message twice at once, each copy with its own receipt handle.
        self._in_work: set[_InWork] = set()
        self._stats = PollerStats()
        self.faults = Faults()
        self._deleter: BatchDeleter | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # Woken when a slot frees up or a stop is asked for.
        self._wakeup = asyncio.Event()
        # Serializes visibility changes, so that a heartbeat extension never
        # lands after (and overrides) a backoff or a release of the same message.
        self._visibility_lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Begin polling in a task of the running event loop (idempotent)."""
        if self._loop_task is not None and not self._loop_task.done():
            return
        self._stopping.clear()
        self._loop_task = asyncio.create_task(self._run(), name=f"{self.name} loop")

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop receiving, give in-flight messages ``drain_seconds``, release the rest.

        A released message becomes visible again at once (visibility 0), so
        another poller picks it up without waiting for its timeout.
        """
        self._stopping.set()
        self._wakeup.set()
        if self._loop_task is not None:
            # The loop ends after the receive in progress, whose messages it
            # releases; the limit bounds a receive that hangs.
            limit = self._settings.sqs_wait_seconds + RECEIVE_GRACE_SECONDS
            done, _ = await asyncio.wait({self._loop_task}, timeout=limit)
            if not done:
                self._loop_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._loop_task

        tasks = {entry.task for entry in self._in_work if entry.task}
        if tasks:
            await asyncio.wait(tasks, timeout=drain_seconds)
        leftover = [e for e in self._in_work if e.task and not e.task.done()]
        for entry in leftover:
            entry.task.cancel()  # type: ignore[union-attr]
        await asyncio.gather(
            *(e.task for e in leftover if e.task), return_exceptions=True
        )
        if leftover:
            # Cancelling the route does not stop a tenant actor already at
            # work; if it finishes, the redelivery is applied idempotently.
            await self._settle(leftover, 0)
            logger.info("released queue=%s messages=%d", self.queue_name, len(leftover))
        self._in_work.difference_update(leftover)

        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task

    def stats(self) -> dict[str, int]:
        """Counters: received, processed, dead_lettered, retried, in_flight."""
        stats = dataclasses.asdict(self._stats)
        stats["in_flight"] = len(self._in_work)
        return stats

    # -- the loop ------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._poll()
        except Exception as err:
            if self._stopping.is_set() and isinstance(err, BotoCoreError | ClientError):
                return  # SQS calls retry until a stop; its last failure ends here
            # A bug: the stats stop moving and this line says why.
            logger.exception("poller failed queue=%s", self.queue_name)

    async def _poll(self) -> None:
        await self._resolve_queues()
        self._deleter = BatchDeleter(self._sqs, self._queue_url)
        if self._heartbeat_task is None or self._heartbeat_task.done():
            self._heartbeat_task = asyncio.create_task(
                self._heartbeat(), name=f"{self.name} heartbeat"
            )
        logger.info("polling queue=%s poller=%s", self.queue_name, self.name)

        while not self._stopping.is_set():
            room = self._max_in_flight - len(self._in_work)
            if room <= 0:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            messages = await self._receive(min(SQS_BATCH, room))
            if self._stopping.is_set():
                # Received during the stop: hand them straight back.
                await self._release_unstarted(messages)
                break
            for message in messages:
                self._begin(message)

    async def _resolve_queues(self) -> None:
        async for attempt in self._sqs_retrying():
            with attempt:
                queue = await self._call("get_queue_url", QueueName=self.queue_name)
                dlq = await self._call("get_queue_url", QueueName=self.dlq_name)
        self._queue_url = queue["QueueUrl"]
        self._dlq_url = dlq["QueueUrl"]

    async def _receive(self, count: int) -> list[dict[str, Any]]:
        async for attempt in self._sqs_retrying():
            with attempt:
                response = await self._call(
                    "receive_message",
                    QueueUrl=self._queue_url,
                    MaxNumberOfMessages=count,
                    WaitTimeSeconds=self._settings.sqs_wait_seconds,
                    VisibilityTimeout=self._visibility,
                    MessageSystemAttributeNames=[
                        "ApproximateReceiveCount",
                        "SentTimestamp",
                    ],
                    MessageAttributeNames=["All"],
                )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        metrics.record_received(self._settings, self.kind, self.queue_name, messages)
        return messages

    def _sqs_retrying(self) -> AsyncRetrying:
        # The emulator or SQS being unreachable is not a reason for a poller
        # to die: it keeps trying, backing off, until it is asked to stop.
        return AsyncRetrying(
            retry=retry_if_exception_type((BotoCoreError, ClientError)),
            wait=wait_exponential_jitter(multiplier=0.5, max=30, jitter=0.5),
            stop=lambda _state: self._stopping.is_set(),
            sleep=self._sleep_unless_stopping,
            before_sleep=self._log_sqs_failure,
            reraise=True,
        )

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _log_sqs_failure(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning(
            "sqs call failed queue=%s attempt=%d error=%s",
            self.queue_name,
            state.attempt_number,
            type(error).__name__,
        )

    def _begin(self, message: dict[str, Any]) -> None:
        entry = _InWork(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            receive_count=int(
                message.get("Attributes", {}).get("ApproximateReceiveCount", 1)
            ),
        )
        self._stats.received += 1
        self._in_work.add(entry)
        entry.task = asyncio.create_task(
            self._handle(entry, message), name=f"{self.name} {entry.message_id}"
        )

    # -- one message ---------------------------------------------------------

    async def _handle(self, entry: _InWork, message: dict[str, Any]) -> None:
        try:
            await self._handle_one(entry, message)
        except asyncio.CancelledError:
            # A stop ran out of patience; it releases the message itself.
            raise
        except Exception:
            # A failure of our own SQS calls (dead-letter, delete, backoff): the
            # message's visibility runs out and SQS delivers it again.
            logger.exception(
                "handling failed queue=%s sqs_id=%s", self.queue_name, entry.message_id
            )
            entry.settled = True
            self._in_work.discard(entry)
        else:
            self._in_work.discard(entry)
        finally:
            self._wakeup.set()

    async def _handle_one(self, entry: _InWork, message: dict[str, Any]) -> None:
        body: str = message.get("Body", "")
        attributes = message.get("MessageAttributes", {})
        try:
            if self.kind == UNROUTED:
                raise InvalidMessage(unrouted_reason(body, attributes))
            # In a thread: a large body takes a while to validate, and an S3
            # pointer is fetched with a blocking call.
            communication = await asyncio.to_thread(
                decode_message, body, attributes, self._fetch_payload
            )
        except InvalidMessage as err:
            await self._dead_letter(entry, message, err.reason)
            return
        except Exception as err:
            # S3 unreachable while resolving a pointer: the body may be fine.
            await self._retry_later(entry, err, ("-", "-"))
            return

        ids = (communication.tenant, communication.id)
        try:
            outcome = await self._route(communication)
        except PermanentError as err:
            # Retrying cannot help: the DLQ keeps it with the reason for a
            # person to look at. The log names the error's class only, in case
            # its message quotes the model or the communication.
            reason = f"{type(err).__name__}: {err}"[:MAX_REASON]
            await self._dead_letter(entry, message, reason, ids, type(err).__name__)
            return
        except Exception as err:
            await self._retry_later(entry, err, ids)
            return

        try:
            self.faults.reach("ingest.before_ack")
        except InjectedFault:
            # As if the poller died right here: the message is neither deleted
            # nor released, and comes back when its visibility timeout ends.
            return
        if not await self._delete(entry):
            # The receipt handle expired (visibility lost): SQS redelivers and
            # the tenant applies it once more, idempotently.
            logger.warning(
                "delete failed queue=%s sqs_id=%s tenant=%s communication=%s",
                self.queue_name,
                entry.message_id,
                *ids,
            )
            return
        self._stats.processed += 1
        metrics.record_processed(self._settings, self.kind)
        fired = len(outcome.fired) if isinstance(outcome, CommunicationOutcome) else 0
        logger.info(
            "processed queue=%s sqs_id=%s tenant=%s communication=%s receives=%d "
            "fired=%d",
            self.queue_name,
            entry.message_id,
            *ids,
            entry.receive_count,
            fired,
        )

    async def _dead_letter(
        self,
        entry: _InWork,
        message: dict[str, Any],
        reason: str,
        ids: tuple[str, str] | None = None,
        log_reason: str | None = None,
    ) -> None:
        # Send first, delete second: a crash in between leaves a duplicate in
        # the DLQ, never a lost message.
        await self._call(
            "send_message",
            QueueUrl=self._dlq_url,
            MessageBody=message.get("Body", ""),
            MessageAttributes=dead_letter_attributes(
                reason,
                self.queue_name,
                entry.message_id,
                entry.receive_count,
                message.get("MessageAttributes", {}),
            ),
        )
        deleted = await self._delete(entry)
        self._stats.dead_lettered += 1
        metrics.record_dead_lettered(self._settings, self.kind, reason)
        tenant, communication = ids or ("-", "-")
        logger.info(
            "dead-lettered queue=%s sqs_id=%s tenant=%s communication=%s deleted=%s "
            "reason=%s",
            self.queue_name,
            entry.message_id,
            tenant,
            communication,
            deleted,
            log_reason or reason,
        )

    def _fetch_payload(self, pointer: dict[str, str]) -> bytes:
        return payloads.fetch(self._settings, pointer)

    async def _retry_later(
        self, entry: _InWork, err: Exception, ids: tuple[str, str]
    ) -> None:
        delay = backoff_seconds(entry.receive_count)
        await self._settle([entry], delay)
        self._stats.retried += 1
        if entry.receive_count >= self._settings.sqs_max_receive_count:
            # SQS moves it to the DLQ at its next receive (the redrive policy).
            metrics.record_dead_lettered(self._settings, self.kind, "redrive")
        # An error outside the transient branch is a bug somewhere: keep its
        # traceback to fix it. Our own errors never carry communication text.
        log = logger.warning if isinstance(err, TransientError) else logger.exception
        log(
            "retrying queue=%s sqs_id=%s tenant=%s communication=%s receives=%d "
            "delay=%ds error=%s",
            self.queue_name,
            entry.message_id,
            *ids,
            entry.receive_count,
            delay,
            type(err).__name__,
        )

    async def _delete(self, entry: _InWork) -> bool:
        assert self._deleter is not None
        deleted = await self._deleter.delete(entry.receipt_handle)
        entry.settled = True
        return deleted

    # -- visibility ----------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Extend the visibility of every message in work, every third of it.

        ChangeMessageVisibility counts from now, so each beat grants a full
        timeout again; a third leaves two beats of margin for a slow call.
        """
        interval = self._visibility / 3
        while True:
            await asyncio.sleep(interval)
            async with self._visibility_lock:
                entries = [e for e in self._in_work if not e.settled]
                if not entries:
                    continue
                try:
                    await self._change_visibility(entries, self._visibility)
                except Exception:
                    # The heartbeat must outlive a failed beat; the next one
                    # comes well before the timeout runs out.
                    logger.exception(
                        "visibility extension failed queue=%s messages=%d",
                        self.queue_name,
                        len(entries),
                    )

    async def _settle(self, entries: Sequence[_InWork], seconds: int) -> None:
        """Hand messages back to the queue, visible again in ``seconds``."""
        async with self._visibility_lock:
            for entry in entries:
                entry.settled = True
            await self._change_visibility(entries, seconds)

    async def _release_unstarted(self, messages: list[dict[str, Any]]) -> None:
        entries = [
            _InWork(m["MessageId"], m["ReceiptHandle"], receive_count=0)
            for m in messages
        ]
        if entries:
            await self._settle(entries, 0)

    async def _change_visibility(
        self, entries: Sequence[_InWork], seconds: int
    ) -> None:
        for start in range(0, len(entries), SQS_BATCH):
            batch = entries[start : start + SQS_BATCH]
            response = await self._call(
                "change_message_visibility_batch",
                QueueUrl=self._queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": entry.receipt_handle,
                        "VisibilityTimeout": seconds,
                    }
                    for i, entry in enumerate(batch)
                ],
            )
            for failure in response.get("Failed", []):
                # Usually a message deleted between the snapshot and the call.
                logger.debug(
                    "visibility change refused queue=%s sqs_id=%s code=%s",
                    self.queue_name,
                    batch[int(failure["Id"])].message_id,
                    failure.get("Code"),
                )

    async def _call(self, method: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self._sqs, method), **kwargs)


def backoff_seconds(receive_count: int) -> int:
    """Seconds before a failed message is tried again: 2, 4, 8, ... up to 60."""
    return min(2 ** max(receive_count, 1), MAX_BACKOFF_SECONDS)
