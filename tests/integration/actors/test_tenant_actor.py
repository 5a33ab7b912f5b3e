"""TenantActor on real Ray with the offline model: identity, retirement, cache."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import ray

from actors.directory import TenantDirectory
from actors.names import tenant_actor
from actors.tenant_actor import tenant_handle
from shared.aws.alert_store import AlertStore
from shared.models import (
    AlertDefinition,
    CallTranscript,
    Email,
    StateField,
    StateSchema,
    parse_communication,
)
from shared.models.evaluation import CommunicationOutcome
from shared.settings import Settings

TENANT = "tenant-actor"


def counting_alert(settings: Settings, phrase: str, types: list[str]) -> str:
    definition = AlertDefinition(
        name=f"mentions of {phrase}",
        description="d",
        data_types=types,
        instructions=f'Fire when it mentions "{phrase}".',
        state_schema=StateSchema(fields=[StateField(name="seen", type="integer")]),
        window_seconds=60,
    )
    return AlertStore(settings).create(TENANT, definition).alert_id


def email(n: int, body: str) -> Email:
    return Email.model_validate(
        {
            "id": f"email-{n}",
            "tenant": TENANT,
            "data_type": "email",
            "occurred_at": "2025-01-01T10:00:00+00:00",
            "payload": {"from": "buyer", "to": ["rep"], "subject": "s", "body": body},
        }
    )


def actor_id(handle: ray.actor.ActorHandle) -> str:
    return handle._actor_id.hex()  # type: ignore[no-any-return]


def test_two_routers_asking_at_once_get_the_same_actor(
    ray_services: Settings,
) -> None:
    found: list[str] = []

    def ask() -> None:
        found.append(actor_id(tenant_handle(ray_services, TENANT)))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 6 and len(set(found)) == 1


def test_a_retiring_actor_refuses_and_the_router_moves_to_a_fresh_one(
    ray_services: Settings,
) -> None:
    alert_id = counting_alert(ray_services, "renewal", ["email"])
    directory = TenantDirectory(ray_services)

    async def run() -> tuple[str, str]:
        await directory.process(email(1, "the renewal is near"))
        old = directory.handle(TENANT)
        retiring = old.retire.remote()
        await asyncio.sleep(0.05)  # the retirement has begun
        outcome = await directory.process(email(2, "renewal again"))
        await retiring
        assert outcome.fired == [alert_id]
        return actor_id(old), actor_id(directory.handle(TENANT))

    old, new = asyncio.run(run())
    assert old != new
    alert = AlertStore(ray_services).get(TENANT, alert_id)
    assert alert is not None and alert.state == {"seen": 2}


def test_an_idle_actor_retires_by_itself_and_comes_back_on_the_next_message(
    ray_services: Settings,
) -> None:
    settings = ray_services.with_overrides(tenant_idle_seconds=1.0)
    alert_id = counting_alert(settings, "renewal", ["email"])
    directory = TenantDirectory(settings)
    asyncio.run(directory.process(email(1, "renewal")))

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            ray.get_actor(tenant_actor(TENANT), namespace=settings.ray_namespace)
        except ValueError:
            break
        time.sleep(0.25)
    else:
        pytest.fail("the idle tenant actor did not retire")

    asyncio.run(directory.process(email(2, "renewal")))
    alert = AlertStore(settings).get(TENANT, alert_id)
    assert alert is not None and alert.state == {"seen": 2}


@pytest.fixture
def slow_first_token(settings: Settings) -> Iterator[None]:
    """The offline model answers after 300 ms, with a fresh prompt cache."""
    base = settings.model_base_url
    httpx.delete(f"{base}/_control/cache").raise_for_status()
    httpx.post(
        f"{base}/_control/config", json={"ttft_ms": 300, "total_ms": 400}
    ).raise_for_status()
    yield
    httpx.post(
        f"{base}/_control/config", json={"ttft_ms": 0, "total_ms": 0}
    ).raise_for_status()


def long_transcript(data_dir: Path) -> CallTranscript:
    for line in (data_dir / "call_transcripts.jsonl").read_text().splitlines():
        record = json.loads(line)
        if len(line) > 30_000:
            record["tenant"] = TENANT
            comm = parse_communication(record)
            assert isinstance(comm, CallTranscript)
            return comm
    raise AssertionError("no long transcript in the data")


def evaluate_transcript(settings: Settings, data_dir: Path) -> CommunicationOutcome:
    for phrase in ("budget", "remote", "price"):
        counting_alert(settings, phrase, ["call_transcript"])
    return asyncio.run(TenantDirectory(settings).process(long_transcript(data_dir)))


@pytest.mark.usefixtures("slow_first_token")
def test_the_other_alerts_of_a_long_transcript_read_the_warm_up_cache(
    ray_services: Settings, data_dir: Path
) -> None:
    outcome = evaluate_transcript(ray_services, data_dir)
    usage = sorted(
        (r.usage for r in outcome.results), key=lambda u: u.cache_read_input_tokens
    )
    writer, readers = usage[0], usage[1:]
    assert writer.cache_creation_input_tokens > 1000
    assert all(u.cache_read_input_tokens > 1000 for u in readers)
    assert all(u.cache_creation_input_tokens == 0 for u in readers)


@pytest.mark.usefixtures("slow_first_token")
def test_without_the_warm_up_every_alert_writes_the_cache(
    ray_services: Settings, data_dir: Path
) -> None:
    settings = ray_services.with_overrides(evaluation_strategy="all_at_once")
    outcome = evaluate_transcript(settings, data_dir)
    assert len(outcome.results) == 3
    assert all(r.usage.cache_read_input_tokens == 0 for r in outcome.results)
    assert all(r.usage.cache_creation_input_tokens > 1000 for r in outcome.results)
