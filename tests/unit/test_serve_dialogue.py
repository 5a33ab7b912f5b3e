"""The creation dialogue (``serve.dialogue``) over in-memory stores and a fake model."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError

from serve.dialogue import Dialogue
from serve.errors import ApiError
from serve.schemas import AlertCreate, ApiLimits
from shared.aws.tenant_store import ContextDocument, Draft
from shared.llm import prompts
from shared.models.alerts import Alert, AlertDefinition, utcnow
from shared.settings import Settings
from tests.unit.test_creation import DEFINITION, FakeClient, tool_call

T = TypeVar("T")
TENANT = "tenant-acme"
QUESTIONS = {"questions": ["Which competitors?"]}


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


class MemoryTenants:
    """The parts of TenantStore the dialogue uses, in memory."""

    def __init__(self, documents: dict[str, str] | None = None) -> None:
        self.documents = documents or {}
        self.drafts: dict[str, Draft] = {}
        self.lose_next_save = False

    def context_documents(self, tenant: str) -> list[ContextDocument]:
        now = datetime.now(UTC)
        return [
            ContextDocument(tenant=tenant, doc=d, text=t, updated_at=now)
            for d, t in self.documents.items()
        ]

    def create_draft(self, draft: Draft) -> None:
        self.drafts[draft.draft_id] = draft

    def get_draft(self, tenant: str, draft_id: str) -> Draft | None:
        return self.drafts.get(draft_id)

    def save_draft(self, draft: Draft) -> Draft | None:
        if self.lose_next_save:
            self.lose_next_save = False
            return None
        saved = draft.model_copy(update={"revision": draft.revision + 1})
        self.drafts[draft.draft_id] = saved
        return saved


class MemoryAlerts:
    """The parts of AlertStore the dialogue uses, in memory."""

    def __init__(self) -> None:
        self.alerts: dict[str, Alert] = {}

    def create(
        self,
        tenant: str,
        definition: AlertDefinition,
        prompt: str = "",
        alert_id: str | None = None,
    ) -> Alert:
        alert_id = alert_id or f"al-{len(self.alerts):012x}"
        if alert_id in self.alerts:
            raise ClientError(
                {"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem"
            )
        now = utcnow()
        self.alerts[alert_id] = Alert(
            tenant=tenant,
            alert_id=alert_id,
            definition=definition,
            state=dict(definition.initial_state or {}),
            created_at=now,
            updated_at=now,
            prompt=prompt,
        )
        return self.alerts[alert_id]

    def get(self, tenant: str, alert_id: str) -> Alert | None:
        return self.alerts.get(alert_id)


class Setup:
    def __init__(self, *answers: Any, documents: dict[str, str] | None = None) -> None:
        self.client = FakeClient(*answers)
        self.tenants = MemoryTenants(documents)
        self.alerts = MemoryAlerts()
        self.notified: list[str] = []

        async def notify(tenant: str) -> None:
            self.notified.append(tenant)

        self.dialogue = Dialogue(
            Settings(llm_max_attempts=1),
            self.tenants,  # type: ignore[arg-type]
            self.alerts,  # type: ignore[arg-type]
            lambda: self.client,  # type: ignore[arg-type,return-value]
            notify,
        )

    def sent(self, n: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.client.messages.requests[n]["messages"]
        return messages


def request(prompt: str = "tell me about competitors", **extra: Any) -> AlertCreate:
    return AlertCreate.model_validate({"prompt": prompt, **extra})


def test_a_clear_request_is_stored_at_once_with_the_requests_options() -> None:
    setup = Setup(tool_call(prompts.PROPOSE_TOOL_NAME, DEFINITION))

    made = run(
        setup.dialogue.create_alert(
            TENANT, request(owner="jane@acme.example", window_seconds=0)
        )
    )

    assert isinstance(made, Alert)
    assert made.definition.owner == "jane@acme.example"
    assert made.definition.window_seconds == 0
    assert setup.notified == [TENANT]
    assert setup.tenants.drafts == {}


def test_the_most_relevant_context_passages_go_to_the_model() -> None:
    setup = Setup(
        tool_call(prompts.ASK_TOOL_NAME, QUESTIONS),
        documents={"competitors": "Umbrella and Initrode.", "team": "Jane, EMEA."},
    )

    draft = run(setup.dialogue.open_draft(TENANT, request("our competitors")))

    assert draft.context == ["[competitors] Umbrella and Initrode."]
    first_turn = setup.sent(0)[0]["content"]
    assert "[competitors] Umbrella and Initrode." in first_turn
    assert "Jane" not in first_turn


def test_an_unclear_request_becomes_a_draft_that_answers_make_ready() -> None:
    setup = Setup(
        tool_call(prompts.ASK_TOOL_NAME, QUESTIONS, n=1),
        tool_call(prompts.PROPOSE_TOOL_NAME, DEFINITION, n=2),
    )

    made = run(setup.dialogue.create_alert(TENANT, request(owner="bob@acme.example")))
    assert isinstance(made, Draft)
    ready = run(setup.dialogue.reply(TENANT, made.draft_id, "Umbrella, on calls."))

    assert (made.status, ready.status) == ("needs_clarification", "ready")
    assert ready.definition is not None
    assert ready.definition.owner == "bob@acme.example"
    assert ready.replies == 1
    assert setup.sent(1)[-1]["content"][0]["content"] == "Umbrella, on calls."
    assert setup.alerts.alerts == {}


def test_accepting_stores_the_alert_once_however_often_it_is_asked() -> None:
    setup = Setup(tool_call(prompts.PROPOSE_TOOL_NAME, DEFINITION))
    draft = run(setup.dialogue.open_draft(TENANT, request()))

    alert, created = run(setup.dialogue.accept(TENANT, draft.draft_id))
    again, created_again = run(setup.dialogue.accept(TENANT, draft.draft_id))

    assert (created, created_again) == (True, False)
    assert alert.alert_id == again.alert_id == draft.accepted_alert_id
    assert list(setup.alerts.alerts) == [alert.alert_id]
    assert setup.notified == [TENANT]
    assert setup.tenants.drafts[draft.draft_id].status == "accepted"


def test_an_accept_whose_draft_was_not_marked_finds_the_alert_it_made() -> None:
    setup = Setup(tool_call(prompts.PROPOSE_TOOL_NAME, DEFINITION))
    draft = run(setup.dialogue.open_draft(TENANT, request()))
    setup.tenants.lose_next_save = True  # the first accept's draft write is lost

    first, _ = run(setup.dialogue.accept(TENANT, draft.draft_id))
    second, created = run(setup.dialogue.accept(TENANT, draft.draft_id))

    assert second.alert_id == first.alert_id
    assert created is False
    assert len(setup.alerts.alerts) == 1


def test_a_draft_that_is_not_ready_cannot_be_accepted() -> None:
    setup = Setup(tool_call(prompts.ASK_TOOL_NAME, QUESTIONS))
    draft = run(setup.dialogue.open_draft(TENANT, request()))

    with pytest.raises(ApiError) as refused:
        run(setup.dialogue.accept(TENANT, draft.draft_id))

    assert refused.value.status == 409
    assert setup.alerts.alerts == {}


def test_a_reply_to_a_draft_that_changed_meanwhile_is_a_conflict() -> None:
    setup = Setup(
        tool_call(prompts.ASK_TOOL_NAME, QUESTIONS, n=1),
        tool_call(prompts.PROPOSE_TOOL_NAME, DEFINITION, n=2),
    )
    draft = run(setup.dialogue.open_draft(TENANT, request()))
    setup.tenants.lose_next_save = True

    with pytest.raises(ApiError) as conflict:
        run(setup.dialogue.reply(TENANT, draft.draft_id, "calls"))

    assert conflict.value.status == 409
    assert setup.tenants.drafts[draft.draft_id].status == "needs_clarification"


def test_a_draft_takes_a_bounded_number_of_replies() -> None:
    setup = Setup(tool_call(prompts.ASK_TOOL_NAME, QUESTIONS))
    draft = run(setup.dialogue.open_draft(TENANT, request()))
    worn = draft.model_copy(update={"replies": ApiLimits.MAX_REPLIES_PER_DRAFT})
    setup.tenants.drafts[draft.draft_id] = worn

    with pytest.raises(ApiError) as limit:
        run(setup.dialogue.reply(TENANT, draft.draft_id, "more"))

    assert (limit.value.status, limit.value.code) == (409, "limit_reached")
    assert len(setup.client.messages.requests) == 1  # the model was not asked


def test_a_refusal_stores_nothing_and_says_why() -> None:
    reason = "Watchword does not see calendars."
    setup = Setup(tool_call(prompts.REFUSE_TOOL_NAME, {"reason": reason}))

    with pytest.raises(ApiError) as refused:
        run(setup.dialogue.create_alert(TENANT, request("my calendar")))

    assert (refused.value.status, refused.value.code) == (422, "refused")
    assert refused.value.detail == reason
    assert setup.tenants.drafts == {}
    assert setup.alerts.alerts == {}
    assert setup.notified == []
