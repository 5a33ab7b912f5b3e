"""The offline model's settings: latency, cache minimum and random faults.

Set at start from the command line and changed at run time through
``POST /_control/config``. Randomness (jitter, faults) comes from one seeded
``random.Random``, so a run with the same seed and the same requests in the
same order draws the same faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


@dataclass
class ModelConfig:
    """Run-time settings; times in milliseconds, rates as probabilities."""

    ttft_ms: float = 0.0
    total_ms: float = 0.0
    jitter_ms: float = 0.0
    cache_min_tokens: int = 1024
    rate_429: float = 0.0
    rate_529: float = 0.0
    rate_500: float = 0.0
    retry_after_s: float | None = None
    seed: int = 0


class ConfigUpdate(BaseModel):
    """A partial change of ``ModelConfig``; only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    ttft_ms: float | None = Field(default=None, ge=0)
    total_ms: float | None = Field(default=None, ge=0)
    jitter_ms: float | None = Field(default=None, ge=0)
    cache_min_tokens: int | None = Field(default=None, ge=0)
    rate_429: float | None = Field(default=None, ge=0, le=1)
    rate_529: float | None = Field(default=None, ge=0, le=1)
    rate_500: float | None = Field(default=None, ge=0, le=1)
    retry_after_s: float | None = Field(default=None, ge=0)
    seed: int | None = None


def latency(
    config: ModelConfig,
    rng: random.Random,
    ttft_ms: float | None = None,
    total_ms: float | None = None,
) -> tuple[float, float]:
    """Seconds to the first event and seconds in all, each jittered uniformly.

    ``ttft_ms`` and ``total_ms`` override the configured values (a scripted
    response may set them). The total is never shorter than the first event.
    """
    jitter = config.jitter_ms

    def draw(base: float) -> float:
        return max(0.0, base + (rng.uniform(-jitter, jitter) if jitter else 0.0))

    first = draw(config.ttft_ms if ttft_ms is None else ttft_ms)
    total = draw(config.total_ms if total_ms is None else total_ms)
    return first / 1000, max(first, total) / 1000


def random_fault(config: ModelConfig, rng: random.Random) -> int | None:
    """The status of a random fault for this request, or None (no fault)."""
    rates = ((429, config.rate_429), (529, config.rate_529), (500, config.rate_500))
    if not any(rate for _, rate in rates):
        return None
    draw = rng.random()
    for status, rate in rates:
        if draw < rate:
            return status
        draw -= rate
    return None
