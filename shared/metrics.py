"""Every Ray metric of Watchword, and the small functions that record them.

Ray's metrics agent exports what each process records, on every node's
Prometheus endpoint (``ray start --metrics-export-port``) and in the dashboard's
metrics view, under the name given here prefixed ``ray_`` (and suffixed
``_total`` for counters): ``watchword_evaluations`` is scraped as
``ray_watchword_evaluations_total``.

Rules this module keeps:

- metric objects belong to the process that records into them, so they are made
  on first use, in that process, and never travel with an actor's pickled state;
- every series carries ``deployment`` (the settings' Ray namespace), and Ray adds
  ``WorkerId``: a query sums over workers, as in
  ``sum by (outcome) (rate(ray_watchword_evaluations_total[5m]))``;
- tag values come from small, fixed sets: data types, reason classes, outcomes,
  model names, queue names, shard numbers. Never a tenant, alert or message id,
  and never free text: dead-letter reasons are reduced to ``REASON_CLASSES``.

Ray forgets a gauge value that is not set again within two export intervals
(a dead worker's gauges must age out), so each process sets the last value of
its gauges again every ``GAUGE_REFRESH_SECONDS`` from a daemon thread. A gauge
therefore reads as "the value each live process holds": the active tenant
actors are the sum of a 1 that every live tenant actor holds.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from ray.util.metrics import Counter, Gauge, Histogram

from shared.models.evaluation import Usage
from shared.settings import Settings

PREFIX = "watchword_"
GAUGE_REFRESH_SECONDS = 1.0
LLM_LATENCY_BOUNDARIES = [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]

# Why a message was dead-lettered, as a tag: reasons themselves are free text.
REASON_CLASSES = (
    "invalid_json",
    "unknown_data_type",
    "validation",
    "too_large",
    "unicode",
    "payload",
    "redrive",
    "rejected",
    "other",
)
EVALUATION_OUTCOMES = ("fired", "not_fired", "failed", "skipped", "conflict")
TOKEN_KINDS = ("input", "output", "cache_write", "cache_read")

_COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "communications_received": (
        "SQS messages received by the pollers, by input queue's data type.",
        ("data_type",),
    ),
    "communications_processed": (
        "Communications durably processed by their tenant, then deleted.",
        ("data_type",),
    ),
    "communications_dead_lettered": (
        "Messages sent to a dead-letter queue, by data type and reason class.",
        ("data_type", "reason"),
    ),
    "evaluations": (
        "Alert evaluations, by data type and outcome "
        "(fired, not_fired, failed, skipped, conflict).",
        ("data_type", "outcome"),
    ),
    "alerts_fired": (
        "Evaluations that fired, each a trigger for its alert's window.",
        ("data_type",),
    ),
    "notifications_sent": (
        "Notifications sent to the output queue, one per alert and window.",
        (),
    ),
    "notification_flush_errors": (
        "Window flushes that failed and wait for a retry.",
        (),
    ),
    "llm_tokens": (
        "Model tokens, by model and kind (input, output, cache_write, cache_read).",
        ("model", "kind"),
    ),
    "llm_retries": ("Model calls retried after a transient error.", ("model",)),
    "llm_errors": (
        "Model calls that failed for good, by model and error class.",
        ("model", "error"),
    ),
}
_GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "sqs_lag_seconds": (
        "Age of the oldest message at the poller's latest receive (0: empty).",
        ("queue",),
    ),
    "pending_alerts": (
        "Open batch windows a shard holds a timer for.",
        ("shard",),
    ),
    "tenant_actors_active": (
        "1 for every live tenant actor: sum it for the active tenants.",
        (),
    ),
}
_HISTOGRAMS: dict[str, tuple[str, tuple[str, ...], list[float]]] = {
    "llm_latency_seconds": (
        "Seconds per model call, retries included, until the full answer.",
        ("model",),
        LLM_LATENCY_BOUNDARIES,
    ),
}

# Tags every series carries, next to the ones named above.
COMMON_TAGS = ("deployment",)

_lock = threading.Lock()
_created: dict[str, Any] = {}
_gauge_values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
_refresher: threading.Thread | None = None


class RecentEvents:
    """How many events happened in the last ``window`` seconds (thread-safe)."""

    def __init__(self, window: float = 60.0) -> None:
        self._window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def add(self, now: float) -> None:
        with self._lock:
            self._times.append(now)

    def count(self, now: float) -> int:
        with self._lock:
            while self._times and self._times[0] < now - self._window:
                self._times.popleft()
            return len(self._times)


_recent_evaluations = RecentEvents()


def names() -> list[str]:
    """Every metric's name as defined here (without Ray's ``ray_`` prefix)."""
    return [PREFIX + n for n in (*_COUNTERS, *_GAUGES, *_HISTOGRAMS)]


def _metric(name: str) -> Any:
    """The process's metric object ``name``, made on first use."""
    found = _created.get(name)
    if found is not None:
        return found
    with _lock:
        if name not in _created:
            full = PREFIX + name
            if name in _COUNTERS:
                text, keys = _COUNTERS[name]
                _created[name] = Counter(full, text, (*COMMON_TAGS, *keys))
            elif name in _GAUGES:
                text, keys = _GAUGES[name]
                _created[name] = Gauge(full, text, (*COMMON_TAGS, *keys))
            else:
                text, keys, bounds = _HISTOGRAMS[name]
                _created[name] = Histogram(full, text, bounds, (*COMMON_TAGS, *keys))
        return _created[name]


def _tags(settings: Settings, **tags: str) -> dict[str, str]:
    return {"deployment": settings.ray_namespace, **tags}


def _inc(name: str, settings: Settings, value: float = 1.0, **tags: str) -> None:
    if value > 0:
        _metric(name).inc(value, tags=_tags(settings, **tags))


def _set(name: str, settings: Settings, value: float, **tags: str) -> None:
    final = _tags(settings, **tags)
    _metric(name).set(value, tags=final)
    with _lock:
        _gauge_values[(name, frozenset(final.items()))] = value
    _ensure_refresher()


def _ensure_refresher() -> None:
    global _refresher
    with _lock:
        if _refresher is not None and _refresher.is_alive():
            return
        _refresher = threading.Thread(
            target=_refresh_forever, name="watchword-gauges", daemon=True
        )
        _refresher.start()


def _refresh_forever() -> None:
    while True:
        time.sleep(GAUGE_REFRESH_SECONDS)
        with _lock:
            values = list(_gauge_values.items())
        for (name, tags), value in values:
            _metric(name).set(value, tags=dict(tags))


# --- ingestion -------------------------------------------------------------


def record_received(
    settings: Settings,
    data_type: str,
    queue: str,
    messages: Iterable[Mapping[str, Any]],
    now: float | None = None,
) -> None:
    """A receive's messages, and the queue's lag from their ``SentTimestamp``.

    The receive must ask for the ``SentTimestamp`` system attribute. An empty
    receive sets the lag to 0: nothing was waiting.
    """
    batch = list(messages)
    _inc("communications_received", settings, len(batch), data_type=data_type)
    lag = queue_lag(batch, time.time() if now is None else now)
    _set("sqs_lag_seconds", settings, lag, queue=queue)


def queue_lag(messages: Iterable[Mapping[str, Any]], now: float) -> float:
    """Seconds since the oldest of ``messages`` was sent; 0 for none."""
    sent = [
        int(m["Attributes"]["SentTimestamp"]) / 1000
        for m in messages
        if "SentTimestamp" in m.get("Attributes", {})
    ]
    return max(0.0, now - min(sent)) if sent else 0.0


def record_processed(settings: Settings, data_type: str) -> None:
    _inc("communications_processed", settings, data_type=data_type)


def record_dead_lettered(settings: Settings, data_type: str, reason: str) -> None:
    """One dead letter; ``reason`` is the free-text reason or ``redrive``."""
    _inc(
        "communications_dead_lettered",
        settings,
        data_type=data_type,
        reason=reason_class(reason),
    )


def reason_class(reason: str) -> str:
    """The class of a dead-letter reason, one of ``REASON_CLASSES``.

    Reasons are written by ``ingest.decode`` and the poller; a reason this does
    not recognise counts as ``other``, which is worth a look when it grows.
    """
    if reason in REASON_CLASSES:
        return reason
    text = reason.lower()
    rules = (
        ("unicode", ("unicode", "utf-8", "surrogate")),
        ("too_large", ("too_long", "too long", "too large", "too deeply", " bytes")),
        ("payload", ("s3 payload", "s3 pointer")),
        ("unknown_data_type", ("data_type",)),
        (
            "invalid_json",
            ("not valid json", "must be a json object", "no message string"),
        ),
        ("validation", ("invalid communication",)),
    )
    for name, needles in rules:
        if any(needle in text for needle in needles):
            return name
    # A PermanentError from processing is logged as "<ClassName>: ...".
    head = reason.split(":", 1)[0]
    if head.isidentifier() and head[:1].isupper():
        return "rejected"
    return "other"


# --- tenants and evaluations ---------------------------------------------------


def record_evaluation(
    settings: Settings, data_type: str, outcome: str, now: float | None = None
) -> None:
    """One evaluation's outcome (``EVALUATION_OUTCOMES``); fired ones also count
    as alerts fired."""
    _inc("evaluations", settings, data_type=data_type, outcome=outcome)
    if outcome == "fired":
        _inc("alerts_fired", settings, data_type=data_type)
    if outcome in ("fired", "not_fired", "failed"):
        _recent_evaluations.add(time.monotonic() if now is None else now)


def evaluations_last_minute() -> int:
    """Evaluations this process recorded in the last 60 seconds."""
    return _recent_evaluations.count(time.monotonic())


def set_tenant_actor_active(settings: Settings, active: bool) -> None:
    """This process hosts a live tenant actor (or no longer does)."""
    _set("tenant_actors_active", settings, 1.0 if active else 0.0)


# --- the model -------------------------------------------------------------------


def record_llm_call(
    settings: Settings, model: str, seconds: float, usage: Usage
) -> None:
    _metric("llm_latency_seconds").observe(seconds, tags=_tags(settings, model=model))
    for kind, value in (
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
        ("cache_write", usage.cache_creation_input_tokens),
        ("cache_read", usage.cache_read_input_tokens),
    ):
        _inc("llm_tokens", settings, value, model=model, kind=kind)


def record_llm_retry(settings: Settings, model: str) -> None:
    _inc("llm_retries", settings, model=model)


def record_llm_error(
    settings: Settings, model: str, error: BaseException | str
) -> None:
    """A call that failed for good: an exception (its class names the error) or
    a short fixed label such as ``answer_rejected``."""
    label = error if isinstance(error, str) else type(error).__name__
    _inc("llm_errors", settings, model=model, error=label)


# --- batching -------------------------------------------------------------------


def set_pending_alerts(settings: Settings, shard: int, count: int) -> None:
    _set("pending_alerts", settings, float(count), shard=str(shard))


def record_notification_sent(settings: Settings) -> None:
    _inc("notifications_sent", settings)


def record_flush_error(settings: Settings) -> None:
    _inc("notification_flush_errors", settings)
