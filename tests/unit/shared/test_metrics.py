"""The metric definitions and the small pure parts of recording them."""

from __future__ import annotations

import json

import pytest

from ingest.decode import decode_message, unrouted_reason
from shared import metrics
from shared.errors import InvalidMessage
from shared.models.evaluation import Usage
from shared.settings import Settings


def reason_of(body: str, attributes: dict[str, object] | None = None) -> str:
    with pytest.raises(InvalidMessage) as caught:
        decode_message(body, attributes or {})
    return caught.value.reason


EMAIL = {
    "id": "e-1",
    "tenant": "t",
    "data_type": "email",
    "occurred_at": "2024-01-01T00:00:00+00:00",
    "payload": {"from": "a", "to": ["b"], "subject": "s", "body": "b"},
}


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (reason_of('{"id": "x"'), "invalid_json"),
        (reason_of("[1, 2]"), "invalid_json"),
        (reason_of('{"id": "x", "data_type": "fax"}'), "unknown_data_type"),
        (reason_of('{"id": "x"}'), "unknown_data_type"),
        (unrouted_reason("{}", {}), "unknown_data_type"),
        (reason_of(json.dumps({**EMAIL, "occurred_at": "soon"})), "validation"),
        (reason_of('{"id": "\\ud800", "data_type": "email"}'), "unicode"),
        (reason_of("[" * 100_000 + "]" * 100_000), "too_large"),
        ("redrive", "redrive"),
        ("StateViolation: field 'n' is not an integer", "rejected"),
        ("something nobody wrote yet", "other"),
    ],
)
def test_dead_letter_reasons_from_the_decoder_fall_into_a_few_classes(
    reason: str, expected: str
) -> None:
    assert metrics.reason_class(reason) == expected
    assert expected in metrics.REASON_CLASSES


def test_every_metric_is_named_with_the_project_prefix() -> None:
    names = metrics.names()
    assert names and all(name.startswith("watchword_") for name in names)
    assert len(set(names)) == len(names)


def test_the_lag_is_the_age_of_the_oldest_message_received() -> None:
    messages = [
        {"Attributes": {"SentTimestamp": "1000000"}},
        {"Attributes": {"SentTimestamp": "995000"}},
        {"Attributes": {}},
    ]
    assert metrics.queue_lag(messages, now=1005.5) == pytest.approx(10.5)
    assert metrics.queue_lag([], now=1005.5) == 0.0
    # A clock behind SQS's never gives a negative lag.
    assert metrics.queue_lag(messages[:1], now=999.0) == 0.0


def test_recent_events_forget_what_is_older_than_the_window() -> None:
    recent = metrics.RecentEvents(window=60.0)
    for moment in (0.0, 30.0, 59.0):
        recent.add(moment)
    assert recent.count(now=60.0) == 3
    assert recent.count(now=89.5) == 2
    assert recent.count(now=200.0) == 0


def test_recording_works_in_a_process_without_ray() -> None:
    settings = Settings(ray_namespace="unit-metrics")
    message = {"Attributes": {"SentTimestamp": "1000"}}
    metrics.record_received(settings, "email", "q-email", [message])
    metrics.record_processed(settings, "email")
    metrics.record_dead_lettered(settings, "email", "body is not valid JSON")
    metrics.record_evaluation(settings, "email", "fired")
    metrics.record_llm_call(settings, "m", 0.5, Usage(input_tokens=3))
    metrics.record_llm_retry(settings, "m")
    metrics.record_llm_error(settings, "m", TimeoutError())
    metrics.set_pending_alerts(settings, 0, 2)
    metrics.set_tenant_actor_active(settings, True)
    metrics.record_notification_sent(settings)
    metrics.record_flush_error(settings)
    assert metrics.evaluations_last_minute() >= 1
