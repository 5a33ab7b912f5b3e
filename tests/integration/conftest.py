"""The alert API under Ray Serve, for the integration tests that speak HTTP to it.

Serve starts once per session, on a free port, at the first deploy. Each test
module that uses ``api_url`` gets its own provisioned settings (resource prefix
and Ray namespace) and deploys the API with them once (~2 s on an idle
machine, into the running Serve), then deletes it.

Settings reach a replica when it is created, so a per-test ``settings`` object
would mean a redeploy per test. The API scopes every route by tenant instead,
and each test uses tenant ids of its own: that isolates tests as well as
separate tables would, at the cost of one deploy per module. ``new_tenant``
makes such a tenant, with an API key, and a client that sends the key.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx2
import pytest

from shared.settings import Settings
from standins.process import ServerProcess, free_port


@pytest.fixture(scope="session")
def serve_port(ray_session: None) -> Iterator[int]:
    """The port Serve listens on; Serve shuts down at the end of the session."""
    from ray import serve

    yield free_port()
    serve.shutdown()


@pytest.fixture(scope="module")
def api_settings(
    emulator: ServerProcess, model_server: ServerProcess, serve_port: int
) -> Settings:
    """This module's provisioned settings, with the session's Serve port."""
    from shared.aws.provision import provision

    name = f"api{uuid.uuid4().hex[:8]}"
    settings = Settings(
        aws_endpoint_url=emulator.url,
        model_base_url=model_server.url,
        resource_prefix=name,
        ray_namespace=name,
        api_port=serve_port,
        llm_max_attempts=2,
        llm_timeout_seconds=10.0,
        llm_retry_after_cap_seconds=1.0,
    )
    provision(settings)
    return settings


@pytest.fixture(scope="module")
def api_url(api_settings: Settings) -> Iterator[str]:
    """The base URL of the API, deployed with this module's settings."""
    import ray
    from ray import serve

    from serve.deployment import APP_NAME, deploy_api

    url = deploy_api(api_settings)
    _wait_until_healthy(url)
    yield url
    # The replica holds a process and a CPU share that later modules may need;
    # so do the detached actors a test may have started in this namespace.
    serve.delete(APP_NAME)
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == api_settings.ray_namespace:
            with contextlib.suppress(ValueError):  # it ended meanwhile
                ray.kill(ray.get_actor(actor["name"], namespace=actor["namespace"]))


@pytest.fixture
def api(api_url: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=api_url, timeout=30.0) as client:
        yield client


def _wait_until_healthy(url: str, timeout: float = 30.0) -> None:
    # serve.run returns once the replica is up; the proxy may learn the route
    # a moment later.
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx2.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the API did not answer on {url} within {timeout:.0f}s")
        time.sleep(0.2)


@dataclass
class TenantClient:
    """A tenant of the API test module, its key, and a client that sends it."""

    tenant: str
    token: str
    http: httpx2.Client

    def url(self, suffix: str = "") -> str:
        """The path of this tenant's ``suffix`` (``/alerts``, ``/context/x``)."""
        return f"/v1/tenants/{self.tenant}{suffix}"


@pytest.fixture
def new_tenant(
    api_url: str, api_settings: Settings
) -> Iterator[Callable[[], TenantClient]]:
    """Makes tenants of their own, each with a fresh API key."""
    from shared.aws.tenant_store import TenantStore

    store = TenantStore(api_settings)
    made: list[TenantClient] = []

    def make() -> TenantClient:
        tenant = f"tenant-{uuid.uuid4().hex[:8]}"
        token = store.create_key(tenant, label="test").token
        http = httpx2.Client(
            base_url=api_url,
            timeout=30.0,
            headers={"Authorization": f"Bearer {token}"},
        )
        made.append(TenantClient(tenant, token, http))
        return made[-1]

    yield make
    for client in made:
        client.http.close()
