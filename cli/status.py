"""``watchword status``: a compact view of a running Watchword, once or live.

It joins the running Ray cluster as a driver (``WATCHWORD_RAY_ADDRESS``, or
the one ``watchword up --local`` started on this machine) and reads:

- the named actors of the namespace and their ``stats``: tenant actors (token
  spend, evaluations in the last minute), AlertBatch shards, ingest pollers;
- the queues' depths (SQS) and the open batch windows (the pending table);
- the ``watchword_*`` metrics of every node's Prometheus endpoint: queue lag,
  dead letters by reason class, failed evaluations, model errors and latency.

What cannot be read (a metrics endpoint, an actor that retired mid-call, the
AWS stack) is left out and named under "unavailable": a half-broken deployment
still shows what it can.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.table import Column, Table
from rich.text import Text

from cli.prometheus import Samples, node_endpoints, scrape
from shared.settings import Settings

STATS_TIMEOUT_SECONDS = 5.0
TOKEN_COLUMNS = (
    ("input_tokens", "input"),
    ("output_tokens", "output"),
    ("cache_creation_input_tokens", "cache write"),
    ("cache_read_input_tokens", "cache read"),
)


@dataclass(frozen=True)
class QueueRow:
    name: str
    visible: int
    in_flight: int
    lag_seconds: float | None


@dataclass(frozen=True)
class TenantRow:
    tenant: str
    in_flight: int
    evaluations_last_minute: int
    fired: int
    failed: int
    usage: dict[str, int]


@dataclass
class Status:
    """Everything the view shows, read at one moment."""

    namespace: str
    queues: list[QueueRow] = field(default_factory=list)
    pollers: dict[str, int] = field(default_factory=dict)
    tenants: list[TenantRow] = field(default_factory=list)
    timers: int = 0
    open_windows: int | None = None
    errors: list[tuple[str, int]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    @property
    def evaluations_per_minute(self) -> int:
        return sum(t.evaluations_last_minute for t in self.tenants)


def connect(settings: Settings) -> None:
    """Join the running Ray cluster as a driver, unless already joined."""
    import ray

    if ray.is_initialized():
        return
    if settings.stack == "local":
        # As the local stack started it: no token authentication, no report.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address=settings.ray_address or "auto",
        namespace=settings.ray_namespace,
        log_to_driver=False,
        configure_logging=False,
    )


def collect(settings: Settings) -> Status:
    """Read the actors, queues, pending table and metrics of the deployment."""
    status = Status(settings.ray_namespace)
    stats = _actor_stats(settings, status)
    status.endpoints = node_endpoints()
    samples, failed = scrape(status.endpoints)
    status.unavailable += [f"metrics at {url}" for url in failed]
    metrics = Samples(samples, settings.ray_namespace)

    for key in ("received", "processed", "dead_lettered", "retried", "in_flight"):
        status.pollers[key] = sum(s.get(key, 0) for s in stats["ingest"])
    status.pollers["pollers"] = len(stats["ingest"])
    status.timers = sum(s.get("timers", 0) for s in stats["alert-batch"])
    status.tenants = sorted(
        (
            TenantRow(
                tenant=s["tenant"],
                in_flight=s.get("in_flight", 0),
                evaluations_last_minute=s.get("evaluations_last_minute", 0),
                fired=s.get("fired", 0),
                failed=s.get("failed", 0),
                usage=s.get("usage", {}),
            )
            for s in stats["tenant"]
        ),
        key=lambda row: row.tenant,
    )
    _read_aws(settings, status, metrics)
    _read_errors(status, metrics, stats)
    _read_models(status, metrics)
    return status


def _actor_stats(settings: Settings, status: Status) -> dict[str, list[dict[str, Any]]]:
    """``stats()`` of every named actor of the namespace, by kind of actor."""
    import ray
    from ray.exceptions import GetTimeoutError, RayError

    wanted = ("tenant", "alert-batch", "ingest")
    calls: list[tuple[str, str, Any]] = []
    for actor in ray.util.list_named_actors(all_namespaces=True):
        kind = actor["name"].split("/", 1)[0]
        if actor["namespace"] != settings.ray_namespace or kind not in wanted:
            continue
        try:
            handle = ray.get_actor(actor["name"], namespace=actor["namespace"])
        except ValueError:
            continue  # it ended between the listing and the lookup
        calls.append((kind, actor["name"], handle.stats.remote()))

    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in wanted}
    deadline = time.monotonic() + STATS_TIMEOUT_SECONDS
    for kind, name, ref in calls:
        try:
            remaining = max(0.1, deadline - time.monotonic())
            found[kind].append(ray.get(ref, timeout=remaining))
        except (GetTimeoutError, RayError):
            # A tenant actor may retire between the listing and the call.
            status.unavailable.append(f"stats of {name}")
    return found


def _read_aws(settings: Settings, status: Status, metrics: Samples) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from shared.aws.pending_store import PendingStore
    from shared.aws.queues import queue_depths

    lag_by_queue = metrics.by("watchword_sqs_lag_seconds", "queue")
    lags = {queue: lag for (queue,), lag in lag_by_queue.items()}
    try:
        status.queues = [
            QueueRow(d.name, d.visible, d.in_flight, lags.get(d.name))
            for d in queue_depths(settings)
        ]
        status.open_windows = PendingStore(settings).count_entries()
    except (BotoCoreError, ClientError) as err:
        status.unavailable.append(f"AWS ({type(err).__name__})")


def _read_errors(
    status: Status, metrics: Samples, stats: dict[str, list[dict[str, Any]]]
) -> None:
    errors: list[tuple[str, int]] = []
    dead = metrics.by(
        "watchword_communications_dead_lettered_total", "data_type", "reason"
    )
    errors += [(f"dead letter {t}/{r}", int(n)) for (t, r), n in sorted(dead.items())]
    failed = metrics.total("watchword_evaluations_total", outcome="failed")
    if not metrics:  # no metrics yet: what the live actors know
        failed = sum(t.failed for t in status.tenants)
    errors.append(("failed evaluations", int(failed)))
    llm = metrics.by("watchword_llm_errors_total", "model", "error")
    errors += [(f"model error {m}/{e}", int(n)) for (m, e), n in sorted(llm.items())]
    flushes = sum(s.get("flush_errors", 0) for s in stats["alert-batch"])
    errors.append(("flush errors (live shards)", flushes))
    errors.append(("messages retried", status.pollers.get("retried", 0)))
    status.errors = errors


def _read_models(status: Status, metrics: Samples) -> None:
    latency = "watchword_llm_latency_seconds"
    counts = metrics.by(f"{latency}_count", "model")
    sums = metrics.by(f"{latency}_sum", "model")
    tokens = metrics.by("watchword_llm_tokens_total", "model", "kind")
    for (model,), calls in sorted(counts.items()):
        mean = sums.get((model,), 0.0) / calls if calls else 0.0
        spent = ", ".join(
            f"{kind.replace('_', ' ')} {int(tokens.get((model, kind), 0)):,}"
            for kind in ("input", "output", "cache_write", "cache_read")
        )
        status.models.append(
            f"{model}: {int(calls):,} calls, mean {mean:.2f}s; tokens {spent}"
        )


def render(status: Status) -> RenderableType:
    """The view: a few short tables, widest first."""
    parts: list[RenderableType] = []
    windows = "?" if status.open_windows is None else str(status.open_windows)
    title = Text.assemble(("Watchword", "bold"), f"  namespace {status.namespace}")
    parts.append(title)
    parts.append(
        Text(
            f"active tenants {len(status.tenants)}, "
            f"evaluations/min {status.evaluations_per_minute}, "
            f"pending windows {windows} (timers {status.timers})"
        )
    )

    longest = max((len(q.name) for q in status.queues), default=5)
    queues = Table(
        Column("queue", no_wrap=True, min_width=longest),
        "visible",
        "in flight",
        "lag",
        box=None,
        pad_edge=False,
    )
    for q in status.queues:
        lag = "-" if q.lag_seconds is None else f"{q.lag_seconds:.1f}s"
        queues.add_row(q.name, str(q.visible), str(q.in_flight), lag)
    parts.append(queues)
    parts.append(
        Text(
            "pollers "
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in status.pollers.items())
        )
    )

    widest = max((len(t.tenant) for t in status.tenants), default=6)
    tenants = Table(
        Column("tenant", no_wrap=True, min_width=widest),
        Column("evals/min", no_wrap=True, min_width=9),
        "in flight",
        "fired",
        "failed",
        *(title for _, title in TOKEN_COLUMNS),
        box=None,
        pad_edge=False,
        title="token spend (live tenant actors)",
        title_justify="left",
    )
    for t in status.tenants:
        tenants.add_row(
            t.tenant,
            str(t.evaluations_last_minute),
            str(t.in_flight),
            str(t.fired),
            str(t.failed),
            *(f"{t.usage.get(key, 0):,}" for key, _ in TOKEN_COLUMNS),
        )
    parts.append(tenants)
    parts += [Text(f"model {line}") for line in status.models]

    errors = ", ".join(f"{name} {count}" for name, count in status.errors)
    parts.append(Text(f"errors since start: {errors}"))
    if status.endpoints:
        parts.append(Text(f"metrics {' '.join(status.endpoints)}", style="dim"))
    if status.unavailable:
        parts.append(Text(f"unavailable: {', '.join(status.unavailable)}", "yellow"))
    return Group(*parts)


def command(
    watch: Annotated[
        bool, typer.Option("--watch", help="Refresh until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.5, help="Seconds between refreshes.")
    ] = 2.0,
) -> None:
    """Queues and lag, tenants, evaluations per minute, pending alerts, errors."""
    import logging

    from shared.logs import configure as configure_logging

    configure_logging(logging.WARNING)
    console = Console()
    settings = Settings()
    try:
        connect(settings)
    except ConnectionError as err:
        console.print(
            f"[red]No Ray cluster to join ({err}).[/] Start one with"
            " `watchword up --local`, or set WATCHWORD_RAY_ADDRESS."
        )
        raise typer.Exit(2) from None
    if not watch:
        console.print(render(collect(settings)))
        return

    from rich.live import Live

    with Live(render(collect(settings)), console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(render(collect(settings)), refresh=True)
        except KeyboardInterrupt:
            pass
