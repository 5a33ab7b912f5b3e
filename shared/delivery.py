"""Where flushed notifications go: the SQS output queue, and optionally a webhook.

Both sinks take the exact body the shard claimed and its notification id, so a
resend after a crash delivers the same bytes under the same id. Delivery is at
least once: a receiver deduplicates on ``notification_id``.

Webhook requests are signed. The ``Watchword-Signature`` header reads
``t=<unix seconds>,v1=<hex>``, where ``hex`` is HMAC-SHA256, keyed with the
shared secret, of ``"<t>.<body>"``. A receiver recomputes it, compares in
constant time, and rejects a ``t`` older than a few minutes (replay).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from typing import Protocol
from urllib.parse import urlparse

import httpx
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from shared.aws.clients import client
from shared.aws.names import ResourceNames
from shared.aws.payloads import wrap_if_large
from shared.settings import Settings

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Watchword-Signature"
ID_HEADER = "Watchword-Notification-Id"


class Sink(Protocol):
    def send(self, body: str, notification: str) -> None: ...


class OutputQueue:
    """Delivers notification bodies to the SQS output queue."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sqs = client(settings, "sqs")
        self._url = self._sqs.get_queue_url(
            QueueName=ResourceNames.of(settings).output_queue
        )["QueueUrl"]

    def send(self, body: str, notification: str) -> None:
        body = wrap_if_large(self._settings, body, f"notifications/{notification}.json")
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=body,
            MessageAttributes={
                "notification_id": {"DataType": "String", "StringValue": notification}
            },
        )


def sign(secret: str, body: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, body: str, header: str, tolerance: float = 300) -> bool:
    """Check a signature header as a receiver would (used by the tests too)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), header)


def _retryable(error: BaseException) -> bool:
    if isinstance(error, httpx.HTTPStatusError):
        status = error.response.status_code
        return status == 429 or status >= 500
    return isinstance(error, httpx.TransportError)


class WebhookSink:
    """POSTs each notification to an HTTPS endpoint, signed, with retries."""

    def __init__(self, settings: Settings) -> None:
        assert settings.webhook_url and settings.webhook_secret
        url = settings.webhook_url
        host = urlparse(url).hostname or ""
        if not url.startswith("https://") and host not in ("127.0.0.1", "localhost"):
            raise ValueError("the webhook must be https:// (plain http: loopback only)")
        self._url = url
        self._secret = settings.webhook_secret.get_secret_value()
        self._attempts = settings.webhook_max_attempts
        self._http = httpx.Client(timeout=settings.webhook_timeout_seconds)

    def send(self, body: str, notification: str) -> None:
        for attempt in Retrying(
            retry=retry_if_exception(_retryable),
            wait=wait_exponential_jitter(multiplier=0.5, max=10.0),
            stop=stop_after_attempt(self._attempts),
            reraise=True,
        ):
            with attempt:
                response = self._http.post(
                    self._url,
                    content=body.encode(),
                    headers={
                        "content-type": "application/json",
                        SIGNATURE_HEADER: sign(self._secret, body, int(time.time())),
                        ID_HEADER: notification,
                    },
                )
                response.raise_for_status()
        logger.info("webhook delivered notification=%s", notification)


class Fanout:
    """Every configured sink, in order; a failure stops the flush (it retries)."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    def send(self, body: str, notification: str) -> None:
        for sink in self.sinks:
            sink.send(body, notification)


def sinks_for(settings: Settings) -> Fanout:
    sinks: list[Sink] = [OutputQueue(settings)]
    if settings.webhook_url:
        sinks.append(WebhookSink(settings))
    return Fanout(sinks)
