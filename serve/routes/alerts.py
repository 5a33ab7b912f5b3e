"""``/v1/tenants/{tenant}/alerts``: create in one call, list, read, change, delete.

Every change is a read-modify-write conditioned on the alert's version, which
the tenant actor also raises on each state write; a lost race is retried. The
version goes up with the change, so an evaluation that started against the old
definition fails its own conditional write and runs again. After each change
the tenant's live actor is told to reload.
"""

# No ``from __future__ import annotations``: FastAPI must resolve the local
# ``Tenant`` dependency alias in the route signatures at run time.

import asyncio
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from serve.errors import ApiError, not_found, responses
from serve.schemas import (
    ALERT_ID_PATTERN,
    EXAMPLE_ALERT_ID,
    AlertCreate,
    AlertPage,
    AlertPublic,
    AlertState,
    AlertUpdate,
    ApiLimits,
    Clarification,
    Evaluation,
    EvaluationList,
    Unprocessable,
)
from serve.services import Services
from shared.aws.alert_store import AlertStore
from shared.errors import VersionConflict
from shared.models.alerts import Alert, AlertDefinition, utcnow

AlertId = Annotated[
    str,
    Path(
        pattern=ALERT_ID_PATTERN,
        description="The alert's id.",
        examples=[EXAMPLE_ALERT_ID],
        openapi_examples={"example": {"value": EXAMPLE_ALERT_ID}},
    ),
]

MAX_CHANGE_ATTEMPTS = 5


def updated(alert: Alert, change: AlertUpdate) -> Alert:
    """The alert with ``change`` applied and validated as a whole.

    Raises pydantic's ValidationError when the result is not a valid
    definition (the API answers 422). The state restarts from the initial
    state when the schema changes or ``reset_state`` asks for it.
    """
    old = alert.definition
    fields = change.model_dump(exclude_unset=True, exclude={"reset_state"})
    merged = {**old.model_dump(), **fields}
    schema_changed = (
        change.state_schema is not None and change.state_schema != old.state_schema
    )
    if schema_changed and "initial_state" not in fields:
        merged["initial_state"] = None  # the new schema's defaults
    definition = AlertDefinition.model_validate(merged)

    reset = change.reset_state or schema_changed
    state = dict(definition.initial_state or {}) if reset else alert.state
    return alert.model_copy(update={"definition": definition, "state": state})


async def write_change(
    store: AlertStore, tenant: str, alert_id: str, mutate: Callable[[Alert], Alert]
) -> Alert:
    """Read, change and write the alert, retrying lost version races.

    The write is conditioned on the version read and raises it by one; when
    the tenant actor (or another change) wrote meanwhile, the change is made
    again on the newer alert. 404 when there is no such alert, 409 when the
    races go on past ``MAX_CHANGE_ATTEMPTS``.
    """
    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(VersionConflict),
            stop=stop_after_attempt(MAX_CHANGE_ATTEMPTS),
            wait=wait_exponential_jitter(multiplier=0.02, max=0.5),
            reraise=True,
        ):
            with attempt:
                alert = await asyncio.to_thread(store.get, tenant, alert_id)
                if alert is None:
                    raise not_found(f"alert {alert_id}")
                new = mutate(alert).model_copy(
                    update={"version": alert.version + 1, "updated_at": utcnow()}
                )
                if not await asyncio.to_thread(store.replace, new, alert.version):
                    raise VersionConflict(f"alert {alert_id} moved on")
                return new
    except VersionConflict:
        raise ApiError(409, "conflict", "the alert kept changing; try again") from None
    raise AssertionError("unreachable: tenacity reraises the last error")


def alerts_router(services: Services) -> APIRouter:
    """The alert routes over ``services``."""
    router = APIRouter(
        prefix="/v1/tenants/{tenant}/alerts",
        tags=["alerts"],
        responses=responses(401, 404, 422, 503),
    )
    Tenant = Annotated[str, Depends(services.guard)]
    store = services.alerts

    async def change(
        tenant: str, alert_id: str, mutate: Callable[[Alert], Alert]
    ) -> Alert:
        changed = await write_change(store, tenant, alert_id, mutate)
        await services.notify(tenant)
        return changed

    async def existing(tenant: str, alert_id: str) -> Alert:
        alert = await asyncio.to_thread(store.get, tenant, alert_id)
        if alert is None:
            raise not_found(f"alert {alert_id}")
        return alert

    @router.post(
        "",
        status_code=201,
        response_model=AlertPublic,
        responses={
            200: {
                "model": Clarification,
                "description": "The request is ambiguous: no alert was stored; "
                "answer the questions on the draft.",
            },
            422: {
                "model": Unprocessable,
                "description": "The model refused the request (error 'refused',"
                " with its reason), or the body is invalid.",
                "content": {
                    "application/json": {
                        "example": {
                            "error": "refused",
                            "detail": "Watchword cannot see stock prices.",
                        }
                    }
                },
            },
            **responses(413, 415, 502),
        },
    )
    async def create_alert(
        tenant: Tenant, body: AlertCreate, request: Request
    ) -> AlertPublic | JSONResponse:
        """Turn a plain-language request into a stored alert, or ask what it means."""
        made = await services.dialogue.create_alert(tenant, body)
        if isinstance(made, Alert):
            request.state.alert_id = made.alert_id
            return AlertPublic.of(made)
        answer = Clarification(questions=made.questions, draft_id=made.draft_id)
        return JSONResponse(answer.model_dump(), status_code=200)

    @router.get("", response_model=AlertPage)
    async def list_alerts(
        tenant: Tenant,
        limit: Annotated[int, Query(ge=1, le=ApiLimits.MAX_PAGE)] = 50,
        cursor: Annotated[
            str | None,
            Query(pattern=ALERT_ID_PATTERN, description="A page's next_cursor."),
        ] = None,
    ) -> AlertPage:
        """One page of the tenant's alerts."""
        alerts, next_cursor = await asyncio.to_thread(store.list, tenant, limit, cursor)
        return AlertPage(
            items=[AlertPublic.of(a) for a in alerts], next_cursor=next_cursor
        )

    @router.get("/{alert_id}", response_model=AlertPublic, responses=responses(404))
    async def get_alert(tenant: Tenant, alert_id: AlertId) -> AlertPublic:
        """One alert of the tenant."""
        return AlertPublic.of(await existing(tenant, alert_id))

    @router.patch(
        "/{alert_id}",
        response_model=AlertPublic,
        responses=responses(404, 409, 413, 415),
    )
    async def update_alert(
        tenant: Tenant, alert_id: AlertId, body: AlertUpdate
    ) -> AlertPublic:
        """Change an alert's definition; a new state schema restarts its state."""
        return AlertPublic.of(
            await change(tenant, alert_id, lambda alert: updated(alert, body))
        )

    @router.post(
        "/{alert_id}/enable",
        response_model=AlertPublic,
        responses=responses(404, 409),
    )
    async def enable_alert(tenant: Tenant, alert_id: AlertId) -> AlertPublic:
        """Evaluate the alert again from the next communication on."""
        return AlertPublic.of(
            await change(
                tenant, alert_id, lambda a: a.model_copy(update={"enabled": True})
            )
        )

    @router.post(
        "/{alert_id}/disable",
        response_model=AlertPublic,
        responses=responses(404, 409),
    )
    async def disable_alert(tenant: Tenant, alert_id: AlertId) -> AlertPublic:
        """Stop evaluating the alert; its definition and state are kept."""
        return AlertPublic.of(
            await change(
                tenant, alert_id, lambda a: a.model_copy(update={"enabled": False})
            )
        )

    @router.delete("/{alert_id}", status_code=204, responses=responses(404))
    async def delete_alert(tenant: Tenant, alert_id: AlertId) -> Response:
        """Delete an alert for good."""
        if not await asyncio.to_thread(store.delete, tenant, alert_id):
            raise not_found(f"alert {alert_id}")
        await services.notify(tenant)
        return Response(status_code=204)

    @router.get(
        "/{alert_id}/state", response_model=AlertState, responses=responses(404)
    )
    async def get_state(tenant: Tenant, alert_id: AlertId) -> AlertState:
        """The alert's current state, its version and its schema."""
        return AlertState.of(await existing(tenant, alert_id))

    @router.get(
        "/{alert_id}/evaluations",
        response_model=EvaluationList,
        responses=responses(404),
    )
    async def list_evaluations(
        tenant: Tenant,
        alert_id: AlertId,
        limit: Annotated[int, Query(ge=1, le=ApiLimits.MAX_EVALUATIONS)] = 20,
    ) -> EvaluationList:
        """The alert's latest evaluations: why it fired or not, with evidence."""
        await existing(tenant, alert_id)
        records = await asyncio.to_thread(
            services.evaluations.recent, tenant, alert_id, limit
        )
        return EvaluationList(items=[Evaluation.of(r) for r in records])

    return router
