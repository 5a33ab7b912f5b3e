"""TenantWorker against the real emulator, with a scripted evaluator.

No Ray and no model here: the evaluator is a function that fires when the
communication contains the alert's phrase and counts, so every assertion is
about the worker's ordering, idempotency and crash safety.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from actors.tenant import TenantWorker
from shared.aws.alert_store import AlertStore
from shared.aws.evaluation_store import EvaluationStore
from shared.aws.pending_store import PendingStore
from shared.faults import InjectedFault
from shared.models import AlertDefinition, Email, StateField, StateSchema
from shared.models.evaluation import EvaluationRequest, ProcessingResult
from shared.settings import Settings

TENANT = "tenant-test"


class ScriptedEvaluator:
    """Fires on a phrase and counts; records each call and its start time."""

    def __init__(self, phrase: str = "competitor", delay: float = 0.0) -> None:
        self.phrase = phrase
        self.delay = delay
        self.calls: list[EvaluationRequest] = []
        self.started_at: dict[str, float] = {}

    async def __call__(
        self, request: EvaluationRequest, started: asyncio.Event
    ) -> ProcessingResult:
        self.calls.append(request)
        self.started_at[request.alert_id] = asyncio.get_running_loop().time()
        await asyncio.sleep(self.delay)
        started.set()
        await asyncio.sleep(self.delay)
        fired = self.phrase in request.communication_text
        state = dict(request.state)
        if fired and "count" in state:
            state["count"] += 1
        return ProcessingResult(
            tenant=request.tenant,
            alert_id=request.alert_id,
            communication_id=request.communication_id,
            outcome="fired" if fired else "not_fired",
            reason="scripted",
            new_state=state,
        )


def make_alert(settings: Settings, data_types: list[str] | None = None) -> str:
    definition = AlertDefinition(
        name="Competitor mentions",
        description="counts competitor mentions",
        data_types=data_types or ["email"],
        instructions='Fire on "competitor".',
        state_schema=StateSchema(fields=[StateField(name="count", type="integer")]),
        window_seconds=60,
    )
    return AlertStore(settings).create(TENANT, definition).alert_id


def email(n: int, body: str = "we are talking to a competitor") -> Email:
    return Email.model_validate(
        {
            "id": f"email-{n}",
            "tenant": TENANT,
            "data_type": "email",
            "occurred_at": datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
            "payload": {"from": "buyer", "to": ["rep"], "subject": "s", "body": body},
        }
    )


def make_worker(
    settings: Settings, evaluator: ScriptedEvaluator
) -> tuple[TenantWorker, list]:
    scheduled: list[tuple[str, str, int]] = []

    async def schedule(tenant: str, alert_id: str, shard: int) -> None:
        scheduled.append((tenant, alert_id, shard))

    worker = TenantWorker(
        settings, TENANT, evaluate=evaluator, schedule=schedule, shard_of=lambda t, a: 0
    )
    return worker, scheduled


def count_of(settings: Settings, alert_id: str) -> int:
    state, _ = EvaluationStore(settings).load_state(TENANT, alert_id)
    return int(state["count"])


def test_concurrent_communications_give_exact_counter_values(
    aws_provisioned: Settings,
) -> None:
    alert_id = make_alert(aws_provisioned)
    worker, scheduled = make_worker(aws_provisioned, ScriptedEvaluator(delay=0.01))

    async def run() -> None:
        await asyncio.gather(*(worker.process(email(n)) for n in range(12)))

    asyncio.run(run())
    assert count_of(aws_provisioned, alert_id) == 12
    assert len(PendingStore(aws_provisioned).triggers(TENANT, alert_id)) == 12
    assert len(scheduled) == 12


def test_a_redelivered_communication_changes_nothing(aws_provisioned: Settings) -> None:
    alert_id = make_alert(aws_provisioned)
    evaluator = ScriptedEvaluator()
    worker, _ = make_worker(aws_provisioned, evaluator)
    asyncio.run(worker.process(email(1)))
    asyncio.run(worker.process(email(1)))
    fresh, _ = make_worker(aws_provisioned, evaluator)  # a new actor, no cache
    asyncio.run(fresh.process(email(1)))
    assert count_of(aws_provisioned, alert_id) == 1
    assert len(evaluator.calls) == 1


def test_alerts_for_other_data_types_are_not_evaluated(
    aws_provisioned: Settings,
) -> None:
    make_alert(aws_provisioned, data_types=["salesforce"])
    evaluator = ScriptedEvaluator()
    worker, _ = make_worker(aws_provisioned, evaluator)
    outcome = asyncio.run(worker.process(email(1)))
    assert outcome.results == [] and evaluator.calls == []


@pytest.mark.parametrize(
    "point", ["tenant.after_state_write", "tenant.after_pending_upsert"]
)
def test_a_crash_after_a_write_still_lands_the_trigger_exactly_once(
    aws_provisioned: Settings, point: str
) -> None:
    alert_id = make_alert(aws_provisioned)
    evaluator = ScriptedEvaluator()
    worker, scheduled = make_worker(aws_provisioned, evaluator)
    worker.faults.arm(point)
    with pytest.raises(InjectedFault):
        asyncio.run(worker.process(email(1)))
    assert worker.faults.hits()[point] == 1

    # The redelivery meets a fresh actor, as after a real crash.
    fresh, fresh_scheduled = make_worker(aws_provisioned, evaluator)
    asyncio.run(fresh.process(email(1)))
    assert len(evaluator.calls) == 1  # finished from the ledger, not re-evaluated
    assert count_of(aws_provisioned, alert_id) == 1
    triggers = PendingStore(aws_provisioned).triggers(TENANT, alert_id)
    assert [t.communication_id for _, t in triggers] == ["email-1"]
    assert len(scheduled) + len(fresh_scheduled) >= 1
    record = EvaluationStore(aws_provisioned).ledger(TENANT, alert_id, "email-1")
    assert record is not None and record.status == "completed"


def test_two_workers_racing_on_one_alert_resolve_through_the_version(
    aws_provisioned: Settings,
) -> None:
    alert_id = make_alert(aws_provisioned)
    first, _ = make_worker(aws_provisioned, ScriptedEvaluator(delay=0.05))
    second, _ = make_worker(aws_provisioned, ScriptedEvaluator(delay=0.05))

    async def race() -> None:
        # Both load version 0 before either writes.
        await asyncio.gather(first.process(email(1)), second.process(email(2)))

    asyncio.run(race())
    assert first.counts["conflicts"] + second.counts["conflicts"] >= 1
    assert count_of(aws_provisioned, alert_id) == 2


def test_the_other_alerts_start_only_once_the_first_response_began(
    aws_provisioned: Settings,
) -> None:
    settings = aws_provisioned.with_overrides(cache_min_tokens=100)
    ids = {make_alert(settings) for _ in range(3)}
    evaluator = ScriptedEvaluator(delay=0.2)
    worker, _ = make_worker(settings, evaluator)
    long_body = "a competitor was mentioned. " * 200
    asyncio.run(worker.process(email(1, body=long_body)))

    starts = sorted(evaluator.started_at[a] for a in ids)
    assert starts[1] - starts[0] >= 0.18  # waited for the first to begin
    assert starts[2] - starts[1] < 0.1  # the rest went together
    assert [c.warm_up for c in evaluator.calls].count(True) == 1


def test_a_short_communication_gets_no_warm_up(aws_provisioned: Settings) -> None:
    for _ in range(3):
        make_alert(aws_provisioned)
    evaluator = ScriptedEvaluator(delay=0.2)
    worker, _ = make_worker(aws_provisioned, evaluator)
    asyncio.run(worker.process(email(1)))
    starts = sorted(evaluator.started_at.values())
    assert starts[-1] - starts[0] < 0.1
    assert not any(c.warm_up for c in evaluator.calls)


def stateless_alert(settings: Settings) -> str:
    definition = AlertDefinition(
        name="Competitor",
        description="no state to keep",
        data_types=["email"],
        instructions='Fire on "competitor".',
    )
    return AlertStore(settings).create(TENANT, definition).alert_id


def test_an_alert_without_state_evaluates_communications_side_by_side(
    aws_provisioned: Settings,
) -> None:
    alert_id = stateless_alert(aws_provisioned)
    evaluator = ScriptedEvaluator(delay=0.2)
    worker, scheduled = make_worker(aws_provisioned, evaluator)

    async def run() -> float:
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(worker.process(email(n)) for n in range(4)))
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(run()) < 4 * 0.4  # not one after another
    assert len(scheduled) == 4
    asyncio.run(worker.process(email(2)))  # a redelivery
    assert len(evaluator.calls) == 4
    triggers = PendingStore(aws_provisioned).triggers(TENANT, alert_id)
    assert sorted(t.communication_id for _, t in triggers) == [
        f"email-{n}" for n in range(4)
    ]
