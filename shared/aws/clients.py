"""boto3 clients built from the settings, the same way for the emulator and AWS."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from shared.settings import Settings

# Dummy credentials for the local emulator only; against AWS boto3 finds the
# real ones (instance profile, environment, profile file) on its own.
_LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def client(settings: Settings, service: str) -> Any:
    """A boto3 client for ``service`` ('sqs', 'sns', 'dynamodb', 's3')."""
    return _cached_client(
        service, settings.aws_region, settings.aws_endpoint_url, settings.stack
    )


@lru_cache(maxsize=64)
def _cached_client(service: str, region: str, endpoint: str | None, stack: str) -> Any:
    # boto3 clients are thread-safe (sessions are not), so one per process and
    # endpoint is shared by every thread that asyncio.to_thread uses.
    config = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        max_pool_connections=50,
        connect_timeout=5,
        read_timeout=30,
    )
    extra: dict[str, Any] = _LOCAL_CREDENTIALS if stack == "local" else {}
    return boto3.session.Session().client(
        service, region_name=region, endpoint_url=endpoint, config=config, **extra
    )
