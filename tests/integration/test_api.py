"""The alert API over HTTP: Ray Serve, the AWS emulator and the offline model.

The offline model decides by its documented rules: a prompt with double-quoted
phrases becomes a definition whose instructions keep them, a condition without
quotes gets clarifying questions, a request about data Watchword does not see
is refused. Scripted answers (``/_control/script``) stand for a model that
misbehaves; each script matches a token unique to its test.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from serve.app import build_app
from shared.settings import Settings
from standins.process import ServerProcess

pytestmark = pytest.mark.integration

CLEAR_PROMPT = 'Tell me when a customer on a call says "evaluating a competitor".'


def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


def alerts_of(api: httpx2.Client, tenant_id: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/v1/tenants/{tenant_id}/alerts", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def script(model: ServerProcess, match: str, responses: list[dict[str, Any]]) -> None:
    answer = httpx2.post(
        f"{model.url}/_control/script",
        json={"match": match, "responses": responses},
        timeout=5.0,
    )
    answer.raise_for_status()


def test_a_clear_prompt_creates_an_alert_that_the_tenant_can_list_and_read(
    api: httpx2.Client,
) -> None:
    who = tenant()

    created = api.post(
        f"/v1/tenants/{who}/alerts",
        json={"prompt": CLEAR_PROMPT, "owner": "jane@example.com"},
    )

    assert created.status_code == 201, created.text
    alert = created.json()
    assert alert["tenant"] == who
    assert '"evaluating a competitor"' in alert["definition"]["instructions"]
    assert alert["definition"]["data_types"] == ["call_transcript"]
    assert alert["definition"]["owner"] == "jane@example.com"
    assert alert["prompt"] == CLEAR_PROMPT

    listed = alerts_of(api, who)
    assert [a["alert_id"] for a in listed["items"]] == [alert["alert_id"]]
    assert listed["next_cursor"] is None
    one = api.get(f"/v1/tenants/{who}/alerts/{alert['alert_id']}")
    assert one.status_code == 200
    assert one.json() == alert
    assert alerts_of(api, tenant())["items"] == []  # another tenant sees none


def test_an_ambiguous_prompt_gets_questions_and_stores_nothing(
    api: httpx2.Client,
) -> None:
    who = tenant()

    answer = api.post(
        f"/v1/tenants/{who}/alerts",
        json={"prompt": "Tell me when a customer talks about our competitors."},
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "needs_clarification"
    assert 1 <= len(body["questions"]) <= 3
    assert alerts_of(api, who)["items"] == []


def test_a_request_for_data_watchword_does_not_see_is_refused_with_a_reason(
    api: httpx2.Client,
) -> None:
    who = tenant()

    answer = api.post(
        f"/v1/tenants/{who}/alerts",
        json={"prompt": 'Alert me when the stock price says "down 10%".'},
    )

    assert answer.status_code == 422
    assert answer.json()["error"] == "refused"
    assert "stock prices" in answer.json()["detail"]
    assert alerts_of(api, who)["items"] == []


@pytest.mark.parametrize("bad", ["-leading-dash", "a" * 65, "sp ace", "semi;colon"])
def test_a_malformed_tenant_id_is_rejected(api: httpx2.Client, bad: str) -> None:
    assert api.get(f"/v1/tenants/{bad}/alerts").status_code == 422
    created = api.post(f"/v1/tenants/{bad}/alerts", json={"prompt": CLEAR_PROMPT})
    assert created.status_code == 422


def test_an_unknown_alert_is_not_found(api: httpx2.Client) -> None:
    answer = api.get(f"/v1/tenants/{tenant()}/alerts/al-000000000000")

    assert answer.status_code == 404
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
    api: httpx2.Client, body: dict[str, Any]
) -> None:
    who = tenant()

    assert api.post(f"/v1/tenants/{who}/alerts", json=body).status_code == 422
    assert alerts_of(api, who)["items"] == []


def test_the_list_pages_with_a_cursor(api: httpx2.Client) -> None:
    who = tenant()
    made = {
        api.post(
            f"/v1/tenants/{who}/alerts", json={"prompt": f'When they say "{word}".'}
        ).json()["alert_id"]
        for word in ("pilot", "budget", "renewal")
    }

    first = alerts_of(api, who, limit=2)
    second = alerts_of(api, who, limit=2, cursor=first["next_cursor"])

    assert len(first["items"]) == 2
    assert second["next_cursor"] is None
    assert {a["alert_id"] for a in first["items"] + second["items"]} == made
    assert api.get(f"/v1/tenants/{who}/alerts", params={"limit": 101}).status_code == (
        422
    )


def test_a_proposal_over_the_limits_is_repaired_once_and_then_stored(
    api: httpx2.Client, model_server: ServerProcess
) -> None:
    token = f"repair-{uuid.uuid4().hex[:8]}"
    too_many = {
        "name": "Too much state",
        "description": "Nine counters.",
        "data_types": ["email"],
        "instructions": f'Fire on "{token}".',
        "state_schema": {
            "fields": [{"name": f"c{i}", "type": "integer"} for i in range(9)]
        },
    }
    script(
        model_server, token, [{"tool_name": "propose_alert", "tool_input": too_many}]
    )
    who = tenant()

    answer = api.post(
        f"/v1/tenants/{who}/alerts", json={"prompt": f'Emails that say "{token}".'}
    )

    assert answer.status_code == 201, answer.text
    assert f'"{token}"' in answer.json()["definition"]["instructions"]
    assert len(alerts_of(api, who)["items"]) == 1


def test_a_proposal_over_the_limits_twice_is_refused_with_the_limit(
    api: httpx2.Client, model_server: ServerProcess
) -> None:
    token = f"refuse-{uuid.uuid4().hex[:8]}"
    bad = {"tool_name": "propose_alert", "malformed": "fields"}
    script(model_server, token, [bad, bad])
    who = tenant()

    answer = api.post(
        f"/v1/tenants/{who}/alerts", json={"prompt": f'Emails that say "{token}".'}
    )

    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "refused"
    assert "limits" in answer.json()["detail"]
    assert alerts_of(api, who)["items"] == []


def test_a_model_that_stays_overloaded_answers_503(
    api: httpx2.Client, model_server: ServerProcess
) -> None:
    token = f"overload-{uuid.uuid4().hex[:8]}"
    overloaded = {"error": {"status": 529, "retry_after": 0}}
    script(model_server, token, [overloaded, overloaded])

    answer = api.post(
        f"/v1/tenants/{tenant()}/alerts", json={"prompt": f'When "{token}".'}
    )

    assert answer.status_code == 503
    assert answer.json()["error"] == "model_unavailable"


def test_a_model_that_answers_without_a_tool_answers_502(
    api: httpx2.Client, model_server: ServerProcess
) -> None:
    token = f"chatty-{uuid.uuid4().hex[:8]}"
    script(model_server, token, [{"text": "I would rather chat."}])

    answer = api.post(
        f"/v1/tenants/{tenant()}/alerts", json={"prompt": f'When "{token}".'}
    )

    assert answer.status_code == 502
    assert answer.json()["error"] == "model_answer_invalid"


def test_the_api_describes_itself(api: httpx2.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/docs").status_code == 200
    spec = api.get("/openapi.json").json()
    create = spec["paths"]["/v1/tenants/{tenant}/alerts"]["post"]
    assert set(create["responses"]) >= {"200", "201", "422", "502", "503"}
    assert spec["components"]["schemas"]["AlertCreate"]["examples"]


def test_an_unreachable_store_answers_503_without_serve(
    emulator: ServerProcess,
) -> None:
    # The app alone (no Serve, no Ray), against tables that were never made.
    settings = Settings(aws_endpoint_url=emulator.url, resource_prefix="missing")
    with TestClient(build_app(settings)) as client:
        answer = client.get(f"/v1/tenants/{tenant()}/alerts")

    assert answer.status_code == 503
    assert answer.json()["error"] == "store_unavailable"
