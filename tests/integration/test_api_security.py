"""The alert API's edges over HTTP: keys, tenant isolation, sizes, and a fuzzer.

The fuzzer (schemathesis) reads the API's own OpenAPI document and sends each
operation a bounded number of generated requests, valid and invalid, with a
valid key and its tenant fixed in the path, so that they reach the handlers;
no answer may be a 5xx, and every answer must be one the document declares,
in its declared shape.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from typer.testing import CliRunner

from serve.app import build_app
from serve.schemas import ApiLimits
from shared.settings import Settings
from tests.integration.conftest import TenantClient

pytestmark = pytest.mark.integration

NewTenant = Callable[[], TenantClient]

CLEAR_PROMPT = 'Tell me when an email says "evaluating a competitor".'
FUZZ_EXAMPLES = 8

# One example value per path parameter, for routes called without a real id.
PATH_VALUES = {
    "alert_id": "al-000000000000",
    "draft_id": "dr-000000000000",
    "doc": "glossary",
}


def tenant_routes(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document under /v1/tenants."""
    return [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path.startswith("/v1/tenants/")
        for method in operations
    ]


def filled(path: str, tenant: str, **values: str) -> str:
    return re.sub(
        r"\{(\w+)\}",
        lambda m: tenant if m[1] == "tenant" else {**PATH_VALUES, **values}[m[1]],
        path,
    )


@pytest.fixture
def spec(api: httpx2.Client) -> dict[str, Any]:
    body: dict[str, Any] = api.get("/openapi.json").json()
    return body


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer nonsense", "Basic dXNlcjpwYXNz", f"Bearer ww_{'0' * 12}_{'a' * 43}"],
    ids=["none", "malformed", "not-bearer", "unknown"],
)
def test_every_tenant_route_needs_a_valid_key(
    api: httpx2.Client, spec: dict[str, Any], authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}

    for method, path in tenant_routes(spec):
        answer = api.request(
            method, filled(path, "tenant-acme"), headers=headers, json={}
        )
        where = f"{method} {path}"
        assert answer.status_code == 401, where
        assert answer.json()["error"] == "unauthorized", where
        assert answer.headers["www-authenticate"] == "Bearer", where


def test_the_open_routes_need_no_key(api: httpx2.Client) -> None:
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json"):
        assert api.get(path).status_code == 200, path


def test_a_key_of_another_tenant_gets_404_and_changes_nothing(
    new_tenant: NewTenant, spec: dict[str, Any]
) -> None:
    owner, intruder = new_tenant(), new_tenant()
    alert = owner.http.post(owner.url("/alerts"), json={"prompt": CLEAR_PROMPT})
    assert alert.status_code == 201
    alert_id = alert.json()["alert_id"]
    draft = owner.http.post(
        owner.url("/alerts/drafts"), json={"prompt": "Tell me about competitors."}
    )
    assert draft.status_code == 201
    draft_id = draft.json()["draft_id"]
    doc = owner.http.put(owner.url("/context/glossary"), json={"text": "Ours."})
    assert doc.status_code == 201
    bodies = {
        "/v1/tenants/{tenant}/alerts/{alert_id}": {"instructions": 'On "x".'},
        "/v1/tenants/{tenant}/alerts": {"prompt": CLEAR_PROMPT},
        "/v1/tenants/{tenant}/alerts/drafts": {"prompt": CLEAR_PROMPT},
        "/v1/tenants/{tenant}/alerts/drafts/{draft_id}/messages": {"text": '"x"'},
        "/v1/tenants/{tenant}/context/{doc}": {"text": "Theirs."},
    }

    for method, path in tenant_routes(spec):
        url = filled(path, owner.tenant, alert_id=alert_id, draft_id=draft_id)
        answer = intruder.http.request(method, url, json=bodies.get(path))
        assert answer.status_code == 404, f"{method} {path}: {answer.text}"
        assert answer.json()["error"] == "not_found"

    after = owner.http.get(owner.url(f"/alerts/{alert_id}"))
    assert after.json() == alert.json()
    assert owner.http.get(owner.url(f"/alerts/drafts/{draft_id}")).json() == (
        draft.json()
    )
    assert owner.http.get(owner.url("/context/glossary")).json()["text"] == "Ours."
    listed = owner.http.get(owner.url("/alerts")).json()["items"]
    assert [a["alert_id"] for a in listed] == [alert_id]


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, api_settings: Settings
) -> Iterator[CliRunner]:
    """The ``watchword`` command, reaching this module's tables."""
    monkeypatch.setenv("WATCHWORD_AWS_ENDPOINT_URL", str(api_settings.aws_endpoint_url))
    monkeypatch.setenv("WATCHWORD_RESOURCE_PREFIX", api_settings.resource_prefix)
    root = logging.getLogger()
    level = root.level
    yield CliRunner()
    root.setLevel(level)  # the command configures logging for its process


def test_a_key_made_by_the_cli_works_and_a_revoked_one_is_refused_at_once(
    api: httpx2.Client, cli_env: CliRunner
) -> None:
    from cli.main import app

    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    made = cli_env.invoke(app, ["tenants", "create", tenant, "--label", "ci"])
    assert made.exit_code == 0, made.output
    key_id = re.search(r"key ([0-9a-f]{12})", made.output)
    token = re.search(r"^(ww_\S+)$", made.output, re.MULTILINE)
    assert key_id and token, made.output
    headers = {"Authorization": f"Bearer {token[1]}"}
    alerts = f"/v1/tenants/{tenant}/alerts"

    before = api.get(alerts, headers=headers)
    revoked = cli_env.invoke(app, ["tenants", "revoke", tenant, key_id[1]])
    after = api.get(alerts, headers=headers)
    listed = cli_env.invoke(app, ["tenants", "keys", tenant])
    again = cli_env.invoke(app, ["tenants", "revoke", tenant, key_id[1]])

    assert before.status_code == 200
    assert revoked.exit_code == 0, revoked.output
    assert after.status_code == 401
    assert key_id[1] in listed.output
    assert token[1] not in listed.output  # the key itself is never shown again
    assert again.exit_code == 1


def test_a_body_over_the_byte_limit_is_refused_with_413(
    new_tenant: NewTenant,
) -> None:
    me = new_tenant()
    big = b'{"text": "' + b"x" * ApiLimits.MAX_BODY_BYTES + b'"}'

    declared = me.http.put(
        me.url("/context/big"),
        content=big,
        headers={"content-type": "application/json"},
    )
    streamed = me.http.put(
        me.url("/context/big"),
        content=iter([big[:1000], big[1000:]]),  # chunked: no Content-Length
        headers={"content-type": "application/json"},
    )

    for answer in (declared, streamed):
        assert answer.status_code == 413
        assert answer.json()["error"] == "too_large"
    assert me.http.get(me.url("/context/big")).status_code == 404


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/alerts", {"prompt": "x" * (ApiLimits.MAX_PROMPT + 1)}),
        ("/context/glossary", {"text": "x" * (ApiLimits.MAX_CONTEXT_CHARS + 1)}),
        ("/alerts/drafts/dr-000000000000/messages", {"text": "x" * 2_001}),
    ],
    ids=["prompt", "context-document", "reply"],
)
def test_a_field_over_its_limit_is_refused_with_422(
    new_tenant: NewTenant, route: str, body: dict[str, Any]
) -> None:
    me = new_tenant()
    method = "PUT" if "/context/" in route else "POST"

    answer = me.http.request(method, me.url(route), json=body)

    assert answer.status_code == 422, answer.text
    assert "at most" in answer.text


@pytest.mark.parametrize(
    "raw",
    [b'{"prompt": NaN}', b'{"prompt": "\\ud800"}', b"[" * 5_000 + b"]" * 5_000],
    ids=["nan", "lone-surrogate", "deeply-nested"],
)
def test_json_that_no_store_can_hold_is_refused_with_422(
    new_tenant: NewTenant, raw: bytes
) -> None:
    me = new_tenant()

    answer = me.http.post(
        me.url("/alerts"), content=raw, headers={"content-type": "application/json"}
    )

    assert answer.status_code == 422, answer.text


def test_a_tenant_keeps_a_bounded_number_of_context_documents(
    new_tenant: NewTenant,
) -> None:
    me = new_tenant()
    for n in range(ApiLimits.MAX_CONTEXT_DOCS):
        made = me.http.put(me.url(f"/context/d{n}"), json={"text": "x"})
        assert made.status_code == 201

    one_more = me.http.put(me.url("/context/extra"), json={"text": "x"})
    replaced = me.http.put(me.url("/context/d0"), json={"text": "y"})

    assert one_more.status_code == 409
    assert one_more.json()["error"] == "limit_reached"
    assert replaced.status_code == 200


# --- the fuzzer ---------------------------------------------------------------

# The document is the app's own, built here so that schemathesis can make one
# test per operation at collection time; the requests go to the deployed API.
FUZZ_TENANT = f"tenant-fuzz-{uuid.uuid4().hex[:8]}"
schema = schemathesis.openapi.from_dict(
    build_app(Settings(resource_prefix="openapi")).openapi(),
    config=schemathesis.Config.from_dict(
        {
            "parameters": {"tenant": FUZZ_TENANT},
            "generation": {"max-examples": FUZZ_EXAMPLES, "database": "none"},
        }
    ),
)


@dataclass(frozen=True)
class FuzzTarget:
    """Where the fuzzer's requests go, with a valid key and real ids."""

    base_url: str
    headers: dict[str, str]
    ids: dict[str, str]


@pytest.fixture(scope="module")
def fuzz_target(api_url: str, api_settings: Settings) -> FuzzTarget:
    from shared.aws.tenant_store import TenantStore

    token = TenantStore(api_settings).create_key(FUZZ_TENANT).token
    headers = {"Authorization": f"Bearer {token}"}
    with httpx2.Client(base_url=api_url, headers=headers, timeout=30) as http:
        base = f"/v1/tenants/{FUZZ_TENANT}"
        alert = http.post(f"{base}/alerts", json={"prompt": CLEAR_PROMPT})
        draft = http.post(
            f"{base}/alerts/drafts", json={"prompt": "Tell me about competitors."}
        )
        http.put(f"{base}/context/glossary", json={"text": "Enterprise: SSO."})
    ids = {
        "alert_id": alert.json()["alert_id"],
        "draft_id": draft.json()["draft_id"],
    }
    return FuzzTarget(api_url, headers, ids)


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_fuzzer_with_a_valid_key_finds_no_server_error(
    case: schemathesis.Case, fuzz_target: FuzzTarget
) -> None:
    # Aim at the real alert and draft (when generated ids are valid) so that
    # the handlers run past their lookups.
    for name, value in fuzz_target.ids.items():
        if name in (case.path_parameters or {}):
            case.path_parameters[name] = value  # type: ignore[index]
    case.call_and_validate(
        base_url=fuzz_target.base_url,
        headers=fuzz_target.headers,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
