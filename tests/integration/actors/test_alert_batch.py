"""AlertBatch shard logic against the real emulator (no Ray needed here)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from actors.alert_batch import Shard
from shared.aws.alert_store import AlertStore
from shared.aws.clients import client
from shared.aws.evaluation_store import alert_key
from shared.aws.names import ResourceNames
from shared.aws.pending_store import TRIGGER_PREFIX, PendingStore
from shared.aws.queues import receive_notifications
from shared.delivery import ID_HEADER, SIGNATURE_HEADER, OutputQueue, verify
from shared.faults import InjectedFault
from shared.models import AlertDefinition, AlertNotification, Trigger
from shared.settings import Settings

TENANT = "tenant-batch"
FUTURE = 4_000_000_000.0  # a clock past every window


def make_alert(settings: Settings, window: float = 60) -> str:
    definition = AlertDefinition(
        name="Pricing pushback",
        description="d",
        data_types=["email"],
        instructions='Fire on "too expensive".',
        window_seconds=window,
        owner="ae@example.com",
    )
    return AlertStore(settings).create(TENANT, definition).alert_id


def trigger(n: int) -> Trigger:
    now = datetime.now(UTC)
    return Trigger(
        communication_id=f"email-{n}",
        data_type="email",
        occurred_at=now,
        received_at=now,
        reason="mentions price",
        evidence=["too expensive"],
    )


def add(settings: Settings, alert_id: str, n: int, window: float = 60) -> None:
    PendingStore(settings).add_trigger(TENANT, alert_id, 0, window, trigger(n), {})


def received(settings: Settings) -> list[AlertNotification]:
    return receive_notifications(settings)


def shard(settings: Settings, sender: OutputQueue | None = None) -> Shard:
    return Shard(settings, 0, sender=sender, clock=lambda: FUTURE)


def test_a_burst_inside_a_window_gives_one_notification_listing_all(
    aws_provisioned: Settings,
) -> None:
    alert_id = make_alert(aws_provisioned)
    for n in range(7):
        add(aws_provisioned, alert_id, n)
    asyncio.run(shard(aws_provisioned).flush(TENANT, alert_id))

    [notification] = received(aws_provisioned)
    assert notification.alert_name == "Pricing pushback"
    assert notification.owner == "ae@example.com"
    assert sorted(t.communication_id for t in notification.triggers) == [
        f"email-{n}" for n in range(7)
    ]
    assert PendingStore(aws_provisioned).entry(TENANT, alert_id) is None


def test_a_window_not_yet_due_is_not_flushed(aws_provisioned: Settings) -> None:
    alert_id = make_alert(aws_provisioned)
    add(aws_provisioned, alert_id, 1)
    early = Shard(aws_provisioned, 0, clock=lambda: 0.0)

    async def run() -> str | None:
        sent = await early.flush(TENANT, alert_id)
        for task in list(early._timers.values()):
            task.cancel()
        return sent

    assert asyncio.run(run()) is None
    assert received(aws_provisioned) == []


def test_a_trigger_arriving_during_a_flush_goes_in_the_next_one(
    aws_provisioned: Settings,
) -> None:
    alert_id = make_alert(aws_provisioned)
    add(aws_provisioned, alert_id, 1)

    class LateArrival(OutputQueue):
        def send(self, body: str, notification: str) -> None:
            add(aws_provisioned, alert_id, 2)  # lands while the first is sent
            super().send(body, notification)

    late = shard(aws_provisioned, sender=LateArrival(aws_provisioned))

    async def run() -> None:
        await late.flush(TENANT, alert_id)
        for task in list(late._timers.values()):
            task.cancel()
        await shard(aws_provisioned).flush(TENANT, alert_id)

    asyncio.run(run())
    first, second = received(aws_provisioned)
    assert [t.communication_id for t in first.triggers] == ["email-1"]
    assert [t.communication_id for t in second.triggers] == ["email-2"]
    assert first.notification_id != second.notification_id
    assert PendingStore(aws_provisioned).entry(TENANT, alert_id) is None


@pytest.mark.parametrize(
    "point", ["batch.before_send", "batch.after_send", "batch.after_remove"]
)
def test_a_crash_at_any_flush_point_delivers_everything_under_one_body_per_id(
    aws_provisioned: Settings, point: str
) -> None:
    alert_id = make_alert(aws_provisioned)
    for n in range(3):
        add(aws_provisioned, alert_id, n)
    crashing = shard(aws_provisioned)
    crashing.faults.arm(point)
    with pytest.raises(InjectedFault):
        asyncio.run(crashing.flush(TENANT, alert_id))
    assert crashing.faults.hits()[point] == 1

    asyncio.run(shard(aws_provisioned).flush(TENANT, alert_id))  # the restart
    notifications = received(aws_provisioned)
    assert len({n.notification_id for n in notifications}) == 1
    assert len({n.model_dump_json() for n in notifications}) == 1  # same content
    delivered = {t.communication_id for n in notifications for t in n.triggers}
    assert delivered == {"email-0", "email-1", "email-2"}
    assert PendingStore(aws_provisioned).entry(TENANT, alert_id) is None


def test_a_restarted_shard_finds_and_flushes_its_open_windows(
    aws_provisioned: Settings,
) -> None:
    alert_id = make_alert(aws_provisioned, window=0)
    add(aws_provisioned, alert_id, 1, window=0)
    fresh = Shard(aws_provisioned, 0)

    async def run() -> int:
        found = await fresh.rearm_all()
        for _ in range(50):
            if fresh.sent:
                break
            await asyncio.sleep(0.1)
        return found

    assert asyncio.run(run()) == 1
    assert len(received(aws_provisioned)) == 1


def test_an_alert_with_five_thousand_triggers_flushes(
    aws_provisioned: Settings,
) -> None:
    alert_id = make_alert(aws_provisioned)
    add(aws_provisioned, alert_id, 0)
    ddb = client(aws_provisioned, "dynamodb")
    table = ResourceNames.of(aws_provisioned).pending_table
    for start in range(1, 5000, 25):
        ddb.batch_write_item(
            RequestItems={
                table: [
                    {
                        "PutRequest": {
                            "Item": {
                                "pk": {"S": alert_key(TENANT, alert_id)},
                                "sk": {"S": f"{TRIGGER_PREFIX}email-{n}"},
                                "trigger": {"S": trigger(n).model_dump_json()},
                            }
                        }
                    }
                    for n in range(start, min(start + 25, 5000))
                ]
            }
        )
    asyncio.run(shard(aws_provisioned).flush(TENANT, alert_id))
    [notification] = received(aws_provisioned)
    assert len(notification.triggers) == 5000
    assert len(json.dumps(notification.model_dump(mode="json"))) > 256 * 1024
    assert PendingStore(aws_provisioned).triggers(TENANT, alert_id) == []


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver that fails its first request, then accepts."""

    received: list[tuple[str, dict[str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"])).decode()
        Receiver.received.append((body, dict(self.headers)))
        self.send_response(503 if len(Receiver.received) == 1 else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def test_the_webhook_gets_each_notification_signed_and_retried(
    aws_provisioned: Settings,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.received = []
    try:
        settings = aws_provisioned.with_overrides(
            webhook_url=f"http://127.0.0.1:{server.server_address[1]}/hook",
            webhook_secret=SecretStr("s3cret"),
        )
        alert_id = make_alert(settings)
        add(settings, alert_id, 1)
        sent = asyncio.run(
            Shard(settings, 0, clock=lambda: FUTURE).flush(TENANT, alert_id)
        )
    finally:
        server.shutdown()

    assert len(Receiver.received) == 2  # the 503, then the retry
    (first, _), (body, headers) = Receiver.received
    assert first == body
    assert headers[ID_HEADER] == sent
    assert verify("s3cret", body, headers[SIGNATURE_HEADER])
    assert not verify("other", body, headers[SIGNATURE_HEADER])
    [queued] = received(settings)
    assert queued.model_dump_json() == body
