"""Provisioning creates everything once and routes by data type."""

from __future__ import annotations

import json

from shared.aws.clients import client
from shared.aws.names import UNROUTED, ResourceNames
from shared.aws.provision import provision
from shared.settings import Settings


def test_a_second_provisioning_run_creates_nothing(aws_settings: Settings) -> None:
    first = provision(aws_settings)
    second = provision(aws_settings)
    assert len(first.created) >= 15
    assert second.created == []
    assert sorted(second.existing) == sorted(first.created + first.existing)


def test_the_topic_routes_each_data_type_and_the_rest_to_the_catch_all(
    aws_provisioned: Settings,
) -> None:
    names = ResourceNames.of(aws_provisioned)
    sns, sqs = client(aws_provisioned, "sns"), client(aws_provisioned, "sqs")
    topic = sns.create_topic(Name=names.topic)["TopicArn"]

    def publish(body: str, data_type: str | None) -> None:
        attributes = (
            {"data_type": {"DataType": "String", "StringValue": data_type}}
            if data_type
            else {}
        )
        sns.publish(TopicArn=topic, Message=body, MessageAttributes=attributes)

    publish("e", "email")
    publish("c", "call_transcript")
    publish("s", "salesforce")
    publish("fax", "fax")
    publish("none", None)

    def bodies(kind: str) -> list[str]:
        url = sqs.get_queue_url(QueueName=names.queue(kind))["QueueUrl"]
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        return sorted(json.loads(m["Body"])["Message"] for m in messages)

    assert bodies("email") == ["e"]
    assert bodies("call_transcript") == ["c"]
    assert bodies("salesforce") == ["s"]
    assert bodies(UNROUTED) == ["fax", "none"]


def test_every_input_queue_redrives_to_its_dead_letter_queue(
    aws_provisioned: Settings,
) -> None:
    names = ResourceNames.of(aws_provisioned)
    sqs = client(aws_provisioned, "sqs")
    for kind in names.input_kinds:
        url = sqs.get_queue_url(QueueName=names.queue(kind))["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["RedrivePolicy"]
        )["Attributes"]
        policy = json.loads(attributes["RedrivePolicy"])
        assert policy["deadLetterTargetArn"].endswith(names.dlq(kind))
        assert int(policy["maxReceiveCount"]) == aws_provisioned.sqs_max_receive_count
