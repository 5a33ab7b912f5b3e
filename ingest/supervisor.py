"""Start, stop and count the ingest pollers of a deployment.

Pollers are named, detached actors (``ingest/<kind>/<n>`` in the settings'
namespace): a second ``start_pollers`` finds the running ones instead of adding
more, and they outlive the command that started them.
"""

from __future__ import annotations

import logging

import ray
from ray.actor import ActorHandle

from actors.names import ingest as ingest_name
from ingest.actor import IngestActor
from ingest.poller import STAT_KEYS
from shared.aws.names import ResourceNames
from shared.settings import Settings

logger = logging.getLogger(__name__)

_PREFIX = "ingest/"


def start_pollers(settings: Settings) -> list[ActorHandle]:
    """Create (or find) ``pollers_per_queue`` pollers per input queue and start them."""
    handles = []
    for kind in ResourceNames.of(settings).input_kinds:
        for index in range(settings.pollers_per_queue):
            handles.append(
                IngestActor.options(  # type: ignore[attr-defined]
                    name=ingest_name(kind, index),
                    namespace=settings.ray_namespace,
                    lifetime="detached",
                    get_if_exists=True,
                    num_cpus=0,
                ).remote(settings, kind, index)
            )
    # ``start`` is idempotent, so pollers found running are left as they are.
    ray.get([handle.start.remote() for handle in handles])
    logger.info(
        "pollers started namespace=%s count=%d", settings.ray_namespace, len(handles)
    )
    return handles


def stop_pollers(settings: Settings, drain_seconds: float = 5.0) -> int:
    """Stop every poller of the namespace gracefully, then end its actor."""
    handles = _pollers(settings)
    # Stopped together: each waits up to its long-poll time for a receive.
    ray.get([handle.stop.remote(drain_seconds) for handle in handles])
    for handle in handles:
        # Detached actors live until killed; their messages are released.
        ray.kill(handle)
    logger.info(
        "pollers stopped namespace=%s count=%d", settings.ray_namespace, len(handles)
    )
    return len(handles)


def poller_stats(settings: Settings) -> dict[str, int]:
    """Counters summed over every poller of the namespace, plus ``pollers``."""
    handles = _pollers(settings)
    total = dict.fromkeys(STAT_KEYS, 0)
    every: list[dict[str, int]] = ray.get([handle.stats.remote() for handle in handles])
    for stats in every:
        for key, value in stats.items():
            total[key] = total.get(key, 0) + value
    total["pollers"] = len(handles)
    return total


def _pollers(settings: Settings) -> list[ActorHandle]:
    # Listing by name, not by range(pollers_per_queue), also finds pollers
    # started under an earlier, larger setting.
    handles = []
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == settings.ray_namespace and actor["name"].startswith(
            _PREFIX
        ):
            try:
                handles.append(
                    ray.get_actor(actor["name"], namespace=settings.ray_namespace)
                )
            except ValueError:
                continue  # it ended between the listing and the lookup
    return handles
