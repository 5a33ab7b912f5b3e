"""The alert API as a Ray Serve application.

The FastAPI app is built inside each replica, from the settings the replica
receives as its constructor argument (``__serve_build_asgi_app__`` runs after
the constructor): the app's routes close over those settings, so a module-level
app could not carry them. A redeploy with other settings (``serve.run`` under
the same name) replaces the replicas and with them the app.

Replicas run in Serve's own Ray namespace; every named-actor lookup they make
names ``settings.ray_namespace`` explicitly (see ``actors.directory``).

Two ways to deploy: ``deploy_api`` (the local stack, tests) and ``serve deploy
deploy/serve-config.yaml`` on a cluster, whose ``import_path`` names
``app_builder``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application, Deployment

from serve.app import build_app
from shared.settings import Settings

APP_NAME = "watchword-api"


@serve.deployment
@serve.ingress()
class AlertAPI:
    """One replica of the alert API."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_app(self._settings)


def deploy_api(settings: Settings) -> str:
    """Start Serve if needed, deploy (or update) the API and return its base URL.

    Serve's HTTP options are fixed when it first starts: a later call with
    another host or port updates the app but still serves where Serve listens.
    """
    serve.start(http_options={"host": settings.api_host, "port": settings.api_port})
    # mypy sees the class, not the Deployment that the decorators made of it.
    deployment: Deployment = AlertAPI  # type: ignore[assignment]
    app = deployment.options(
        ray_actor_options={"num_cpus": settings.api_num_cpus}
    ).bind(settings)
    serve.run(
        app,
        name=APP_NAME,
        route_prefix="/",
        blocking=False,
        logging_config={"log_level": "WARNING", "enable_access_log": False},
    )
    return f"http://{settings.api_host}:{settings.api_port}"


def app_builder(args: dict[str, Any]) -> Application:
    """The API bound to settings from ``WATCHWORD_*`` variables, for ``serve deploy``.

    Serve calls this where it builds the application, on the cluster, so the
    variables are those the Ray nodes were started with. ``args`` (the config
    file's ``args:``) override single settings by field name; an unknown name is
    an error, not a silent default.
    """
    settings = Settings(**args)
    deployment: Deployment = AlertAPI  # type: ignore[assignment]
    return deployment.options(
        ray_actor_options={"num_cpus": settings.api_num_cpus}
    ).bind(settings)
