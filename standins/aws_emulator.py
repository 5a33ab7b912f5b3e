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
        ["moto.server", "-H", host, "-p", str(port)],
        url,
        "/moto-api/",
        log_path,
    )
