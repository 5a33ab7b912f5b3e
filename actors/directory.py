"""Find the tenant actor of a communication, or create it, and hand it over.

Two routers asking at once get the same actor (named, ``get_if_exists``). A
call that meets a retiring or dead actor is retried on a fresh one; processing
is idempotent, so a call that ran but whose answer was lost is safe to repeat.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from actors import names
from actors.tenant_actor import tenant_handle
from shared.errors import Retiring
from shared.models.communications import Communication
from shared.models.evaluation import CommunicationOutcome
from shared.settings import Settings

logger = logging.getLogger(__name__)

_HAND_OVER = (Retiring, RayActorError, ActorDiedError, ActorUnavailableError)


class TenantDirectory:
    """Routes communications to tenant actors, caching their handles."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._handles: dict[str, Any] = {}

    def handle(self, tenant: str) -> Any:
        found = self._handles.get(tenant)
        if found is None:
            found = self._handles[tenant] = tenant_handle(self._settings, tenant)
        return found

    async def process(self, comm: Communication) -> CommunicationOutcome:
        """Have the tenant's actor process ``comm``; returns once it is durable."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(_HAND_OVER),
            wait=wait_exponential_jitter(multiplier=0.1, max=2.0),
            stop=stop_after_delay(60),
            reraise=True,
        ):
            with attempt:
                try:
                    outcome: CommunicationOutcome = await self.handle(
                        comm.tenant
                    ).process.remote(comm)
                except _HAND_OVER:
                    self._handles.pop(comm.tenant, None)
                    raise
                return outcome
        raise AssertionError("unreachable: tenacity reraises")


async def notify_alerts_changed(settings: Settings, tenant: str) -> bool:
    """Tell the tenant's live actor to reload its alerts; False if none is live."""
    try:
        # get_actor blocks on the GCS: keep it off the caller's event loop.
        handle = await asyncio.to_thread(
            ray.get_actor, names.tenant_actor(tenant), namespace=settings.ray_namespace
        )
    except ValueError:
        return False  # no live actor: the next one loads fresh alerts
    try:
        await handle.reload.remote()
    except RayActorError:
        return False
    return True
