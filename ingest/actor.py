"""``IngestActor``: the Ray actor around one ``Poller``.

The actor is async, so one process runs the receive loop, the visibility
heartbeat and every route in flight on one event loop. It reserves no CPU:
it waits on SQS and on tenant actors, it does not compute.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import ray

from actors.names import ingest as ingest_name
from ingest.poller import STAT_KEYS, Poller, Route
from shared.settings import Settings

logger = logging.getLogger(__name__)

RouterFactory = Callable[[Settings], Route]


def tenant_router(settings: Settings) -> Route:
    """The production route: hand the communication to its tenant's actor."""
    # Imported here, in the actor's process, so that importing ``ingest`` does
    # not pull in the tenant machinery (and tests can route elsewhere).
    from actors.directory import TenantDirectory

    return TenantDirectory(settings).process


@ray.remote(num_cpus=0)
class IngestActor:
    """Polls one input queue (``ingest/<kind>/<index>``) until stopped.

    ``route`` replaces the production route; it must pickle, since it travels
    to the actor's process with its arguments.
    """

    def __init__(
        self,
        settings: Settings,
        kind: str,
        index: int,
        route: Route | None = None,
        router_factory: RouterFactory = tenant_router,
    ) -> None:
        # The actor's process is an entry point: its info lines (one per
        # handled message) go to the worker log the dashboard shows.
        logging.basicConfig(level=logging.INFO)
        self._settings = settings
        self._kind = kind
        self._name = ingest_name(kind, index)
        self._route = route
        self._router_factory = router_factory
        self._poller: Poller | None = None

    async def start(self) -> None:
        """Start polling; a second call does nothing."""
        if self._poller is None:
            # Built here, on the actor's event loop, rather than in __init__:
            # the route may bind to the loop it is created on.
            route = self._route or self._router_factory(self._settings)
            self._poller = Poller(self._settings, self._kind, route, name=self._name)
        self._poller.start()

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Stop receiving; wait for work in flight, then release what is left."""
        if self._poller is not None:
            await self._poller.stop(drain_seconds)

    async def stats(self) -> dict[str, int]:
        """The poller's counters (zeros before ``start``)."""
        if self._poller is None:
            return dict.fromkeys(STAT_KEYS, 0)
        return self._poller.stats()

    async def arm_fault(self, point: str, times: int = 1) -> None:
        """Make the poller fail at a named point (tests of crash safety)."""
        if self._poller is None:
            raise RuntimeError("start the poller first")
        self._poller.faults.arm(point, times)

    async def fault_hits(self) -> dict[str, int]:
        return {} if self._poller is None else self._poller.faults.hits()
