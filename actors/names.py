"""Readable names of the named actors, so the dashboard reads as the design."""

from __future__ import annotations


def tenant_actor(tenant: str) -> str:
    return f"tenant/{tenant}"


def alert_batch(shard: int) -> str:
    return f"alert-batch/{shard}"


def evaluator(index: int) -> str:
    return f"evaluator/{index}"


def ingest(kind: str, index: int) -> str:
    return f"ingest/{kind}/{index}"
