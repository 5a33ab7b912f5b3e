"""What the routes of the alert API share: stores, the dialogue, the key check."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ray

from actors.directory import notify_alerts_changed
from serve.auth import AuthorizedTenant
from serve.dialogue import Dialogue, Notify
from shared.aws.alert_store import AlertStore
from shared.aws.evaluation_store import EvaluationStore
from shared.aws.tenant_store import TenantStore
from shared.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """One replica's stores and helpers, built once by ``build_app``."""

    settings: Settings
    alerts: AlertStore
    evaluations: EvaluationStore
    tenants: TenantStore
    dialogue: Dialogue
    guard: AuthorizedTenant
    notify: Notify


async def notify_tenant(settings: Settings, tenant: str) -> None:
    """Tell the tenant's live actor, if any, to reload its alerts."""
    if not ray.is_initialized():
        # Served without Ray (uvicorn, TestClient): no tenant actor can be
        # live, and a lookup would start a local Ray instance of its own.
        return
    try:
        await notify_alerts_changed(settings, tenant)
    except Exception:
        # The change is stored, so the answer stays a success: a client that
        # retried a creation would make a second alert. A live actor that
        # missed the notice keeps its cached alerts until it next reloads or
        # retires.
        logger.exception("reload notice failed tenant=%s", tenant)
