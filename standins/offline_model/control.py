"""The offline model's state and the ``/_control`` endpoints tests drive it with.

=========================  =================================================
endpoint                   what it does
=========================  =================================================
POST /_control/script      queue scripted responses (see ``script.py``)
GET /_control/script       the queued responses per match
DELETE /_control/script    drop every script, or one with ``?match=``
GET /_control/requests     recorded requests, oldest first; ``?match=``
                           (substring of the request text) and ``?limit=N``
                           (the last N, default 100); the last 1,000 are kept
POST /_control/config      change latency, cache minimum, fault rates, seed
GET /_control/config       the current settings
GET /_control/stats        counters: requests, errors, tokens, concurrency
DELETE /_control/cache     forget every prompt-cache entry
=========================  =================================================

A recorded request is ``{"id", "received_at", "answered_at", "stream",
"scripted", "status", "usage", "body"}`` (times in seconds since the epoch);
``status`` and ``usage`` are filled in once the answer is known (``usage``
stays null for errors and timeouts), ``answered_at`` once its last byte is
sent.
"""

from __future__ import annotations

import html
import random
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from fastapi import APIRouter, Query

from standins.offline_model.cache import CacheUse, PromptCache
from standins.offline_model.config import ConfigUpdate, ModelConfig
from standins.offline_model.script import Script, ScriptBook

LOG_SIZE = 1000


class RequestLog:
    """The last ``size`` requests, with their text for matching."""

    def __init__(self, size: int = LOG_SIZE) -> None:
        self._records: deque[tuple[str, dict[str, Any]]] = deque(maxlen=size)

    def add(
        self, msg_id: str, text: str, body: dict[str, Any], scripted: bool
    ) -> dict[str, Any]:
        """Record a request; the record is returned to be completed later."""
        record: dict[str, Any] = {
            "id": msg_id,
            "received_at": time.time(),
            "stream": bool(body.get("stream")),
            "scripted": scripted,
            "status": None,
            "usage": None,
            "answered_at": None,
            "body": body,
        }
        self._records.append((f"{text}\n{html.unescape(text)}", record))
        return record

    def query(self, match: str | None, limit: int) -> list[dict[str, Any]]:
        found = [r for t, r in self._records if match is None or match in t]
        return found[-limit:] if limit > 0 else []


@dataclass
class Stats:
    """Counters since the server started."""

    requests: int = 0
    responses: int = 0
    scripted: int = 0
    timeouts: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_reads: int = 0
    cache_writes: int = 0

    def enter(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        self.in_flight -= 1

    def answered(self, use: CacheUse, output_tokens: int) -> None:
        self.responses += 1
        self.input_tokens += use.input_tokens
        self.output_tokens += output_tokens
        self.cache_read_input_tokens += use.read_tokens
        self.cache_creation_input_tokens += use.write_tokens
        self.cache_reads += bool(use.read_tokens)
        self.cache_writes += bool(use.write_tokens)

    def as_dict(self) -> dict[str, Any]:
        counts = asdict(self)
        counts["errors"] = {str(k): v for k, v in self.errors.items()}
        return counts


@dataclass
class ModelState:
    """Everything the server holds between requests."""

    config: ModelConfig
    cache: PromptCache
    rng: random.Random
    scripts: ScriptBook = field(default_factory=ScriptBook)
    log: RequestLog = field(default_factory=RequestLog)
    stats: Stats = field(default_factory=Stats)

    @classmethod
    def from_config(
        cls, config: ModelConfig, clock: Any = time.monotonic
    ) -> ModelState:
        return cls(
            config=config,
            cache=PromptCache(config.cache_min_tokens, clock),
            rng=random.Random(config.seed),
        )


def control_router(state: ModelState) -> APIRouter:
    """The ``/_control`` endpoints over ``state``."""
    # Every route is async: it then runs on the event loop, like the message
    # handler, and never in a worker thread alongside it.
    router = APIRouter(prefix="/_control")

    @router.post("/script")
    async def add_script(script: Script) -> dict[str, Any]:
        """Queue scripted responses for requests containing ``match``."""
        return {"match": script.match, "queued": state.scripts.add(script)}

    @router.get("/script")
    async def list_scripts() -> dict[str, int]:
        """The number of queued responses per match."""
        return state.scripts.pending()

    @router.delete("/script")
    async def clear_scripts(match: str | None = None) -> dict[str, int]:
        """Drop every queued script, or only the one for ``match``."""
        return {"dropped": state.scripts.clear(match)}

    @router.get("/requests")
    async def recorded_requests(
        match: str | None = None, limit: int = Query(default=100, ge=0)
    ) -> dict[str, Any]:
        """The recorded requests containing ``match``, oldest first."""
        return {"requests": state.log.query(match, limit)}

    @router.get("/config")
    async def read_config() -> dict[str, Any]:
        """The current settings."""
        return asdict(state.config)

    @router.post("/config")
    async def change_config(update: ConfigUpdate) -> dict[str, Any]:
        """Change some settings; the others stay as they are."""
        for key, value in update.model_dump(exclude_unset=True).items():
            if value is not None or key == "retry_after_s":
                setattr(state.config, key, value)
        state.cache.min_tokens = state.config.cache_min_tokens
        if "seed" in update.model_fields_set:
            state.rng.seed(state.config.seed)
        return asdict(state.config)

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        """Counters since the server started."""
        return state.stats.as_dict() | {"cache_entries": len(state.cache)}

    @router.delete("/cache")
    async def clear_cache() -> dict[str, int]:
        """Forget every prompt-cache entry."""
        return {"cleared": state.cache.clear()}

    return router
