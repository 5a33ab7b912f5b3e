"""The alert API over HTTP: Ray Serve, the AWS emulator and the offline model.

The offline model decides by its documented rules: a prompt with double-quoted
phrases becomes a definition whose instructions keep them, a condition without
quotes gets clarifying questions (answers with quoted phrases settle them), a
request about data Watchword does not see, or no condition at all, is refused.
Scripted answers (``/_control/script``) stand for a model that misbehaves;
each script matches a token unique to its test, and so does every look into
the model's request log (``/_control/requests``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
import ray
from fastapi.testclient import TestClient

from serve.app import build_app
from shared.models import Email
from shared.models.evaluation import CommunicationOutcome
from shared.settings import Settings
from standins.process import ServerProcess
from tests.integration.conftest import TenantClient

pytestmark = pytest.mark.integration

NewTenant = Callable[[], TenantClient]

CLEAR_PROMPT = 'Tell me when a customer on a call says "evaluating a competitor".'
VAGUE_PROMPT = "Tell me when a customer talks about our competitors."


def token(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:8]}"


def ok(response: httpx2.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def alerts_of(me: TenantClient, **params: Any) -> dict[str, Any]:
    return ok(me.http.get(me.url("/alerts"), params=params))


def create(me: TenantClient, prompt: str, **extra: Any) -> dict[str, Any]:
    return ok(me.http.post(me.url("/alerts"), json={"prompt": prompt, **extra}), 201)


def script(model: ServerProcess, match: str, responses: list[dict[str, Any]]) -> None:
    answer = httpx2.post(
        f"{model.url}/_control/script",
        json={"match": match, "responses": responses},
        timeout=5.0,
    )
    answer.raise_for_status()


def model_requests(model: ServerProcess, match: str) -> list[dict[str, Any]]:
    """The request bodies the model received that contain ``match``."""
    answer = httpx2.get(
        f"{model.url}/_control/requests", params={"match": match}, timeout=5.0
    )
    answer.raise_for_status()
    return [r["body"] for r in answer.json()["requests"]]


def too_many_fields(phrase: str) -> dict[str, Any]:
    """A proposal whose state schema is over the field limit."""
    return {
        "name": "Too much state",
        "description": "Nine counters.",
        "data_types": ["email"],
        "instructions": f'Fire on "{phrase}".',
        "state_schema": {
            "fields": [{"name": f"c{i}", "type": "integer"} for i in range(9)]
        },
    }


# --- creation ---------------------------------------------------------------


def test_a_clear_prompt_gives_a_stored_alert_in_one_call(new_tenant: NewTenant) -> None:
    me = new_tenant()

    alert = create(me, CLEAR_PROMPT, owner="jane@example.com", window_seconds=0)

    assert alert["tenant"] == me.tenant
    assert alert["enabled"] is True
    definition = alert["definition"]
    assert '"evaluating a competitor"' in definition["instructions"]
    assert definition["data_types"] == ["call_transcript"]
    assert definition["owner"] == "jane@example.com"
    assert definition["window_seconds"] == 0
    assert alert["prompt"] == CLEAR_PROMPT
    listed = alerts_of(me)
    assert [a["alert_id"] for a in listed["items"]] == [alert["alert_id"]]
    assert ok(me.http.get(me.url(f"/alerts/{alert['alert_id']}"))) == alert


def test_an_ambiguous_prompt_gives_questions_and_a_draft_and_no_alert(
    new_tenant: NewTenant,
) -> None:
    me = new_tenant()

    body = ok(me.http.post(me.url("/alerts"), json={"prompt": VAGUE_PROMPT}))

    assert body["status"] == "needs_clarification"
    assert 1 <= len(body["questions"]) <= 3
    assert body["draft_id"].startswith("dr-")
    assert alerts_of(me)["items"] == []
    draft = ok(me.http.get(me.url(f"/alerts/drafts/{body['draft_id']}")))
    assert draft["status"] == "needs_clarification"
    assert draft["questions"] == body["questions"]


def test_answers_lead_to_a_definition_that_accept_stores_once(
    new_tenant: NewTenant,
) -> None:
    me = new_tenant()
    draft = ok(
        me.http.post(me.url("/alerts/drafts"), json={"prompt": VAGUE_PROMPT}), 201
    )
    drafts = me.url(f"/alerts/drafts/{draft['draft_id']}")
    assert draft["status"] == "needs_clarification"
    assert draft["definition"] is None

    early = me.http.post(f"{drafts}/accept")
    assert early.status_code == 409, early.text
    answered = ok(
        me.http.post(
            f"{drafts}/messages",
            json={"text": 'Calls and emails; "Umbrella" or "Initrode".'},
        )
    )
    accepted = ok(me.http.post(f"{drafts}/accept"), 201)
    again = ok(me.http.post(f"{drafts}/accept"), 200)

    assert answered["status"] == "ready"
    assert answered["replies"] == 1
    definition = answered["definition"]
    assert '"Umbrella", "Initrode"' in definition["instructions"]
    assert definition["data_types"] == ["call_transcript", "email"]
    assert accepted["definition"] == definition
    assert again["alert_id"] == accepted["alert_id"]
    assert [a["alert_id"] for a in alerts_of(me)["items"]] == [accepted["alert_id"]]
    closed = ok(me.http.get(drafts))
    assert (closed["status"], closed["alert_id"]) == ("accepted", accepted["alert_id"])
    late = me.http.post(f"{drafts}/messages", json={"text": '"Acme".'})
    assert late.status_code == 409


def test_the_one_call_routes_draft_continues_to_an_alert(
    new_tenant: NewTenant,
) -> None:
    me = new_tenant()
    asked = ok(me.http.post(me.url("/alerts"), json={"prompt": VAGUE_PROMPT}))
    drafts = me.url(f"/alerts/drafts/{asked['draft_id']}")

    ok(me.http.post(f"{drafts}/messages", json={"text": 'Emails with "Globex".'}))
    alert = ok(me.http.post(f"{drafts}/accept"), 201)

    assert alert["definition"]["data_types"] == ["email"]
    assert alert["prompt"] == VAGUE_PROMPT


@pytest.mark.parametrize(
    ("prompt", "reason"),
    [
        ('Alert me when the stock price says "down 10%".', "stock prices"),
        ("What is the capital of France?", "not a condition"),
    ],
    ids=["data-it-does-not-see", "not-an-alert"],
)
@pytest.mark.parametrize("route", ["/alerts", "/alerts/drafts"])
def test_a_request_the_system_cannot_evaluate_is_refused_and_not_stored(
    new_tenant: NewTenant, route: str, prompt: str, reason: str
) -> None:
    me = new_tenant()

    answer = me.http.post(me.url(route), json={"prompt": prompt})

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "refused"
    assert reason in answer.json()["detail"]
    assert alerts_of(me)["items"] == []


def test_a_refusal_in_the_dialogue_closes_the_draft(new_tenant: NewTenant) -> None:
    me = new_tenant()
    draft = ok(
        me.http.post(me.url("/alerts/drafts"), json={"prompt": VAGUE_PROMPT}), 201
    )
    drafts = me.url(f"/alerts/drafts/{draft['draft_id']}")

    refused = me.http.post(f"{drafts}/messages", json={"text": "Only on Slack."})

    assert refused.status_code == 422
    assert "Slack" in refused.json()["detail"]
    assert ok(me.http.get(drafts))["status"] == "refused"
    assert me.http.post(f"{drafts}/accept").status_code == 409


def test_a_proposal_over_the_limits_is_repaired_on_the_second_answer(
    new_tenant: NewTenant, model_server: ServerProcess
) -> None:
    phrase = token("repair")
    script(
        model_server,
        phrase,
        [{"tool_name": "propose_alert", "tool_input": too_many_fields(phrase)}],
    )
    me = new_tenant()

    alert = create(me, f'Emails that say "{phrase}".')

    assert f'"{phrase}"' in alert["definition"]["instructions"]
    assert alert["definition"]["state_schema"] == {"fields": []}
    first, second = model_requests(model_server, phrase)[-2:]
    [repair] = second["messages"][-1]["content"]
    assert repair["is_error"] is True
    assert "state_schema.fields" in repair["content"]
    assert len(first["messages"]) == 1
    assert len(alerts_of(me)["items"]) == 1


def test_a_proposal_over_the_limits_twice_is_refused_with_the_limit(
    new_tenant: NewTenant, model_server: ServerProcess
) -> None:
    phrase = token("refuse")
    bad = {"tool_name": "propose_alert", "tool_input": too_many_fields(phrase)}
    script(model_server, phrase, [bad, bad])
    me = new_tenant()

    answer = me.http.post(me.url("/alerts"), json={"prompt": f'Say "{phrase}".'})

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "refused"
    assert "limits" in answer.json()["detail"]
    assert "state_schema.fields" in answer.json()["detail"]
    assert alerts_of(me)["items"] == []


def test_a_model_that_stays_overloaded_answers_503(
    new_tenant: NewTenant, model_server: ServerProcess
) -> None:
    phrase = token("overload")
    overloaded = {"error": {"status": 529, "retry_after": 0}}
    script(model_server, phrase, [overloaded, overloaded])
    me = new_tenant()

    answer = me.http.post(me.url("/alerts"), json={"prompt": f'When "{phrase}".'})

    assert answer.status_code == 503
    assert answer.json()["error"] == "model_unavailable"


def test_a_model_that_answers_without_a_tool_answers_502(
    new_tenant: NewTenant, model_server: ServerProcess
) -> None:
    phrase = token("chatty")
    script(model_server, phrase, [{"text": "I would rather chat."}])
    me = new_tenant()

    answer = me.http.post(me.url("/alerts"), json={"prompt": f'When "{phrase}".'})

    assert answer.status_code == 502
    assert answer.json()["error"] == "model_answer_invalid"


# --- context -----------------------------------------------------------------


def test_the_retrieved_context_reaches_the_model_and_follows_a_change(
    new_tenant: NewTenant, model_server: ServerProcess
) -> None:
    me = new_tenant()

    def first_turn_of_a_draft() -> str:
        marker = token("ctx")
        prompt = f"Tell me when a customer mentions our competitors ({marker})."
        ok(me.http.post(me.url("/alerts/drafts"), json={"prompt": prompt}), 201)
        [request] = model_requests(model_server, marker)
        content: str = request["messages"][0]["content"]
        return content

    competitors = me.url("/context/competitors")
    ok(me.http.put(competitors, json={"text": "Our competitors: Umbrella."}), 201)
    ok(me.http.put(me.url("/context/team"), json={"text": "Jane leads EMEA."}), 201)
    before = first_turn_of_a_draft()
    ok(me.http.put(competitors, json={"text": "Our competitors: Initrode."}))
    after = first_turn_of_a_draft()
    assert me.http.delete(competitors).status_code == 204
    gone = first_turn_of_a_draft()

    assert "<tenant_context>\n[competitors] Our competitors: Umbrella." in before
    assert "[competitors] Our competitors: Initrode." in after
    assert "Umbrella" not in after
    assert "Jane" not in before + after  # retrieved by relevance, not all of it
    assert "competitors]" not in gone


def test_context_documents_are_stored_listed_replaced_and_deleted(
    new_tenant: NewTenant,
) -> None:
    me = new_tenant()
    glossary = me.url("/context/glossary")

    created = ok(me.http.put(glossary, json={"text": "Enterprise: annual."}), 201)
    replaced = ok(me.http.put(glossary, json={"text": "Enterprise: SSO."}), 200)
    listed = ok(me.http.get(me.url("/context")))
    read = ok(me.http.get(glossary))
    deleted = me.http.delete(glossary)

    assert created["chars"] == len("Enterprise: annual.")
    assert replaced["text"] == read["text"] == "Enterprise: SSO."
    assert [d["doc"] for d in listed["items"]] == ["glossary"]
    assert deleted.status_code == 204
    assert me.http.get(glossary).status_code == 404
    assert me.http.delete(glossary).status_code == 404


# --- management --------------------------------------------------------------


def test_an_update_is_validated_whole_and_a_new_schema_resets_the_state(
    new_tenant: NewTenant,
) -> None:
    me = new_tenant()
    alert = create(me, 'Count the emails that say "renewal".')
    path = me.url(f"/alerts/{alert['alert_id']}")
    assert alert["state"] == {"match_count": 0}

    kept = ok(me.http.patch(path, json={"instructions": 'Fire on "renewal".'}))
    invalid = me.http.patch(path, json={"initial_state": {"nope": 1}})
    unknown_type = me.http.patch(path, json={"data_types": ["fax"]})
    schema = {"fields": [{"name": "seen", "type": "boolean"}]}
    reset = ok(me.http.patch(path, json={"state_schema": schema}))

    assert kept["definition"]["instructions"] == 'Fire on "renewal".'
    assert kept["state"] == {"match_count": 0}
    assert kept["version"] == alert["version"] + 1
    assert invalid.status_code == 422
    assert invalid.json()["error"] == "invalid"
    assert "unknown state fields" in invalid.json()["detail"]
    assert unknown_type.status_code == 422
    assert reset["state"] == {"seen": False}
    assert reset["definition"]["initial_state"] == {"seen": False}
    assert ok(me.http.get(f"{path}/state"))["state"] == {"seen": False}


def test_alerts_are_disabled_enabled_and_deleted(new_tenant: NewTenant) -> None:
    me = new_tenant()
    alert = create(me, CLEAR_PROMPT)
    path = me.url(f"/alerts/{alert['alert_id']}")

    disabled = ok(me.http.post(f"{path}/disable"))
    enabled = ok(me.http.post(f"{path}/enable"))
    deleted = me.http.delete(path)

    assert (disabled["enabled"], enabled["enabled"]) == (False, True)
    assert deleted.status_code == 204
    assert me.http.get(path).status_code == 404
    assert me.http.delete(path).status_code == 404
    assert me.http.post(f"{path}/enable").status_code == 404
    assert alerts_of(me)["items"] == []


def test_the_list_pages_with_a_cursor(new_tenant: NewTenant) -> None:
    me = new_tenant()
    made = {
        create(me, f'When they say "{word}".')["alert_id"]
        for word in ("pilot", "budget", "renewal")
    }

    first = alerts_of(me, limit=2)
    second = alerts_of(me, limit=2, cursor=first["next_cursor"])

    assert len(first["items"]) == 2
    assert second["next_cursor"] is None
    assert {a["alert_id"] for a in first["items"] + second["items"]} == made
    too_big = me.http.get(me.url("/alerts"), params={"limit": 101})
    assert too_big.status_code == 422


def email(tenant: str, n: int, body: str) -> Email:
    return Email.model_validate(
        {
            "id": f"email-{uuid.uuid4().hex[:8]}-{n}",
            "tenant": tenant,
            "data_type": "email",
            "occurred_at": datetime(2025, 1, 1, n, tzinfo=UTC),
            "payload": {"from": "buyer", "to": ["rep"], "subject": "s", "body": body},
        }
    )


def test_changes_reach_the_live_tenant_actor_at_once(
    new_tenant: NewTenant, api_settings: Settings
) -> None:
    from actors.tenant_actor import tenant_handle

    me = new_tenant()
    old, new = token("old"), token("new")
    alert = create(me, f'Count the emails that say "{old}".')
    path = me.url(f"/alerts/{alert['alert_id']}")
    actor = tenant_handle(api_settings.with_overrides(evaluator_pool_size=1), me.tenant)

    def process(n: int, text: str) -> CommunicationOutcome:
        outcome: CommunicationOutcome = ray.get(
            actor.process.remote(email(me.tenant, n, text)), timeout=60
        )
        return outcome

    fired = process(1, f"We signed, {old} confirmed.")
    ok(me.http.post(f"{path}/disable"))
    while_disabled = process(2, f"Again {old}.")
    ok(me.http.patch(path, json={"instructions": f'Fire on "{new}".'}))
    ok(me.http.post(f"{path}/enable"))
    refired = process(3, f"Now {new} and {old}.")

    assert fired.fired == [alert["alert_id"]]
    assert while_disabled.results == []
    assert refired.fired == [alert["alert_id"]]
    [latest, first] = ok(me.http.get(f"{path}/evaluations"))["items"]
    assert latest["outcome"] == first["outcome"] == "fired"
    assert any(new in quote for quote in latest["evidence"])
    assert old in first["reason"]
    assert ok(me.http.get(f"{path}/state"))["state"] == {"match_count": 2}


def test_an_unknown_alert_or_draft_is_not_found(new_tenant: NewTenant) -> None:
    me = new_tenant()

    for path in ("/alerts/al-000000000000", "/alerts/drafts/dr-000000000000"):
        answer = me.http.get(me.url(path))
        assert answer.status_code == 404, path
        assert answer.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "x" * 4_001},
        {"prompt": "   "},
        {},
        {"prompt": CLEAR_PROMPT, "window_seconds": -1},
        {"prompt": CLEAR_PROMPT, "colour": "blue"},
    ],
    ids=["too-long", "blank", "missing", "negative-window", "unknown-field"],
)
def test_an_invalid_body_is_rejected_before_the_model_is_asked(
    new_tenant: NewTenant, body: dict[str, Any]
) -> None:
    me = new_tenant()

    assert me.http.post(me.url("/alerts"), json=body).status_code == 422
    assert alerts_of(me)["items"] == []


def test_the_api_documents_every_route_with_examples(api: httpx2.Client) -> None:
    assert api.get("/docs").status_code == 200
    spec = api.get("/openapi.json").json()

    schemas = spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation["summary"] and operation["description"], where
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert parameter["examples"], where
            body = operation.get("requestBody", {}).get("content", {})
            for media in body.values():
                name = media["schema"]["$ref"].rsplit("/", 1)[-1]
                assert schemas[name]["examples"], where
            if path.startswith("/v1/"):
                assert operation["security"] == [{"TenantKey": []}], where
                assert {"401", "404", "422", "503"} <= set(operation["responses"])
    create_op = spec["paths"]["/v1/tenants/{tenant}/alerts"]["post"]
    assert {"200", "201", "413", "422", "502"} <= set(create_op["responses"])


def test_an_unreachable_store_answers_503_without_serve(
    emulator: ServerProcess,
) -> None:
    # The app alone (no Serve, no Ray), against tables that were never made.
    settings = Settings(aws_endpoint_url=emulator.url, resource_prefix="missing")
    key = "ww_000000000000_" + "a" * 43
    with TestClient(build_app(settings)) as client:
        answer = client.get(
            "/v1/tenants/tenant-x/alerts", headers={"Authorization": f"Bearer {key}"}
        )

    assert answer.status_code == 503
    assert answer.json()["error"] == "store_unavailable"
