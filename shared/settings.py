"""The one settings object of Watchword.

Every setting is read from the environment once, at an entry point, with the
prefix ``WATCHWORD_`` (``WATCHWORD_BATCH_WINDOW_SECONDS=30``), and the object is
then handed down: to actors at creation, to the Serve deployment as an argument.
Nothing else in the code reads the environment.

The defaults describe the local stack (``watchword up --local``): the AWS
emulator on 127.0.0.1:4566, the offline model on 127.0.0.1:4590, the API on
127.0.0.1:8000. Setting ``WATCHWORD_STACK=aws`` drops the emulator endpoint and
its dummy credentials, so boto3 finds real ones the usual way.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DataType = Literal["call_transcript", "email", "salesforce"]
DATA_TYPES: tuple[DataType, ...] = ("call_transcript", "email", "salesforce")

LOCAL_AWS_ENDPOINT = "http://127.0.0.1:4566"
LOCAL_MODEL_URL = "http://127.0.0.1:4590"


class Settings(BaseSettings):
    """Configuration of every Watchword process; see the README's table."""

    model_config = SettingsConfigDict(env_prefix="WATCHWORD_", frozen=True)

    # Where the AWS resources live.
    stack: Literal["local", "aws"] = "local"
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    resource_prefix: str = Field(
        default="watchword",
        pattern=r"^[a-z0-9][a-z0-9-]{0,39}$",
        description="Prefix of every queue, topic, bucket and table name.",
    )

    # Which model serves.
    model_provider: Literal["offline", "anthropic"] = "offline"
    model_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    evaluation_model: str = "claude-sonnet-4-5"
    creation_model: str = "claude-sonnet-4-5"
    cache_min_tokens: int = Field(
        default=1024, description="Shortest prefix the model caches, in tokens."
    )
    evaluation_strategy: Literal["warm_up", "all_at_once", "no_cache"] = Field(
        default="warm_up",
        description=(
            "warm_up: first alert alone, the rest read its cache entry;"
            " all_at_once: every alert at once, each writing the cache;"
            " no_cache: every alert at once, no cache breakpoint (benchmarks)."
        ),
    )
    llm_max_concurrency: int = Field(
        default=32, description="Cluster-wide cap on concurrent LLM calls."
    )
    llm_timeout_seconds: float = 60.0
    llm_max_attempts: int = 5
    llm_retry_after_cap_seconds: float = 30.0

    # Ray.
    ray_address: str | None = None
    ray_namespace: str = "watchword"
    evaluator_pool_size: int = 2
    alert_batch_shards: int = 4
    tenant_idle_seconds: float = 300.0
    actor_resource: str | None = Field(
        default=None,
        description=(
            "Custom Ray resource of which every Watchword actor takes one unit;"
            " worker nodes advertise it, so the autoscaler adds nodes as actors"
            " grow. Unset locally."
        ),
    )

    # Ingestion.
    sqs_wait_seconds: int = Field(default=20, ge=0, le=20)
    sqs_visibility_timeout: int = Field(default=60, ge=1, le=43200)
    sqs_max_receive_count: int = Field(default=5, ge=1)
    ingest_max_in_flight: int = Field(default=20, ge=1)
    pollers_per_queue: int = Field(default=1, ge=0)

    # Batching.
    batch_window_seconds: float = Field(default=60.0, ge=0)
    sweep_interval_seconds: float = 30.0
    webhook_url: str | None = Field(
        default=None, description="Optional HTTPS endpoint that also gets each one."
    )
    webhook_secret: SecretStr | None = None
    webhook_timeout_seconds: float = 10.0
    webhook_max_attempts: int = Field(default=5, ge=1)

    # HTTP API.
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_num_cpus: float = 0.5
    dashboard_port: int = 8265
    metrics_export_port: int = Field(
        default=8080,
        description="Prometheus endpoint of the local stack's Ray node.",
    )

    @model_validator(mode="after")
    def _local_endpoints(self) -> Settings:
        # Frozen model: fill the derived defaults through object.__setattr__.
        if self.stack == "local" and self.aws_endpoint_url is None:
            object.__setattr__(self, "aws_endpoint_url", LOCAL_AWS_ENDPOINT)
        if self.model_provider == "offline" and self.model_base_url is None:
            object.__setattr__(self, "model_base_url", LOCAL_MODEL_URL)
        return self

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("WATCHWORD_WEBHOOK_URL needs WATCHWORD_WEBHOOK_SECRET")
        return self

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests give each its own names)."""
        return self.model_copy(update=changes)
