"""Prompt-cache emulation, with Anthropic's semantics and an injectable clock.

Layout
    A request is read as blocks in the order Anthropic caches them: each tool,
    then each system block, then each content block of each message (a string
    ``system`` or ``content`` is one text block). A prefix is identified by the
    SHA-256 of its blocks' canonical JSON (keys sorted, ``cache_control``
    left out, message blocks with their role), keyed together with the model.

Tokens
    ``ceil(chars / 4)`` of the prefix, where a text block counts the characters
    of its text and any other block (a tool, tool_use, tool_result) those of its
    ``json.dumps`` without ``cache_control``. That is the arithmetic of
    ``shared.llm.prompts.prefix_tokens_estimate``, rounded up instead of down.

Breakpoints
    Each block carrying ``cache_control`` ends a candidate prefix, kept for
    ``ttl`` (``"1h"`` → one hour, anything else → five minutes).

One request, as it arrives
    * read: the longest breakpoint prefix with a readable, unexpired entry;
      its tokens are ``cache_read_input_tokens``, and reading renews the entry;
    * write: when the last breakpoint prefix is longer than what was read and
      at least ``min_tokens`` long, it is written, together with every shorter
      breakpoint prefix past the read one that is long enough; the tokens from
      the end of the read prefix to the last breakpoint are
      ``cache_creation_input_tokens``;
    * the rest are ``input_tokens``. Prefixes under ``min_tokens`` are never
      cached.

Readable only once the response begins
    A write is pending until ``begin`` is called, when the response that wrote
    it begins (``message_start`` of a stream, or the same moment of a plain
    response). A request that arrives before then finds no entry, so it writes
    the same prefix again and pays for it: concurrent requests with a cold
    prefix all write. An entry lives ``ttl`` seconds from its last use.

Simplifications: only the breakpoints themselves are looked up (Anthropic also
looks back up to 20 blocks), and ``tool_choice`` is not part of the key.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

FIVE_MINUTES = 300.0
ONE_HOUR = 3600.0
_PURGE_EVERY = 1000


@dataclass(frozen=True)
class Breakpoint:
    """A cacheable prefix: its identity, its length in tokens and its ttl."""

    key: str
    tokens: int
    ttl: float


@dataclass(frozen=True)
class Layout:
    """A request's length in tokens and its breakpoints, shortest first."""

    total_tokens: int
    breakpoints: tuple[Breakpoint, ...]


@dataclass(frozen=True)
class CacheUse:
    """How one request's input tokens split between cache and plain input."""

    model: str
    input_tokens: int
    read_tokens: int
    write_tokens: int
    writes: tuple[Breakpoint, ...] = ()

    @property
    def write_ttl(self) -> float | None:
        return self.writes[-1].ttl if self.writes else None


def tokens(chars: int) -> int:
    return math.ceil(chars / 4)


def _blocks(body: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Every cacheable block in order, with its role (None for tools, system)."""
    for tool in body.get("tools") or []:
        yield tool, None
    system = body.get("system")
    if isinstance(system, str):
        yield {"type": "text", "text": system}, None
    elif isinstance(system, list):
        yield from ((block, None) for block in system)
    for message in body.get("messages") or []:
        content = message.get("content")
        role = str(message.get("role"))
        if isinstance(content, str):
            yield {"type": "text", "text": content}, role
        elif isinstance(content, list):
            yield from ((block, role) for block in content)


def _ttl(cache_control: Any) -> float:
    ttl = cache_control.get("ttl") if isinstance(cache_control, dict) else None
    return ONE_HOUR if ttl == "1h" else FIVE_MINUTES


def layout(body: dict[str, Any]) -> Layout:
    """The prefix tokens and breakpoints of a Messages API request body."""
    digest = hashlib.sha256()
    chars = 0
    breakpoints: list[Breakpoint] = []
    for block, role in _blocks(body):
        plain = {k: v for k, v in block.items() if k != "cache_control"}
        if plain.get("type") == "text" and isinstance(plain.get("text"), str):
            chars += len(plain["text"])
        else:
            chars += len(json.dumps(plain))
        identity = plain if role is None else {"role": role, **plain}
        digest.update(json.dumps(identity, sort_keys=True).encode())
        digest.update(b"\x1e")
        if block.get("cache_control"):
            breakpoints.append(
                Breakpoint(
                    digest.hexdigest(), tokens(chars), _ttl(block["cache_control"])
                )
            )
    return Layout(tokens(chars), tuple(breakpoints))


@dataclass
class _Entry:
    ttl: float
    expires_at: float


class PromptCache:
    """The cache entries of one server, keyed on (model, prefix hash)."""

    def __init__(
        self, min_tokens: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.min_tokens = min_tokens
        self._clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._plans = 0

    def plan(self, model: str, request: Layout) -> CacheUse:
        """Split a request's tokens into read, written and plain input."""
        now = self._clock()
        self._plans += 1
        if self._plans % _PURGE_EVERY == 0:
            self._purge(now)

        read: Breakpoint | None = None
        for point in reversed(request.breakpoints):
            entry = self._entries.get((model, point.key))
            if entry is not None and entry.expires_at > now:
                entry.expires_at = now + entry.ttl
                read = point
                break
        read_tokens = read.tokens if read else 0

        writes = tuple(
            point
            for point in request.breakpoints
            if point.tokens > read_tokens and point.tokens >= self.min_tokens
        )
        write_tokens = writes[-1].tokens - read_tokens if writes else 0
        return CacheUse(
            model=model,
            input_tokens=request.total_tokens - read_tokens - write_tokens,
            read_tokens=read_tokens,
            write_tokens=write_tokens,
            writes=writes,
        )

    def begin(self, use: CacheUse) -> None:
        """The response that made ``use`` begins: its writes become readable."""
        now = self._clock()
        for point in use.writes:
            self._entries[(use.model, point.key)] = _Entry(point.ttl, now + point.ttl)

    def readable(self, model: str, key: str) -> bool:
        entry = self._entries.get((model, key))
        return entry is not None and entry.expires_at > self._clock()

    def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        return count

    def __len__(self) -> int:
        now = self._clock()
        return sum(1 for e in self._entries.values() if e.expires_at > now)

    def _purge(self, now: float) -> None:
        expired = [k for k, e in self._entries.items() if e.expires_at <= now]
        for key in expired:
            del self._entries[key]
