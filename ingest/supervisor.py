"""Start, stop and count the ingest pollers of a deployment.

Pollers are named, detached actors (``ingest/<kind>/<n>`` in the settings'
namespace): a second ``start_pollers`` finds the running ones instead of adding
more, and they outlive the command that started them. ``scale_pollers`` changes
how many poll a queue while everything runs: it adds pollers, or stops the
extra ones gracefully (they finish or release what they hold) before they end.
"""

from __future__ import annotations

import logging

import ray
from ray.actor import ActorHandle

from actors.names import ingest as ingest_name
from actors.placement import actor_options
from ingest.actor import IngestActor
from ingest.poller import STAT_KEYS
from shared.aws.names import ResourceNames
from shared.settings import Settings

logger = logging.getLogger(__name__)

_PREFIX = "ingest/"


def start_pollers(settings: Settings) -> list[ActorHandle]:
    """Create (or find) ``pollers_per_queue`` pollers per input queue and start them."""
    handles = [
        _poller(settings, kind, index)
        for kind in ResourceNames.of(settings).input_kinds
        for index in range(settings.pollers_per_queue)
    ]
    # ``start`` is idempotent, so pollers found running are left as they are.
    ray.get([handle.start.remote() for handle in handles])
    logger.info(
        "pollers started namespace=%s count=%d", settings.ray_namespace, len(handles)
    )
    return handles


def stop_pollers(settings: Settings, drain_seconds: float = 5.0) -> int:
    """Stop every poller of the namespace gracefully, then end its actor."""
    handles = [handle for _, _, handle in _pollers(settings)]
    _stop(handles, drain_seconds)
    logger.info(
        "pollers stopped namespace=%s count=%d", settings.ray_namespace, len(handles)
    )
    return len(handles)


def scale_pollers(
    settings: Settings, kind: str | None, count: int, drain_seconds: float = 5.0
) -> dict[str, int]:
    """Run exactly ``count`` pollers on one queue kind (None: on every one).

    Pollers ``0 .. count-1`` are started where missing (a dead one comes
    back); those numbered ``count`` and above are stopped gracefully. Returns
    the number now polling, per kind.
    """
    kinds = ResourceNames.of(settings).input_kinds
    if kind is not None and kind not in kinds:
        raise ValueError(f"unknown queue kind {kind!r}; one of {', '.join(kinds)}")
    if count < 0:
        raise ValueError(f"a poller count cannot be negative ({count})")
    chosen = kinds if kind is None else (kind,)
    pollers = _pollers(settings)
    running = {(k, i) for k, i, _ in pollers}
    extra = [h for k, i, h in pollers if k in chosen and i >= count]
    wanted = [(k, i) for k in chosen for i in range(count)]
    # Every wanted poller is found or created and started (``start`` is
    # idempotent and revives a loop that ended), before the extra ones stop:
    # a queue going from 2 pollers to 1 is never left with none.
    ray.get([_poller(settings, k, i).start.remote() for k, i in wanted])
    _stop(extra, drain_seconds)
    logger.info(
        "pollers scaled namespace=%s kinds=%s count=%d added=%d stopped=%d",
        settings.ray_namespace,
        ",".join(chosen),
        count,
        len(set(wanted) - running),
        len(extra),
    )
    return {k: count for k in chosen}


def poller_counts(settings: Settings) -> dict[str, int]:
    """How many pollers each input queue kind has now."""
    counts = dict.fromkeys(ResourceNames.of(settings).input_kinds, 0)
    for kind, _, _ in _pollers(settings):
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def poller_stats(settings: Settings) -> dict[str, int]:
    """Counters summed over every poller of the namespace, plus ``pollers``."""
    handles = [handle for _, _, handle in _pollers(settings)]
    total = dict.fromkeys(STAT_KEYS, 0)
    every: list[dict[str, int]] = ray.get([handle.stats.remote() for handle in handles])
    for stats in every:
        for key, value in stats.items():
            total[key] = total.get(key, 0) + value
    total["pollers"] = len(handles)
    return total


def _poller(settings: Settings, kind: str, index: int) -> ActorHandle:
    return IngestActor.options(  # type: ignore[attr-defined]
        name=ingest_name(kind, index),
        namespace=settings.ray_namespace,
        lifetime="detached",
        get_if_exists=True,
        **actor_options(settings),
    ).remote(settings, kind, index)


def _stop(handles: list[ActorHandle], drain_seconds: float) -> None:
    # Stopped together: each waits up to its long-poll time for a receive.
    ray.get([handle.stop.remote(drain_seconds) for handle in handles])
    for handle in handles:
        # Detached actors live until killed; their messages are released.
        ray.kill(handle)


def _pollers(settings: Settings) -> list[tuple[str, int, ActorHandle]]:
    """(kind, index, handle) of every poller of the namespace."""
    # Listing by name, not by range(pollers_per_queue), also finds pollers
    # started under an earlier, larger setting or scaled since.
    found = []
    for actor in ray.util.list_named_actors(all_namespaces=True):
        name = actor["name"]
        if actor["namespace"] != settings.ray_namespace or not name.startswith(_PREFIX):
            continue
        kind, _, index = name.removeprefix(_PREFIX).rpartition("/")
        if not index.isdigit():
            continue
        try:
            handle = ray.get_actor(name, namespace=settings.ray_namespace)
        except ValueError:
            continue  # it ended between the listing and the lookup
        found.append((kind, int(index), handle))
    return found
