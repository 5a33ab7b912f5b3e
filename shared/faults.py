"""Named fault points, for tests that must crash the code at an exact place.

A component calls ``faults.reach("tenant.after_state_write")`` at the points
where a crash matters for correctness. Normally that only counts the visit. A
test arms a point (through the owning actor's ``arm_fault``) so that its next
visits raise ``InjectedFault``, then asserts from ``hits()`` that the point was
reached, so that a fault test cannot pass by never getting there.
"""

from __future__ import annotations

from collections import Counter


class InjectedFault(RuntimeError):
    """Raised at an armed fault point."""


class Faults:
    def __init__(self) -> None:
        self._armed: Counter[str] = Counter()
        self._hits: Counter[str] = Counter()

    def arm(self, point: str, times: int = 1) -> None:
        self._armed[point] += times

    def reach(self, point: str) -> None:
        self._hits[point] += 1
        if self._armed[point] > 0:
            self._armed[point] -= 1
            raise InjectedFault(point)

    def hits(self) -> dict[str, int]:
        return dict(self._hits)
