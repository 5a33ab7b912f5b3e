"""The Anthropic client and the retry policy around every model call.

The SDK's own retries are off (``max_retries=0``): tenacity retries here, on
named transient errors only (429, 529, 5xx, timeouts, dropped connections), with
jittered exponential backoff, a cap on attempts, and ``retry-after`` honoured up
to ``llm_retry_after_cap_seconds`` (the SDK would sleep as long as a server
asks). A spending-limit or other 4xx error is not retried.
"""

from __future__ import annotations

import logging
from typing import Any

import anthropic
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from shared.errors import ModelUnavailable, SpendingLimit
from shared.settings import Settings

logger = logging.getLogger(__name__)

# The offline model accepts any key; the SDK refuses to start without one.
OFFLINE_KEY = "offline-model"


def make_client(settings: Settings) -> anthropic.AsyncAnthropic:
    """An async client for the configured provider (Anthropic or the offline one)."""
    if settings.model_provider == "anthropic":
        key = settings.anthropic_api_key
        return anthropic.AsyncAnthropic(
            api_key=key.get_secret_value() if key else None,
            base_url=settings.model_base_url,
            max_retries=0,
            timeout=settings.llm_timeout_seconds,
        )
    return anthropic.AsyncAnthropic(
        api_key=OFFLINE_KEY,
        base_url=settings.model_base_url,
        max_retries=0,
        timeout=settings.llm_timeout_seconds,
    )


def is_transient(error: BaseException) -> bool:
    if isinstance(error, anthropic.APIConnectionError | anthropic.APITimeoutError):
        return True
    if isinstance(error, anthropic.APIStatusError):
        return error.status_code in (408, 409, 429) or error.status_code >= 500
    return False


def is_spending_limit(error: BaseException) -> bool:
    if not isinstance(error, anthropic.APIStatusError):
        return False
    text = str(error).lower()
    return (
        error.status_code in (402, 403)
        or "credit balance" in text
        or (error.status_code == 400 and "billing" in text)
    )


def _retry_after(error: BaseException | None) -> float | None:
    if not isinstance(error, anthropic.APIStatusError):
        return None
    value = error.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class _Wait:
    """Jittered exponential backoff, or the server's retry-after up to a cap."""

    def __init__(self, cap: float) -> None:
        self._cap = cap
        self._backoff = wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        asked = _retry_after(error)
        if asked is not None:
            return min(max(asked, 0.0), self._cap)
        return float(self._backoff(state))


def retrying(settings: Settings, on_retry: Any = None) -> AsyncRetrying:
    """The retry policy for one model call (``async for attempt in ...``)."""

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning(
            "model call retry attempt=%d error=%s",
            state.attempt_number,
            type(error).__name__,
        )
        if on_retry is not None:
            on_retry(state)

    return AsyncRetrying(
        retry=retry_if_exception(is_transient),
        wait=_Wait(settings.llm_retry_after_cap_seconds),
        stop=stop_after_attempt(settings.llm_max_attempts)
        | stop_after_delay(settings.llm_timeout_seconds * 3),
        before_sleep=log_retry,
        reraise=True,
    )


def translate(error: BaseException) -> BaseException:
    """Map an SDK error that survived the retries onto Watchword's tree."""
    if is_spending_limit(error):
        return SpendingLimit(str(error))
    if is_transient(error):
        return ModelUnavailable(f"{type(error).__name__}: {error}")
    return error
