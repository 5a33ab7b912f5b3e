"""Session-wide local stack for the tests.

One AWS emulator, one offline model and one Ray instance serve the whole
session (each takes seconds to start). Every test gets its own resource prefix
and Ray namespace through the ``settings`` fixture, so queues, tables and named
actors never leak between tests.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before Ray is imported anywhere: no token file under $HOME, no usage report.
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from shared.settings import Settings
from standins.process import ServerProcess, free_port

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"real input not found at {DATA_DIR} (see README)")
    return DATA_DIR


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def emulator(log_dir: Path) -> Iterator[ServerProcess]:
    from standins.aws_emulator import start_emulator

    server = start_emulator(port=free_port(), log_path=log_dir / "emulator.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def model_server(log_dir: Path) -> Iterator[ServerProcess]:
    from standins.offline_model import start_model_server

    server = start_model_server(port=free_port(), log_path=log_dir / "model.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(Path("/tmp") / f"ww-ray-{uuid.uuid4().hex[:6]}"),
    )
    yield
    ray.shutdown()


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def aws_settings(emulator: ServerProcess) -> Settings:
    """Settings naming this test's own queues, tables and Ray namespace.

    No model is started for these: tests that reach the model use ``settings``.
    """
    name = unique()
    return Settings(
        aws_endpoint_url=emulator.url,
        # Nothing listens on the discard port: a test that reaches the model
        # through these settings fails fast instead of hanging.
        model_base_url="http://127.0.0.1:9",
        resource_prefix=name,
        ray_namespace=name,
        sqs_wait_seconds=1,
        sqs_visibility_timeout=10,
        sqs_max_receive_count=3,
        batch_window_seconds=1.0,
        sweep_interval_seconds=2.0,
        tenant_idle_seconds=60.0,
    )


@pytest.fixture
def settings(aws_settings: Settings, model_server: ServerProcess) -> Settings:
    """``aws_settings`` plus the session's offline model."""
    return aws_settings.with_overrides(model_base_url=model_server.url)


@pytest.fixture
def provisioned(settings: Settings) -> Settings:
    from shared.aws.provision import provision

    provision(settings)
    return settings


@pytest.fixture
def aws_provisioned(aws_settings: Settings) -> Settings:
    from shared.aws.provision import provision

    provision(aws_settings)
    return aws_settings


@pytest.fixture
def ray_services(ray_session: None, provisioned: Settings) -> Iterator[Settings]:
    """Provisioned settings sized for tests, with every named actor of the
    test's namespace stopped afterwards (they are detached and would linger)."""
    import ray

    settings = provisioned.with_overrides(
        alert_batch_shards=2, evaluator_pool_size=1, pollers_per_queue=1
    )
    yield settings
    try:
        from ingest.supervisor import stop_pollers

        stop_pollers(settings, drain_seconds=1.0)
    finally:
        for actor in ray.util.list_named_actors(all_namespaces=True):
            if actor["namespace"] == settings.ray_namespace:
                with contextlib.suppress(ValueError):  # it ended meanwhile
                    ray.kill(ray.get_actor(actor["name"], namespace=actor["namespace"]))
