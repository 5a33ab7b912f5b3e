"""Bring up Watchword's services, locally (with stand-ins) or on a cluster.

``local_stack`` is what ``watchword demo`` and ``watchword up --local`` share:
the AWS emulator and the offline model as child processes, a local Ray with its
dashboard, provisioning, then the services: AlertBatch shards, ingest pollers
and the alert API on Ray Serve. Everything is stopped in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from shared.aws.provision import provision
from shared.settings import Settings

logger = logging.getLogger(__name__)


class StackError(RuntimeError):
    """The stack cannot start as configured (a port taken, say)."""


@dataclass(frozen=True)
class Stack:
    settings: Settings
    api_url: str
    dashboard_url: str | None
    metrics_url: str


def _host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 80


def _require_free(what: str, host: str, port: int) -> None:
    from standins.process import port_in_use

    if port_in_use(host, port):
        raise StackError(
            f"{what} port {host}:{port} is in use. Is `watchword up --local`"
            " already running? Stop it first, or choose other ports through"
            " the WATCHWORD_* settings (see the README)."
        )


def start_services(settings: Settings, api: bool = True) -> str | None:
    """Start shards, pollers and (unless ``api`` is false) the API on the
    connected Ray; the API's URL, if it was deployed."""
    from actors.alert_batch import start_shards
    from actors.evaluator import evaluator_pool
    from ingest.supervisor import start_pollers
    from serve.deployment import deploy_api

    evaluator_pool(settings)
    asyncio.run(start_shards(settings))
    start_pollers(settings)
    return deploy_api(settings) if api else None


def stop_services(settings: Settings) -> None:
    import ray
    from ray import serve

    from ingest.supervisor import stop_pollers

    if not ray.is_initialized():
        return
    try:
        stop_pollers(settings, drain_seconds=5.0)
    except Exception:
        logger.exception("stopping the pollers failed")
    try:
        serve.shutdown()
    except Exception:
        logger.exception("stopping Serve failed")


@contextmanager
def local_stack(
    settings: Settings, log_dir: Path, dashboard: bool = True
) -> Iterator[Stack]:
    """The whole local stack; torn down on exit, whatever happened inside."""
    import ray

    from standins.aws_emulator import start_emulator
    from standins.offline_model import start_model_server

    if settings.stack != "local" or settings.aws_endpoint_url is None:
        raise StackError("the local stack needs WATCHWORD_STACK=local")
    log_dir.mkdir(parents=True, exist_ok=True)
    aws_host, aws_port = _host_port(settings.aws_endpoint_url)
    _require_free("AWS emulator", aws_host, aws_port)
    _require_free("API", settings.api_host, settings.api_port)
    if dashboard:
        _require_free("Ray dashboard", "127.0.0.1", settings.dashboard_port)
    _require_free("Ray metrics", "127.0.0.1", settings.metrics_export_port)
    offline = settings.model_provider == "offline"
    if offline:
        assert settings.model_base_url is not None
        model_host, model_port = _host_port(settings.model_base_url)
        _require_free("offline model", model_host, model_port)

    with ExitStack() as stack:
        emulator = start_emulator(aws_host, aws_port, log_dir / "aws-emulator.log")
        stack.callback(emulator.stop)
        if offline:
            model = start_model_server(
                model_host, model_port, log_path=log_dir / "offline-model.log"
            )
            stack.callback(model.stop)
        provision(settings)

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # A head node in the default temp folder: other processes on this
        # machine (`watchword status`, `watchword pollers`) join it with
        # ray.init(address="auto").
        ray.init(
            namespace=settings.ray_namespace,
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            dashboard_port=settings.dashboard_port,
            log_to_driver=False,
            configure_logging=False,
            _metrics_export_port=settings.metrics_export_port,
        )
        stack.callback(ray.shutdown)
        stack.callback(stop_services, settings)
        api_url = start_services(settings)
        assert api_url is not None
        dashboard_url = (
            f"http://127.0.0.1:{settings.dashboard_port}" if dashboard else None
        )
        metrics_url = f"http://127.0.0.1:{settings.metrics_export_port}/metrics"
        yield Stack(settings, api_url, dashboard_url, metrics_url)
