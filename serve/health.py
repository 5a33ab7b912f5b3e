"""Readiness of the alert API: ``GET /readyz``.

Liveness (``/healthz``) says the process answers; readiness says a request
could succeed now: the alert table answers, and the Ray namespace where the
tenant actors live answers (the API tells a live tenant actor when its alerts
change). A load balancer sends traffic only to ready replicas.

Each check has a few seconds; a check that fails names the error's class,
never its message, since a message can quote a configuration value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import ray
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from shared.aws.clients import client
from shared.aws.names import ResourceNames
from shared.settings import Settings

CHECK_TIMEOUT_SECONDS = 3.0


class Readiness(BaseModel):
    """The answer of ``/readyz``: overall status and each check's result."""

    status: str
    checks: dict[str, str]


def readiness_router(settings: Settings) -> APIRouter:
    """The router with ``/readyz``; ``build_app`` includes it."""
    router = APIRouter(tags=["health"])

    @router.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A check failed."}},
    )
    async def readyz() -> JSONResponse:
        """Readiness: the alert table and the tenant actors' namespace answer."""
        table, namespace = await asyncio.gather(
            _check(lambda: _alert_table(settings)),
            _check(lambda: _namespace(settings)),
        )
        checks = {"dynamodb": table, "ray": namespace}
        ready = all(result == "ok" for result in checks.values())
        body = Readiness(status="ready" if ready else "not_ready", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    return router


async def _check(probe: Callable[[], None]) -> str:
    """Run a blocking probe in a thread: "ok", or why it failed."""
    try:
        await asyncio.wait_for(asyncio.to_thread(probe), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS:.0f}s"
    except Exception as err:
        return f"failed: {type(err).__name__}"
    return "ok"


def _alert_table(settings: Settings) -> None:
    table = ResourceNames.of(settings).alerts_table
    described: dict[str, Any] = client(settings, "dynamodb").describe_table(
        TableName=table
    )
    status = described["Table"]["TableStatus"]
    if status not in ("ACTIVE", "UPDATING"):
        raise TableNotActive(status)


def _namespace(settings: Settings) -> None:
    if not ray.is_initialized():
        # Served outside Ray (uvicorn, a test client): no tenant actor can be
        # told about a change, so the API is not fully ready.
        raise RayNotConnected()
    # One GCS call; it lists every namespace's named actors, since a Serve
    # replica's own namespace is Serve's, not the tenant actors'.
    ray.util.list_named_actors(all_namespaces=True)


class TableNotActive(RuntimeError):
    """The alert table exists but is being created or deleted."""

    def __init__(self, status: str) -> None:
        super().__init__(status)


class RayNotConnected(RuntimeError):
    """The process is not connected to a Ray cluster."""
