"""Where Watchword's actors may run.

They wait on the network, so they reserve no CPU. On a cluster that alone
would leave the autoscaler blind to them: with ``actor_resource`` set, each
actor also takes one unit of that custom resource, which only worker nodes
advertise (see cluster.yaml), so more active tenants mean more workers.
"""

from __future__ import annotations

from typing import Any

from shared.settings import Settings


def actor_options(settings: Settings) -> dict[str, Any]:
    """Options every Watchword actor is created with (besides name and namespace)."""
    options: dict[str, Any] = {"num_cpus": 0}
    if settings.actor_resource:
        options["resources"] = {settings.actor_resource: 1}
    return options
