"""``/v1/tenants/{tenant}/alerts/drafts``: the creation dialogue, step by step.

Start a draft with a prompt; while it needs clarification, answer its
questions with messages; once it is ready, accept it to store the alert. A
ready draft also takes a message, as a change to ask of its definition.
"""

# No ``from __future__ import annotations``: FastAPI must resolve the local
# ``Tenant`` dependency alias in the route signatures at run time.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from serve.errors import responses
from serve.schemas import (
    DRAFT_ID_PATTERN,
    EXAMPLE_DRAFT_ID,
    AlertCreate,
    AlertPublic,
    DraftPublic,
    DraftReply,
    Unprocessable,
)
from serve.services import Services

DraftId = Annotated[
    str,
    Path(
        pattern=DRAFT_ID_PATTERN,
        description="The draft's id.",
        examples=[EXAMPLE_DRAFT_ID],
        openapi_examples={"example": {"value": EXAMPLE_DRAFT_ID}},
    ),
]

REFUSED: dict[int | str, dict[str, Any]] = {
    422: {
        "model": Unprocessable,
        "description": "The model refused the request (error 'refused', with"
        " its reason; nothing is stored), or the body is invalid.",
        "content": {
            "application/json": {
                "example": {
                    "error": "refused",
                    "detail": "This is not a condition to watch for in"
                    " communications, so it cannot be an alert.",
                }
            }
        },
    }
}


def drafts_router(services: Services) -> APIRouter:
    """The draft routes over ``services``."""
    router = APIRouter(
        prefix="/v1/tenants/{tenant}/alerts/drafts",
        tags=["drafts"],
        responses=responses(401, 404, 422, 503),
    )
    Tenant = Annotated[str, Depends(services.guard)]
    dialogue = services.dialogue

    @router.post(
        "",
        status_code=201,
        response_model=DraftPublic,
        responses={**REFUSED, **responses(413, 415, 502)},
    )
    async def start_draft(tenant: Tenant, body: AlertCreate) -> DraftPublic:
        """Start a draft: its questions, or a definition ready to accept."""
        return DraftPublic.of(await dialogue.open_draft(tenant, body))

    @router.get("/{draft_id}", response_model=DraftPublic, responses=responses(404))
    async def get_draft(tenant: Tenant, draft_id: DraftId) -> DraftPublic:
        """Where a draft stands."""
        return DraftPublic.of(await dialogue.get_draft(tenant, draft_id))

    @router.post(
        "/{draft_id}/messages",
        response_model=DraftPublic,
        responses={**REFUSED, **responses(404, 409, 413, 415, 502)},
    )
    async def reply_to_draft(
        tenant: Tenant, draft_id: DraftId, body: DraftReply
    ) -> DraftPublic:
        """Answer the draft's questions (or ask a change of a ready definition)."""
        return DraftPublic.of(await dialogue.reply(tenant, draft_id, body.text))

    @router.post(
        "/{draft_id}/accept",
        status_code=201,
        response_model=AlertPublic,
        responses={
            200: {
                "model": AlertPublic,
                "description": "The draft was accepted before: its alert.",
            },
            **responses(404, 409),
        },
    )
    async def accept_draft(
        tenant: Tenant, draft_id: DraftId, request: Request, response: Response
    ) -> AlertPublic:
        """Store the alert of a ready draft (again: the same alert, 200)."""
        alert, created = await dialogue.accept(tenant, draft_id)
        request.state.alert_id = alert.alert_id
        if not created:
            response.status_code = 200
        return AlertPublic.of(alert)

    @router.delete("/{draft_id}", status_code=204, responses=responses(404))
    async def delete_draft(tenant: Tenant, draft_id: DraftId) -> Response:
        """Drop a draft (an alert accepted from it stays)."""
        await dialogue.delete_draft(tenant, draft_id)
        return Response(status_code=204)

    return router
