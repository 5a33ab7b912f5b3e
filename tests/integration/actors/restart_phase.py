"""One life of a Ray instance, run in a subprocess by test_shard_restart.

``arm``: start a shard, open a window and have the shard arm its timer, then
shut Ray down before the window ends (the timer dies with it).
``recover``: start a fresh Ray and its shards, and wait for the shard to flush
what it found in DynamoDB. Settings come from WATCHWORD_* variables.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime

import ray

from actors.alert_batch import shard_handle, start_shards
from shared.aws.pending_store import PendingStore
from shared.models.notifications import Trigger
from shared.settings import Settings


def main(phase: str, tenant: str, alert_id: str) -> None:
    settings = Settings()
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(
        address="local",  # a new instance, never the test session's
        num_cpus=1,
        include_dashboard=False,
        namespace=settings.ray_namespace,
        log_to_driver=False,
    )
    asyncio.run(start_shards(settings))
    shard = 0
    if phase == "arm":
        now = datetime.now(UTC)
        trigger = Trigger(
            communication_id="email-restart",
            data_type="email",
            occurred_at=now,
            received_at=now,
            reason="scripted",
        )
        PendingStore(settings).add_trigger(tenant, alert_id, shard, 8.0, trigger, {})
        ray.get(shard_handle(settings, shard).schedule.remote(tenant, alert_id))
        stats = ray.get(shard_handle(settings, shard).stats.remote())
        print(f"armed timers={stats['timers']} sent={stats['sent']}", flush=True)
    else:
        deadline = time.monotonic() + 30
        sent = 0
        while time.monotonic() < deadline and not sent:
            sent = ray.get(shard_handle(settings, shard).stats.remote())["sent"]
            time.sleep(0.2)
        print(f"recovered sent={sent}", flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:4])
