"""Shard assignment is stable across processes and spreads evenly."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

from actors.hashing import shard_of


def test_shard_assignment_is_the_same_in_another_process() -> None:
    keys = [("tenant-acme", f"al-{i}") for i in range(50)]
    here = [shard_of(t, a, 8) for t, a in keys]
    code = (
        "from actors.hashing import shard_of;"
        f"print([shard_of(t, a, 8) for t, a in {keys!r}])"
    )
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert there == str(here)


def test_a_thousand_alerts_spread_within_twenty_percent_of_even() -> None:
    shards = 8
    counts = Counter(
        shard_of(f"tenant-{i % 7}", f"al-{i:06d}", shards) for i in range(1000)
    )
    even = 1000 / shards
    assert set(counts) == set(range(shards))
    assert all(abs(n - even) <= 0.2 * even for n in counts.values()), counts
