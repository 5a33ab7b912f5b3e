"""Deleting finished messages in batches, each caller waiting for its own result."""

from __future__ import annotations

import asyncio
from typing import Any

SQS_BATCH = 10  # the most entries one DeleteMessageBatch takes


class BatchDeleter:
    """Deletes the receipt handles of many concurrent callers, ten to a call.

    Handlers that finish together (a burst of short evaluations) share one
    DeleteMessageBatch call instead of one DeleteMessage each; a handler waits
    for its own outcome, so it counts a message as processed only once it is
    gone from the queue.
    """

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._pending: list[tuple[str, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def delete(self, receipt_handle: str) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((receipt_handle, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        # Shielded: a cancelled waiter must not cancel the batch it joined.
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        # One turn of the loop lets handlers finishing at the same moment join.
        await asyncio.sleep(0)
        while self._pending:
            batch, self._pending = self._pending[:SQS_BATCH], self._pending[SQS_BATCH:]
            try:
                response = await asyncio.to_thread(
                    self._sqs.delete_message_batch,
                    QueueUrl=self._queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": handle}
                        for i, (handle, _) in enumerate(batch)
                    ],
                )
            except Exception as err:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            failed = {failure["Id"] for failure in response.get("Failed", [])}
            for i, (_, future) in enumerate(batch):
                if not future.done():
                    future.set_result(str(i) not in failed)
