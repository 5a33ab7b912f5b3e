"""The creation dialogue behind the API: prompt, questions, answers, accept.

``Dialogue`` is plain logic over the stores and the model client, so that the
routes stay thin. A request goes to the model with the tenant's most relevant
context passages (``shared.llm.context``). Then:

- a refusal is a 422 with the model's reason, and nothing is stored;
- questions open a draft (``<prefix>-tenants``, ``draft#<id>``) that holds the
  whole dialogue; each reply continues it, at most
  ``ApiLimits.MAX_REPLIES_PER_DRAFT`` times;
- a ready definition is either stored at once (the one-call route) or kept on
  the draft until it is accepted.

Accepting is idempotent: the alert's id derives from the draft's, and the
alert is created only if that id is free, so a retried or concurrent accept
returns the one alert instead of making a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import anthropic
from botocore.exceptions import ClientError

from serve.errors import ApiError, not_found
from serve.schemas import AlertCreate, ApiLimits
from shared.aws.alert_store import AlertStore
from shared.aws.tenant_store import (
    DRAFT_TTL_SECONDS,
    Draft,
    TenantStore,
    new_draft_id,
)
from shared.llm.context import retrieve
from shared.llm.creation import (
    CreationTurn,
    create_from_prompt,
    draft_alert,
    with_reply,
)
from shared.models.alerts import Alert, AlertDefinition, utcnow
from shared.settings import Settings

logger = logging.getLogger(__name__)

ModelClient = Callable[[], anthropic.AsyncAnthropic]
Notify = Callable[[str], Awaitable[None]]


class Dialogue:
    """Creation of alerts from plain language, in one call or as a draft."""

    def __init__(
        self,
        settings: Settings,
        tenants: TenantStore,
        alerts: AlertStore,
        model: ModelClient,
        notify: Notify,
    ) -> None:
        self._settings = settings
        self._tenants = tenants
        self._alerts = alerts
        self._model = model
        self._notify = notify

    async def create_alert(self, tenant: str, request: AlertCreate) -> Alert | Draft:
        """The stored alert of a clear request, or the draft of an unclear one."""
        turn, passages = await self._first_turn(tenant, request)
        if turn.kind == "ready":
            assert turn.definition is not None, "a ready turn has a definition"
            definition = _with_options(
                turn.definition, request.owner, request.window_seconds
            )
            alert = await asyncio.to_thread(
                self._alerts.create, tenant, definition, request.prompt
            )
            await self._notify(tenant)
            return alert
        draft = self._new_draft(tenant, request, turn, passages)
        await asyncio.to_thread(self._tenants.create_draft, draft)
        return draft

    async def open_draft(self, tenant: str, request: AlertCreate) -> Draft:
        """A draft from a request: its questions, or its definition to accept."""
        turn, passages = await self._first_turn(tenant, request)
        draft = self._new_draft(tenant, request, turn, passages)
        await asyncio.to_thread(self._tenants.create_draft, draft)
        return draft

    async def get_draft(self, tenant: str, draft_id: str) -> Draft:
        draft = await asyncio.to_thread(self._tenants.get_draft, tenant, draft_id)
        if draft is None:
            raise not_found(f"draft {draft_id}")
        return draft

    async def reply(self, tenant: str, draft_id: str, text: str) -> Draft:
        """Continue the dialogue with the user's answers (or requested change)."""
        draft = await self.get_draft(tenant, draft_id)
        if draft.status in ("accepted", "refused"):
            raise ApiError(409, "conflict", f"the draft is {draft.status}")
        if draft.replies >= ApiLimits.MAX_REPLIES_PER_DRAFT:
            raise ApiError(
                409,
                "limit_reached",
                f"the draft has had {draft.replies} replies; start a new one",
            )

        turn = await draft_alert(
            self._settings, self._model(), with_reply(draft.messages, text)
        )
        changes: dict[str, Any] = {
            **_turn_fields(turn, draft.owner, draft.window_seconds),
            "replies": draft.replies + 1,
        }
        saved = await asyncio.to_thread(
            self._tenants.save_draft, draft.model_copy(update=changes)
        )
        if saved is None:
            raise ApiError(
                409, "conflict", "the draft changed meanwhile; read it and retry"
            )
        if saved.status == "refused":
            raise ApiError(422, "refused", saved.reason)
        return saved

    async def accept(self, tenant: str, draft_id: str) -> tuple[Alert, bool]:
        """The alert made from a ready draft, and whether this call made it."""
        draft = await self.get_draft(tenant, draft_id)
        if draft.status == "accepted":
            earlier = await asyncio.to_thread(
                self._alerts.get, tenant, draft.accepted_alert_id
            )
            if earlier is None:
                raise ApiError(
                    409, "conflict", "the draft's alert was accepted, then deleted"
                )
            return earlier, False
        if draft.status != "ready" or draft.definition is None:
            raise ApiError(
                409,
                "conflict",
                f"the draft is {draft.status}; only a ready draft can be accepted",
            )

        alert_id = draft.accepted_alert_id
        try:
            alert = await asyncio.to_thread(
                self._alerts.create, tenant, draft.definition, draft.prompt, alert_id
            )
            created = True
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            # An earlier accept made it and then lost its answer, or another
            # accept runs at this moment: the alert is that one.
            found = await asyncio.to_thread(self._alerts.get, tenant, alert_id)
            if found is None:
                raise ApiError(409, "conflict", "the draft is being accepted") from None
            alert, created = found, False

        saved = await asyncio.to_thread(
            self._tenants.save_draft,
            draft.model_copy(update={"status": "accepted", "alert_id": alert_id}),
        )
        if saved is None:
            # The alert stands; the next accept finds it through its id.
            logger.warning("draft changed while accepted draft=%s", draft_id)
        if created:
            await self._notify(tenant)
        return alert, created

    async def delete_draft(self, tenant: str, draft_id: str) -> None:
        if not await asyncio.to_thread(self._tenants.delete_draft, tenant, draft_id):
            raise not_found(f"draft {draft_id}")

    async def _first_turn(
        self, tenant: str, request: AlertCreate
    ) -> tuple[CreationTurn, list[str]]:
        documents = await asyncio.to_thread(self._tenants.context_documents, tenant)
        found = await asyncio.to_thread(
            retrieve, [(d.doc, d.text) for d in documents], request.prompt
        )
        passages = [p.render() for p in found]
        turn = await create_from_prompt(
            self._settings, self._model(), request.prompt, passages
        )
        if turn.kind == "refused":
            raise ApiError(422, "refused", turn.reason)
        return turn, passages

    def _new_draft(
        self,
        tenant: str,
        request: AlertCreate,
        turn: CreationTurn,
        passages: list[str],
    ) -> Draft:
        now = utcnow()
        return Draft(
            tenant=tenant,
            draft_id=new_draft_id(),
            prompt=request.prompt,
            owner=request.owner,
            window_seconds=request.window_seconds,
            context=passages,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(seconds=DRAFT_TTL_SECONDS),
            **_turn_fields(turn, request.owner, request.window_seconds),
        )


def _turn_fields(
    turn: CreationTurn, owner: str, window_seconds: float | None
) -> dict[str, Any]:
    """What a turn sets on a draft."""
    status = {"ready": "ready", "questions": "needs_clarification"}.get(
        turn.kind, "refused"
    )
    definition = None
    if turn.definition is not None:
        definition = _with_options(turn.definition, owner, window_seconds)
    return {
        "status": status,
        "questions": turn.questions,
        "definition": definition,
        "reason": turn.reason,
        "messages": turn.messages,
    }


def _with_options(
    definition: AlertDefinition, owner: str, window_seconds: float | None
) -> AlertDefinition:
    """The model's definition with what the request fixed itself."""
    changes: dict[str, Any] = {}
    if owner:
        changes["owner"] = owner
    if window_seconds is not None:
        changes["window_seconds"] = window_seconds
    return AlertDefinition.model_validate({**definition.model_dump(), **changes})
