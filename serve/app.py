"""The alert API as a plain FastAPI app: ``build_app(settings)``.

It runs the same under Ray Serve (``serve.deployment``) and under uvicorn or
Starlette's TestClient. Every ``/v1/tenants/{tenant}`` route needs that
tenant's API key (``serve.auth``); ``/healthz``, ``/readyz``
(``serve.health``), ``/docs`` and ``/openapi.json`` are open.

=========================================  ==========================================
route                                      what
=========================================  ==========================================
POST   /alerts                             a clear prompt's alert, or questions
GET    /alerts                             one page of alerts
GET / PATCH / DELETE  /alerts/{id}         read, change (re-validated), delete
POST   /alerts/{id}/enable, /disable       switch evaluation on or off
GET    /alerts/{id}/state, /evaluations    current state; why it fired or not
POST   /alerts/drafts                      start a creation dialogue
GET / DELETE  /alerts/drafts/{id}          where a draft stands; drop it
POST   /alerts/drafts/{id}/messages        answer its questions
POST   /alerts/drafts/{id}/accept          store its alert
GET    /context; PUT / GET / DELETE        the tenant's context documents
       /context/{doc}
=========================================  ==========================================

(every path under ``/v1/tenants/{tenant}``). Errors are ``ErrorBody``
(``serve.errors``); no input is to end in a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anthropic
from fastapi import FastAPI

from serve.auth import tenant_guard
from serve.dialogue import Dialogue
from serve.errors import add_error_handlers
from serve.health import readiness_router
from serve.middleware import BodyCheck, RequestLog
from serve.routes.alerts import alerts_router
from serve.routes.context import context_router
from serve.routes.drafts import drafts_router
from serve.schemas import ApiLimits
from serve.services import Services, notify_tenant
from shared.aws.alert_store import AlertStore
from shared.aws.evaluation_store import EvaluationStore
from shared.aws.tenant_store import TenantStore
from shared.llm.client import make_client
from shared.settings import Settings

DESCRIPTION = """\
Standing alerts in plain language over a tenant's call transcripts, emails and
Salesforce changes.

Every `/v1/tenants/{tenant}` route needs that tenant's API key as a bearer
token (`Authorization: Bearer ww_...`, from `watchword tenants create
TENANT_ID`). A key of another tenant gets 404.

Create an alert in one call (`POST .../alerts`): a clear request is stored at
once (201); an ambiguous one gets questions and a draft id (200), nothing
stored. Or step by step: `POST .../alerts/drafts`, answer with
`POST .../drafts/{draft_id}/messages` until the draft is `ready`, then
`POST .../drafts/{draft_id}/accept`. Context documents
(`PUT .../context/{doc}`) tell the model what the tenant's words mean.
"""


def build_app(
    settings: Settings, client: anthropic.AsyncAnthropic | None = None
) -> FastAPI:
    """The alert API; ``client`` replaces the model client made from settings."""
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

    async def notify(tenant: str) -> None:
        await notify_tenant(settings, tenant)

    alerts = AlertStore(settings)
    tenants = TenantStore(settings)
    services = Services(
        settings=settings,
        alerts=alerts,
        evaluations=EvaluationStore(settings),
        tenants=tenants,
        dialogue=Dialogue(settings, tenants, alerts, model_client, notify),
        guard=tenant_guard(tenants),
        notify=notify,
    )

    app = FastAPI(
        title="Watchword alert API",
        summary="Standing plain-language alerts over calls, emails and CRM changes.",
        description=DESCRIPTION,
        version="1",
        lifespan=lifespan,
    )
    # The last added runs first: the log sees every answer, 413s included.
    app.add_middleware(BodyCheck, max_bytes=ApiLimits.MAX_BODY_BYTES)
    app.add_middleware(RequestLog)
    add_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the API process answers."""
        return {"status": "ok"}

    app.include_router(readiness_router(settings))

    # Drafts first: their paths are more specific than /alerts/{alert_id}.
    app.include_router(drafts_router(services))
    app.include_router(alerts_router(services))
    app.include_router(context_router(services))
    return app
