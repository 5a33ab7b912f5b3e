"""Create every AWS resource Watchword needs; safe to run any number of times.

The same calls run against the local emulator and AWS. Each step looks first
and creates only what is missing, so a second run changes nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from shared.aws.clients import client
from shared.aws.names import UNROUTED, ResourceNames
from shared.settings import DATA_TYPES, Settings

logger = logging.getLogger(__name__)

LEDGER_TTL_ATTRIBUTE = "expires_at"
PENDING_BY_SHARD = "by-shard"


@dataclass
class ProvisionReport:
    """What a provisioning run found and what it created."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)

    def note(self, name: str, created: bool) -> None:
        (self.created if created else self.existing).append(name)


def filter_policy(kind: str) -> dict[str, Any]:
    """The SNS filter policy of a data type's queue, or of the catch-all queue.

    The catch-all takes a missing attribute or any value that is not a known
    data type. Values in one array are OR-ed; the emulator evaluates
    ``exists: false`` only when it comes first, and AWS accepts either order.
    """
    if kind == UNROUTED:
        return {"data_type": [{"exists": False}, {"anything-but": list(DATA_TYPES)}]}
    return {"data_type": [kind]}


def provision(settings: Settings) -> ProvisionReport:
    """Create the topic, queues, subscriptions, bucket and tables if missing."""
    names = ResourceNames.of(settings)
    report = ProvisionReport()
    sns = client(settings, "sns")
    sqs = client(settings, "sqs")

    topic_arn = sns.create_topic(Name=names.topic)["TopicArn"]  # idempotent
    report.note(names.topic, created=False)

    output_dlq_arn = _queue(sqs, names.output_dlq, None, settings, report)[1]
    _queue(sqs, names.output_queue, output_dlq_arn, settings, report)

    existing = _subscribed_endpoints(sns, topic_arn)
    for kind in names.input_kinds:
        dlq_arn = _queue(sqs, names.dlq(kind), None, settings, report)[1]
        url, arn = _queue(sqs, names.queue(kind), dlq_arn, settings, report)
        _allow_topic(sqs, url, arn, topic_arn)
        policy = json.dumps(filter_policy(kind))
        if arn in existing:
            sns.set_subscription_attributes(
                SubscriptionArn=existing[arn],
                AttributeName="FilterPolicy",
                AttributeValue=policy,
            )
            report.note(f"subscription {names.queue(kind)}", created=False)
        else:
            sns.subscribe(
                TopicArn=topic_arn,
                Protocol="sqs",
                Endpoint=arn,
                Attributes={"FilterPolicy": policy},
            )
            report.note(f"subscription {names.queue(kind)}", created=True)

    _bucket(settings, names.bucket, report)
    _tables(settings, names, report)
    logger.info(
        "provisioned prefix=%s created=%d existing=%d",
        names.prefix,
        len(report.created),
        len(report.existing),
    )
    return report


def _queue(
    sqs: Any,
    name: str,
    dlq_arn: str | None,
    settings: Settings,
    report: ProvisionReport,
) -> tuple[str, str]:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        created = False
    except ClientError as err:
        if "NonExistentQueue" not in str(err):
            raise
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        created = True
    attributes = {
        "VisibilityTimeout": str(settings.sqs_visibility_timeout),
        "ReceiveMessageWaitTimeSeconds": str(settings.sqs_wait_seconds),
        "MessageRetentionPeriod": str(14 * 86_400 if dlq_arn is None else 4 * 86_400),
    }
    if dlq_arn is not None:
        attributes["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": dlq_arn,
                "maxReceiveCount": str(settings.sqs_max_receive_count),
            }
        )
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    report.note(name, created)
    return url, arn


def _allow_topic(sqs: Any, url: str, queue_arn: str, topic_arn: str) -> None:
    # On AWS a queue accepts the topic's deliveries only under such a policy.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})


def _subscribed_endpoints(sns: Any, topic_arn: str) -> dict[str, str]:
    endpoints: dict[str, str] = {}
    paginator = sns.get_paginator("list_subscriptions_by_topic")
    for page in paginator.paginate(TopicArn=topic_arn):
        for sub in page["Subscriptions"]:
            endpoints[sub["Endpoint"]] = sub["SubscriptionArn"]
    return endpoints


def _bucket(settings: Settings, name: str, report: ProvisionReport) -> None:
    s3 = client(settings, "s3")
    try:
        s3.head_bucket(Bucket=name)
        report.note(name, created=False)
        return
    except ClientError:
        pass
    kwargs: dict[str, Any] = {"Bucket": name}
    if settings.aws_region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {
            "LocationConstraint": settings.aws_region
        }
    s3.create_bucket(**kwargs)
    report.note(name, created=True)


def _table_specs(names: ResourceNames) -> dict[str, dict[str, Any]]:
    def keys(pk: str, sk: str) -> dict[str, Any]:
        return {
            "KeySchema": [
                {"AttributeName": pk, "KeyType": "HASH"},
                {"AttributeName": sk, "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": pk, "AttributeType": "S"},
                {"AttributeName": sk, "AttributeType": "S"},
            ],
        }

    pending = keys("pk", "sk")
    pending["AttributeDefinitions"] += [
        {"AttributeName": "shard", "AttributeType": "N"},
        {"AttributeName": "first_seen_at", "AttributeType": "S"},
    ]
    # Sparse index: only the per-alert entry items carry ``shard``.
    pending["GlobalSecondaryIndexes"] = [
        {
            "IndexName": PENDING_BY_SHARD,
            "KeySchema": [
                {"AttributeName": "shard", "KeyType": "HASH"},
                {"AttributeName": "first_seen_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]
    return {
        names.alerts_table: keys("tenant", "alert_id"),
        names.ledger_table: keys("pk", "communication_id"),
        names.pending_table: pending,
        names.tenants_table: keys("tenant", "sk"),
    }


def _tables(settings: Settings, names: ResourceNames, report: ProvisionReport) -> None:
    ddb = client(settings, "dynamodb")
    for table, spec in _table_specs(names).items():
        try:
            ddb.describe_table(TableName=table)
            report.note(table, created=False)
            continue
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST", **spec)
        ddb.get_waiter("table_exists").wait(TableName=table)
        report.note(table, created=True)
        # Ledger records and creation drafts expire.
        if table in (names.ledger_table, names.tenants_table):
            ddb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={
                    "Enabled": True,
                    "AttributeName": LEDGER_TTL_ATTRIBUTE,
                },
            )
