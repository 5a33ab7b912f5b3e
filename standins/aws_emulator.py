"""The local AWS: moto in server mode (SQS, SNS, DynamoDB, S3) over HTTP."""

from __future__ import annotations

from pathlib import Path

from standins.process import ServerProcess, start_server


def start_emulator(
    host: str = "127.0.0.1", port: int = 4566, log_path: Path | None = None
) -> ServerProcess:
    """Start moto's server on ``host:port``; every boto3 call then goes there."""
    url = f"http://{host}:{port}"
    return start_server(
        "aws-emulator",
        ["standins.aws_emulator", "-H", host, "-p", str(port)],
        url,
        "/moto-api/",
        log_path,
    )


def _serialize_dynamodb() -> None:
    """Run the emulator's DynamoDB operations one at a time.

    moto serves each request on its own thread, and its TransactWriteItems
    snapshots the tables it touches and, when the transaction is cancelled,
    puts the snapshots back: any write another thread made meanwhile is lost
    (a version update, a ledger item). On AWS a cancelled transaction changes
    nothing. One lock over the backend's methods gives that isolation back;
    DynamoDB calls never wait on anything, so it costs little.
    """
    import functools
    import inspect
    import threading
    from collections.abc import Callable
    from typing import Any

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()

    def serialized(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return call

    for name, method in list(vars(DynamoDBBackend).items()):
        if not name.startswith("_") and inspect.isfunction(method):
            setattr(DynamoDBBackend, name, serialized(method))


def _cheap_sqs_retention_check() -> None:
    """Check a received message's retention without the queue's statistics.

    moto's check reads every queue attribute, its message counts included,
    for each message a receive looks at: a receive costs the square of the
    queue's depth, and a test that publishes a few hundred messages spends
    most of its time there. The retention period alone is what it needs.
    """
    from typing import Any

    from moto.core.utils import unix_time
    from moto.sqs.models import Message, SQSBackend

    def retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
        queue: Any = self.get_queue(queue_name)  # set from its attributes
        period = int(queue.message_retention_period)
        return period + (message.sent_timestamp or 0) / 1000 > unix_time()

    backend: Any = SQSBackend
    backend.is_message_valid_based_on_retention_period = retained


if __name__ == "__main__":
    import logging
    import sys

    from moto import server

    # One line per request says nothing a test needs, and costs a tenth of
    # the emulator's time under load.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _serialize_dynamodb()
    _cheap_sqs_retention_check()
    server.main(sys.argv[1:])
