"""``watchword dlq list`` and ``redrive`` against the emulator's real queues.

Dead letters are made the two ways production makes them: by a ``Poller``
(undecodable or refused messages, with a reason) and by the redrive policy
(a message received ``maxReceiveCount`` times without a delete). The commands
run through typer's CliRunner with ``WATCHWORD_*`` variables naming the
test's own emulator and resources, as a person's shell would.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from pydantic import SecretStr
from typer.testing import CliRunner

from cli.main import app
from ingest.poller import Poller
from ingest.publish import load_records, publish_communications
from shared.aws.clients import client
from shared.aws.names import UNROUTED, ResourceNames
from shared.errors import StateViolation
from shared.models import Communication
from shared.settings import Settings

pytestmark = pytest.mark.integration

SECRET_WORDS = "Saludos"  # the last word of the email's body


def cli_env(settings: Settings) -> dict[str, str]:
    """The ``WATCHWORD_*`` variables that make the CLI load these settings."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        text = value if isinstance(value, str) else json.dumps(value)
        env[f"WATCHWORD_{name.upper()}"] = text
    return env


def watchword(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=cli_env(settings))


def url(settings: Settings, name: str) -> str:
    return str(client(settings, "sqs").get_queue_url(QueueName=name)["QueueUrl"])


def visible(settings: Settings, name: str) -> tuple[int, int]:
    attributes = client(settings, "sqs").get_queue_attributes(
        QueueUrl=url(settings, name),
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
        ],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def send_raw(settings: Settings, kind: str, body: str, data_type: str) -> None:
    client(settings, "sqs").send_message(
        QueueUrl=url(settings, ResourceNames.of(settings).queue(kind)),
        MessageBody=body,
        MessageAttributes={
            "data_type": {"DataType": "String", "StringValue": data_type}
        },
    )


def exhaust_receives(settings: Settings, kind: str) -> None:
    """Receive without deleting until the redrive policy moves the message."""
    sqs = client(settings, "sqs")
    queue = url(settings, ResourceNames.of(settings).queue(kind))
    for _ in range(settings.sqs_max_receive_count + 1):
        sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0, WaitTimeSeconds=0)
    assert visible(settings, ResourceNames.of(settings).dlq(kind)) == (1, 0)


async def refuse(_: Communication) -> None:
    raise StateViolation("alert al-1: field 'hits' must be an integer")


async def accept(_: Communication) -> None:
    return None


def run_pollers(
    settings: Settings, kinds: list[str], route: Any, done: Any, timeout: float = 15
) -> list[Poller]:
    pollers = [Poller(settings, kind, route) for kind in kinds]

    async def scenario() -> None:
        for poller in pollers:
            poller.start()
        deadline = time.monotonic() + timeout
        try:
            while not done(pollers):
                assert time.monotonic() < deadline, [p.stats() for p in pollers]
                await asyncio.sleep(0.05)
        finally:
            await asyncio.gather(*(p.stop(1.0) for p in pollers))

    asyncio.run(scenario())
    return pollers


@pytest.fixture(scope="module")
def records(data_dir: Path) -> dict[str, dict[str, Any]]:
    wanted = {"email-enron-484d6430dccf", "sf-dadb6ea872ef"}
    return {r["id"]: r for r in load_records(data_dir) if r["id"] in wanted}


def test_dlq_list_shows_reasons_and_ids_but_no_text_and_consumes_nothing(
    aws_provisioned: Settings, records: dict[str, dict[str, Any]]
) -> None:
    settings = aws_provisioned
    names = ResourceNames.of(settings)
    email = records["email-enron-484d6430dccf"]
    publish_communications(settings, [email, {**email, "data_type": "fax"}])
    send_raw(settings, "email", '{"id": "email-broken", "payload": ', "email")
    send_raw(
        settings, "salesforce", json.dumps(records["sf-dadb6ea872ef"]), "salesforce"
    )
    exhaust_receives(settings, "salesforce")
    run_pollers(
        settings,
        ["email", UNROUTED],
        refuse,
        lambda ps: sum(p.stats()["dead_lettered"] for p in ps) == 3,
    )

    result = watchword(settings, "dlq", "list", "--json")

    assert result.exit_code == 0, result.output
    assert SECRET_WORDS not in result.output
    letters = [json.loads(line) for line in result.output.splitlines()]
    by_reason = {letter["reason"]: letter for letter in letters}
    assert len(letters) == 4
    refused = by_reason["StateViolation: alert al-1: field 'hits' must be an integer"]
    assert refused["kind"] == "email"
    assert refused["source_queue"] == names.queue("email")
    assert (refused["tenant"], refused["communication_id"]) == (
        "tenant-globex",
        email["id"],
    )
    assert refused["receive_count"] == 1
    [broken] = [r for r in letters if r["reason"].startswith("body is not valid JSON")]
    assert (broken["tenant"], broken["communication_id"]) == (None, None)
    fax = by_reason["missing or unknown data_type attribute ('fax')"]
    assert fax["kind"] == UNROUTED
    moved = by_reason["redrive policy: not processed in 3 receives"]
    assert moved["kind"] == "salesforce"
    assert moved["source_queue"] == names.queue("salesforce")
    assert moved["communication_id"] == "sf-dadb6ea872ef"
    assert moved["receive_count"] == 3

    # Listed, not consumed: every dead letter is visible again at once.
    for kind, count in (("email", 2), ("salesforce", 1), (UNROUTED, 1)):
        assert visible(settings, names.dlq(kind)) == (count, 0)

    table = watchword(settings, "dlq", "list", "--queue", "email")
    assert table.exit_code == 0, table.output
    assert "2 dead letters" in table.output
    assert "StateViolation" in table.output and SECRET_WORDS not in table.output


def test_dlq_redrive_sends_dead_letters_back_without_their_reason(
    aws_provisioned: Settings, records: dict[str, dict[str, Any]]
) -> None:
    settings = aws_provisioned
    names = ResourceNames.of(settings)
    email = records["email-enron-484d6430dccf"]
    for _ in range(2):
        send_raw(settings, "email", json.dumps(email), "email")
    send_raw(
        settings, "salesforce", json.dumps(records["sf-dadb6ea872ef"]), "salesforce"
    )
    exhaust_receives(settings, "salesforce")
    run_pollers(
        settings, ["email"], refuse, lambda ps: ps[0].stats()["dead_lettered"] == 2
    )

    one = watchword(settings, "dlq", "redrive", "--queue", "email", "--max", "1")
    assert one.exit_code == 0, one.output
    assert "email: 1 sent back" in one.output
    assert visible(settings, names.dlq("email")) == (1, 0)

    rest = watchword(settings, "dlq", "redrive")
    assert rest.exit_code == 0, rest.output
    assert "redriven 2" in rest.output
    for kind in ("email", "salesforce"):
        assert visible(settings, names.dlq(kind)) == (0, 0)
    assert visible(settings, names.queue("email")) == (2, 0)
    assert visible(settings, names.queue("salesforce")) == (1, 0)

    # Back on its queue as it first came: its own attributes, none of ours.
    [message] = client(settings, "sqs").receive_message(
        QueueUrl=url(settings, names.queue("salesforce")),
        MessageAttributeNames=["All"],
        VisibilityTimeout=0,
    )["Messages"]
    assert set(message["MessageAttributes"]) == {"data_type"}
    assert json.loads(message["Body"])["id"] == "sf-dadb6ea872ef"

    # The cause is fixed (the route accepts now): each is processed once.
    pollers = run_pollers(
        settings,
        ["email", "salesforce"],
        accept,
        lambda ps: [p.stats()["processed"] for p in ps] == [2, 1],
    )
    assert [p.stats()["dead_lettered"] for p in pollers] == [0, 0]


def test_dlq_redrive_refuses_the_catch_all_queue(aws_provisioned: Settings) -> None:
    result = watchword(aws_provisioned, "dlq", "redrive", "--queue", "unrouted")

    assert result.exit_code == 2
    assert "republish" in result.output
