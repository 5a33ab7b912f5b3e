"""Shard assignment that is the same in every process.

Python's ``hash()`` of a string is salted per process, so two actors would
disagree on where an alert lives; blake2b of the key bytes never does.
"""

from __future__ import annotations

import hashlib


def stable_hash(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def shard_of(tenant: str, alert_id: str, shards: int) -> int:
    return stable_hash(tenant, alert_id) % shards
