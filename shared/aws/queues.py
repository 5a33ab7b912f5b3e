"""Reading queues from the outside: depths, lag and the output queue."""

from __future__ import annotations

from dataclasses import dataclass

from shared.aws.clients import client
from shared.aws.names import ResourceNames
from shared.aws.payloads import unwrap
from shared.models.notifications import AlertNotification
from shared.settings import Settings


@dataclass(frozen=True)
class QueueDepth:
    name: str
    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


def queue_depths(settings: Settings) -> list[QueueDepth]:
    """Every input queue, its dead-letter queue and the output queue."""
    names = ResourceNames.of(settings)
    sqs = client(settings, "sqs")
    queue_names = [q for k in names.input_kinds for q in (names.queue(k), names.dlq(k))]
    queue_names += [names.output_queue, names.output_dlq]
    depths = []
    for name in queue_names:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        depths.append(
            QueueDepth(
                name,
                int(attributes["ApproximateNumberOfMessages"]),
                int(attributes["ApproximateNumberOfMessagesNotVisible"]),
                int(attributes["ApproximateNumberOfMessagesDelayed"]),
            )
        )
    return depths


def receive_notifications(
    settings: Settings, wait_seconds: int = 0, delete: bool = True
) -> list[AlertNotification]:
    """Everything waiting on the output queue, as a downstream consumer reads it."""
    sqs = client(settings, "sqs")
    url = sqs.get_queue_url(QueueName=ResourceNames.of(settings).output_queue)[
        "QueueUrl"
    ]
    found: list[AlertNotification] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            body = unwrap(settings, message["Body"])
            found.append(AlertNotification.model_validate_json(body))
            if delete:
                sqs.delete_message(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"]
                )
        wait_seconds = 0
