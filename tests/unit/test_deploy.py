"""The deployment files: cluster.yaml, the Serve config and the IAM policies."""

from __future__ import annotations

import fnmatch
import importlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml
from ray.serve import Application
from ray.serve.schema import ServeDeploySchema

from shared.aws.names import ResourceNames

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def statements(policy_file: str) -> list[dict[str, Any]]:
    document = json.loads((DEPLOY / policy_file).read_text())
    found: list[dict[str, Any]] = document["Statement"]
    return found


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_cluster_yaml_validates_against_the_schema_ray_ships() -> None:
    schema = json.loads(
        (Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text()
    )
    jsonschema.validate(load_yaml(ROOT / "cluster.yaml"), schema)


def test_cluster_yaml_gives_the_head_and_the_workers_their_own_profiles() -> None:
    config = load_yaml(ROOT / "cluster.yaml")
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert head["node_config"]["IamInstanceProfile"] == {"Name": "watchword-head"}
    assert workers and all(
        w["node_config"]["IamInstanceProfile"] == {"Name": "watchword-node"}
        and w["max_workers"] > w["min_workers"]
        for w in workers
    )
    # The settings reach Ray's processes, which start the services and the API.
    starts = " ".join(config["head_start_ray_commands"])
    assert "deploy/watchword.env" in starts
    assert "watchword up --no-api" in starts
    assert "serve deploy ~/watchword/deploy/serve-config.yaml" in starts
    assert "deploy/watchword.env" in " ".join(config["worker_start_ray_commands"])
    assert any("pip install" in c for c in config["setup_commands"])


def test_the_serve_config_validates_against_serves_own_model() -> None:
    config = ServeDeploySchema.model_validate(load_yaml(DEPLOY / "serve-config.yaml"))
    assert [app.name for app in config.applications] == ["watchword-api"]


def test_the_serve_config_import_path_imports_and_builds_the_api() -> None:
    config = ServeDeploySchema.model_validate(load_yaml(DEPLOY / "serve-config.yaml"))
    [application] = config.applications
    module, attribute = application.import_path.split(":")
    builder = getattr(importlib.import_module(module), attribute)

    built = builder(application.args)

    assert isinstance(built, Application)
    # The names the config's deployment options refer to exist in the app.
    assert {d.name for d in application.deployments} == {"AlertAPI"}


def test_the_app_builder_refuses_an_unknown_setting() -> None:
    from serve.deployment import app_builder

    with pytest.raises(ValueError, match="not_a_setting"):
        app_builder({"not_a_setting": 1})


def test_the_node_policy_reaches_every_resource_of_the_prefix_and_no_other() -> None:
    names = ResourceNames("watchword")
    wanted = {
        "sqs": [names.queue(k) for k in names.input_kinds]
        + [names.dlq(k) for k in names.input_kinds]
        + [names.output_queue, names.output_dlq],
        "dynamodb": [
            f"table/{getattr(names, attr)}"
            for attr in dir(names)
            if attr.endswith("_table")
        ],
        "s3": [f"{names.bucket}/payloads/x.json"],
        "sns": [names.topic],
    }
    granted = {
        service: [
            r
            for s in statements("iam-policy.json")
            for r in as_list(s["Resource"])
            if r.startswith(f"arn:aws:{service}:")
        ]
        for service in wanted
    }
    for service, resources in wanted.items():
        for resource in resources:
            assert any(
                fnmatch.fnmatch(resource, pattern.rsplit(":", 1)[-1])
                for pattern in granted[service]
            ), f"{service} {resource} is not granted"

    for statement in statements("iam-policy.json"):
        assert statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"]):
            assert "watchword-" in resource, resource
        for action in as_list(statement["Action"]):
            assert "*" not in action, action


def test_the_head_may_pass_only_the_worker_role() -> None:
    passing = [s for s in statements("head-autoscaler-policy.json")]
    roles = [
        r
        for s in passing
        if "iam:PassRole" in as_list(s["Action"])
        for r in as_list(s["Resource"])
        if ":role/" in r
    ]
    assert roles == ["arn:aws:iam::*:role/watchword-node"]


def test_only_the_workers_offer_the_resource_every_actor_asks_for() -> None:
    from actors.placement import actor_options
    from shared.settings import Settings

    env = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy" / "watchword.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    resource = env["WATCHWORD_ACTOR_RESOURCE"]
    settings = Settings(stack="aws", actor_resource=resource)
    assert actor_options(settings) == {"num_cpus": 0, "resources": {resource: 1}}
    assert actor_options(Settings()) == {"num_cpus": 0}  # locally: nothing to ask

    nodes = load_yaml(ROOT / "cluster.yaml")["available_node_types"]
    head = load_yaml(ROOT / "cluster.yaml")["head_node_type"]
    offered = {name: node["resources"].get(resource, 0) for name, node in nodes.items()}
    assert offered[head] == 0
    assert all(units > 0 for name, units in offered.items() if name != head)
