"""``/readyz``: ready when the alert table and the Ray namespace answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serve.health import readiness_router
from shared.settings import Settings


def client_for(settings: Settings) -> TestClient:
    app = FastAPI()
    app.include_router(readiness_router(settings))
    return TestClient(app)


@pytest.fixture
def ready_client(ray_session: None, aws_provisioned: Settings) -> Iterator[TestClient]:
    with client_for(aws_provisioned) as client:
        yield client


def test_a_provisioned_stack_with_ray_is_ready(ready_client: TestClient) -> None:
    response = ready_client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"dynamodb": "ok", "ray": "ok"},
    }


def test_a_missing_alert_table_makes_it_not_ready(
    ray_session: None, aws_settings: Settings
) -> None:
    # aws_settings name tables that were never provisioned.
    with client_for(aws_settings) as client:
        response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["dynamodb"] == "failed: ResourceNotFoundException"
    assert body["checks"]["ray"] == "ok"
