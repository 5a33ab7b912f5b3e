"""Watchword's Ray actors: tenants, the evaluator pool and AlertBatch shards."""
