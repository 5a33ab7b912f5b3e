"""The alert API as a plain FastAPI app: ``build_app(settings)``.

It runs the same under Ray Serve (``serve.deployment``) and under uvicorn or
Starlette's TestClient. Every route is scoped by the tenant in its path.

Failures never surface as 500: the model being unreachable is a 503, the model
answering outside its contract a 502, the alert store being unreachable a 503,
and a request the model refuses a 422 with its reason.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anthropic
import ray
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors.directory import notify_alerts_changed
from serve.schemas import (
    ALERT_ID_PATTERN,
    TENANT_PATTERN,
    AlertCreate,
    AlertPage,
    AlertPublic,
    Clarification,
    ErrorBody,
)
from shared.aws.alert_store import AlertStore
from shared.errors import ModelAnswerInvalid, ModelUnavailable, SpendingLimit
from shared.llm.client import make_client
from shared.llm.creation import create_from_prompt
from shared.models.alerts import AlertDefinition
from shared.settings import Settings

logger = logging.getLogger(__name__)

Tenant = Annotated[
    str,
    Path(
        pattern=TENANT_PATTERN,
        description="The tenant's id: letters, digits, '_', '.', '-'; 64 at most.",
        examples=["acme"],
    ),
]
AlertId = Annotated[str, Path(pattern=ALERT_ID_PATTERN, examples=["al-3f9c2a7b1d04"])]

ERRORS: dict[int | str, dict[str, Any]] = {
    502: {
        "model": ErrorBody,
        "description": "The model answered outside its contract.",
    },
    503: {"model": ErrorBody, "description": "The model or the store is unreachable."},
}


def build_app(
    settings: Settings, client: anthropic.AsyncAnthropic | None = None
) -> FastAPI:
    """The alert API; ``client`` replaces the model client made from settings."""
    store = AlertStore(settings)
    model: dict[str, anthropic.AsyncAnthropic] = {}

    def model_client() -> anthropic.AsyncAnthropic:
        # Made on first use, inside the server's event loop: the SDK's HTTP
        # pool belongs to the loop that opened its connections.
        if "client" not in model:
            model["client"] = client or make_client(settings)
        return model["client"]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        made = model.pop("client", None)
        if made is not None and client is None:
            await made.close()

    app = FastAPI(
        title="Watchword alert API",
        summary="Standing plain-language alerts over calls, emails and CRM changes.",
        version="1",
        lifespan=lifespan,
    )
    app.add_middleware(RequestLog)
    _add_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the API process answers."""
        return {"status": "ok"}

    @app.post(
        "/v1/tenants/{tenant}/alerts",
        status_code=201,
        response_model=AlertPublic,
        tags=["alerts"],
        responses={
            200: {
                "model": Clarification,
                "description": "The request is ambiguous; nothing was stored.",
            },
            422: {
                "model": ErrorBody,
                "description": (
                    "The model refused the request (error 'refused'), or the body"
                    " or tenant is invalid (FastAPI's validation detail)."
                ),
            },
            **ERRORS,
        },
    )
    async def create_alert(
        tenant: Tenant, body: AlertCreate, request: Request
    ) -> AlertPublic | JSONResponse:
        """Turn a plain-language request into a stored alert, or ask what it means."""
        # TODO(context): pass the tenant's context passages once a context
        # store exists; until then the model knows only the request.
        turn = await create_from_prompt(settings, model_client(), body.prompt)
        if turn.kind == "questions":
            answer = Clarification(questions=turn.questions)
            return JSONResponse(answer.model_dump(), status_code=200)
        if turn.kind == "refused" or turn.definition is None:
            return _error(422, "refused", turn.reason)

        definition = _with_request_options(turn.definition, body)
        alert = await asyncio.to_thread(store.create, tenant, definition, body.prompt)
        request.state.alert_id = alert.alert_id
        await _notify_tenant(settings, tenant)
        return AlertPublic.of(alert)

    @app.get(
        "/v1/tenants/{tenant}/alerts",
        response_model=AlertPage,
        tags=["alerts"],
        responses={503: ERRORS[503]},
    )
    async def list_alerts(
        tenant: Tenant,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        cursor: Annotated[str | None, Query(pattern=ALERT_ID_PATTERN)] = None,
    ) -> AlertPage:
        """One page of the tenant's alerts."""
        alerts, next_cursor = await asyncio.to_thread(store.list, tenant, limit, cursor)
        return AlertPage(
            items=[AlertPublic.of(a) for a in alerts], next_cursor=next_cursor
        )

    @app.get(
        "/v1/tenants/{tenant}/alerts/{alert_id}",
        response_model=AlertPublic,
        tags=["alerts"],
        responses={404: {"model": ErrorBody}, 503: ERRORS[503]},
    )
    async def get_alert(
        tenant: Tenant, alert_id: AlertId
    ) -> AlertPublic | JSONResponse:
        """One alert of the tenant."""
        alert = await asyncio.to_thread(store.get, tenant, alert_id)
        if alert is None:
            return _error(404, "not_found", f"no alert {alert_id} for this tenant")
        return AlertPublic.of(alert)

    return app


def _with_request_options(
    definition: AlertDefinition, body: AlertCreate
) -> AlertDefinition:
    """The model's definition with what the request fixed itself."""
    changes: dict[str, Any] = {}
    if body.owner:
        changes["owner"] = body.owner
    if body.window_seconds is not None:
        changes["window_seconds"] = body.window_seconds
    return AlertDefinition.model_validate({**definition.model_dump(), **changes})


async def _notify_tenant(settings: Settings, tenant: str) -> None:
    """Tell the tenant's live actor, if any, to reload its alerts."""
    if not ray.is_initialized():
        # Served without Ray (uvicorn, TestClient): no tenant actor can be
        # live, and a lookup would start a local Ray instance of its own.
        return
    try:
        await notify_alerts_changed(settings, tenant)
    except Exception:
        # The alert is stored, so the answer stays 201: a client that retried
        # would create a second alert. A live actor that missed the notice
        # keeps its cached alerts until it next reloads or retires.
        logger.exception("reload notice failed tenant=%s", tenant)


def _error(status: int, code: str, detail: str) -> JSONResponse:
    body = ErrorBody.model_validate({"error": code, "detail": detail})
    return JSONResponse(body.model_dump(), status_code=status)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _add_error_handlers(app: FastAPI) -> None:
    def handler(status: int, code: str, detail: str, level: int) -> Handler:
        async def handle(_: Request, exc: Exception) -> Response:
            logger.log(level, "request failed status=%d error=%s", status, exc)
            return _error(status, code, detail)

        return handle

    for error, args in {
        ModelUnavailable: (
            503,
            "model_unavailable",
            "The model did not answer; try again shortly.",
            logging.WARNING,
        ),
        SpendingLimit: (
            503,
            "model_unavailable",
            "The model provider refused the call for billing reasons.",
            logging.ERROR,
        ),
        ModelAnswerInvalid: (
            502,
            "model_answer_invalid",
            "The model's answer did not follow the creation contract.",
            logging.WARNING,
        ),
        # Whatever the retries and translate() left: a 4xx from the provider
        # (key, model name) or a response the SDK could not read.
        anthropic.APIError: (
            502,
            "model_answer_invalid",
            "The model service rejected the call.",
            logging.ERROR,
        ),
        BotoCoreError: (
            503,
            "store_unavailable",
            "The alert store is unreachable; try again shortly.",
            logging.WARNING,
        ),
        ClientError: (
            503,
            "store_unavailable",
            "The alert store refused the call; try again shortly.",
            logging.WARNING,
        ),
    }.items():
        app.add_exception_handler(error, handler(*args))


class RequestLog:
    """One info line per request: route, status and the tenant and alert ids."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router fills path_params and route into this same scope; a
            # handler that creates an alert leaves its id in the request state.
            params = scope.get("path_params", {})
            route = getattr(scope.get("route"), "path", None) or getattr(
                scope.get("endpoint"), "__name__", "unmatched"
            )
            alert_id = params.get("alert_id") or scope.get("state", {}).get("alert_id")
            logger.info(
                "%s %s status=%d tenant=%s alert=%s",
                scope["method"],
                route,
                status,
                _loggable(params.get("tenant")),
                _loggable(alert_id),
            )


def _loggable(value: str | None) -> str:
    # Only ids that passed the pattern reach the log, never arbitrary text.
    if value is None or not re.fullmatch(TENANT_PATTERN, value):
        return "-"
    return value
