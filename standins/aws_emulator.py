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


if __name__ == "__main__":
    import sys

    from moto import server

    _serialize_dynamodb()
    server.main(sys.argv[1:])
