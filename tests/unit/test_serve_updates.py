"""Changing an alert (``serve.routes.alerts``): the merge and the write, no servers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from serve.errors import ApiError
from serve.routes.alerts import MAX_CHANGE_ATTEMPTS, updated, write_change
from serve.schemas import AlertUpdate
from shared.models.alerts import Alert, AlertDefinition, utcnow


def counting_alert(count: int = 3) -> Alert:
    definition = AlertDefinition.model_validate(
        {
            "name": "Renewals",
            "description": "Emails about renewals.",
            "data_types": ["email"],
            "instructions": 'Fire on "renewal".',
            "state_schema": {
                "fields": [{"name": "match_count", "type": "integer", "minimum": 0}]
            },
            "window_seconds": 60,
        }
    )
    now = utcnow()
    return Alert(
        tenant="tenant-acme",
        alert_id="al-000000000001",
        definition=definition,
        state={"match_count": count},
        version=7,
        created_at=now,
        updated_at=now,
    )


def update(**fields: Any) -> AlertUpdate:
    return AlertUpdate.model_validate(fields)


def test_fields_left_out_stay_and_the_state_is_kept() -> None:
    alert = counting_alert()

    changed = updated(alert, update(instructions='Fire on "renewal" or "renew".'))

    assert changed.definition.instructions == 'Fire on "renewal" or "renew".'
    assert changed.definition.name == "Renewals"
    assert changed.definition.window_seconds == 60
    assert changed.state == {"match_count": 3}


def test_a_new_schema_restarts_the_state_from_its_defaults() -> None:
    schema = {"fields": [{"name": "last_seen", "type": "timestamp"}]}

    changed = updated(counting_alert(), update(state_schema=schema))

    assert changed.definition.initial_state == {"last_seen": None}
    assert changed.state == {"last_seen": None}


def test_the_same_schema_again_keeps_the_state() -> None:
    alert = counting_alert()
    same = alert.definition.state_schema.model_dump()

    assert updated(alert, update(state_schema=same)).state == {"match_count": 3}


def test_reset_state_restarts_it_without_a_schema_change() -> None:
    changed = updated(counting_alert(), update(reset_state=True))

    assert changed.state == {"match_count": 0}


def test_an_explicit_null_window_takes_the_default() -> None:
    changed = updated(counting_alert(), update(window_seconds=None))

    assert changed.definition.window_seconds is None


def test_a_result_that_is_no_valid_definition_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="unknown state fields"):
        updated(counting_alert(), update(initial_state={"nope": 1}))
    with pytest.raises(ValidationError):
        updated(counting_alert(), update(name=None))


class RacingStore:
    """An alert store whose conditional writes lose ``losses`` races first."""

    def __init__(self, alert: Alert | None, losses: int) -> None:
        self.alert = alert
        self.losses = losses
        self.writes: list[tuple[Alert, int]] = []

    def get(self, tenant: str, alert_id: str) -> Alert | None:
        return self.alert

    def replace(self, alert: Alert, expected_version: int) -> bool:
        self.writes.append((alert, expected_version))
        if self.losses > 0:
            # The tenant actor wrote a state meanwhile: one version further.
            self.losses -= 1
            assert self.alert is not None
            self.alert = self.alert.model_copy(
                update={"version": self.alert.version + 1}
            )
            return False
        self.alert = alert
        return True


def write(store: RacingStore) -> Alert:
    def disable(alert: Alert) -> Alert:
        return alert.model_copy(update={"enabled": False})

    return asyncio.run(
        write_change(store, "tenant-acme", "al-000000000001", disable)  # type: ignore[arg-type]
    )


def test_a_lost_version_race_is_run_again_on_the_newer_alert() -> None:
    store = RacingStore(counting_alert(), losses=2)

    changed = write(store)

    assert [expected for _, expected in store.writes] == [7, 8, 9]
    assert (changed.version, changed.enabled) == (10, False)


def test_a_change_that_keeps_losing_is_a_conflict() -> None:
    store = RacingStore(counting_alert(), losses=MAX_CHANGE_ATTEMPTS)

    with pytest.raises(ApiError) as conflict:
        write(store)

    assert conflict.value.status == 409
    assert len(store.writes) == MAX_CHANGE_ATTEMPTS


def test_a_change_to_a_missing_alert_is_not_found() -> None:
    with pytest.raises(ApiError) as missing:
        write(RacingStore(None, losses=0))

    assert missing.value.status == 404
