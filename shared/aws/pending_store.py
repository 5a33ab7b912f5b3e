"""Pending alerts: one entry per alert while its window is open, plus triggers.

Items of the pending table, under the partition ``<tenant>#<alert_id>``:

- ``sk = "entry"``: shard, first_seen_at (the window's start), last_updated_at,
  window_seconds, the latest state, and while a flush is under way its claim
  (the exact notification sent and the trigger keys it covers);
- ``sk = "trigger#<communication_id>"``: one trigger each, so an alert with
  thousands of triggers never nears DynamoDB's 400 KB item limit. Writing a
  trigger again (a redelivery) overwrites the same item: no duplicates.

Only entries carry ``shard``, so the GSI ``by-shard`` (shard, first_seen_at)
is sparse and lists exactly the open windows of a shard. A claim too large for
an item is kept in S3 and the entry holds its key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from shared.aws.clients import client
from shared.aws.evaluation_store import alert_key
from shared.aws.names import ResourceNames
from shared.aws.provision import PENDING_BY_SHARD
from shared.models.alerts import utcnow
from shared.models.notifications import PendingAlert, Trigger
from shared.settings import Settings

ENTRY = "entry"
TRIGGER_PREFIX = "trigger#"
# Claims above this size go to S3: an item holds at most 400 KB in all.
INLINE_CLAIM_LIMIT = 300_000


@dataclass(frozen=True)
class Claim:
    """What a flush committed to send: the body and the triggers it covers."""

    body: str
    trigger_keys: list[str]
    # The entry's last_updated_at when the claim was made: closing the window
    # compares against it, so a trigger added after the claim keeps the entry.
    last_updated_at: str


@dataclass(frozen=True)
class EntrySnapshot:
    pending: PendingAlert
    claim: Claim | None


class PendingStore:
    """The pending-alert table and, for large claims, the payload bucket."""

    def __init__(self, settings: Settings) -> None:
        names = ResourceNames.of(settings)
        self._ddb = client(settings, "dynamodb")
        self._s3 = client(settings, "s3")
        self._table = names.pending_table
        self._bucket = names.bucket

    def add_trigger(
        self,
        tenant: str,
        alert_id: str,
        shard: int,
        window_seconds: float,
        trigger: Trigger,
        state: dict[str, Any],
    ) -> PendingAlert:
        """Record a trigger and open (or extend) the alert's entry."""
        pk = alert_key(tenant, alert_id)
        # Trigger first, entry second: a flush that deletes the entry between
        # the two leaves the entry to be recreated by the second write, so the
        # trigger is never orphaned without an entry to flush it.
        self._ddb.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": pk},
                "sk": {"S": TRIGGER_PREFIX + trigger.communication_id},
                "trigger": {"S": trigger.model_dump_json()},
            },
        )
        now = utcnow().isoformat(timespec="microseconds")
        item = self._ddb.update_item(
            TableName=self._table,
            Key={"pk": {"S": pk}, "sk": {"S": ENTRY}},
            UpdateExpression=(
                "SET tenant = :t, alert_id = :a, #sh = :sh, window_seconds = :w,"
                " last_updated_at = :now, #s = :s,"
                " first_seen_at = if_not_exists(first_seen_at, :now)"
            ),
            ExpressionAttributeNames={"#s": "state", "#sh": "shard"},
            ExpressionAttributeValues={
                ":t": {"S": tenant},
                ":a": {"S": alert_id},
                ":sh": {"N": str(shard)},
                ":w": {"N": repr(float(window_seconds))},
                ":now": {"S": now},
                ":s": {"S": json.dumps(state, sort_keys=True)},
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return _pending(item)

    def entry(self, tenant: str, alert_id: str) -> EntrySnapshot | None:
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"pk": {"S": alert_key(tenant, alert_id)}, "sk": {"S": ENTRY}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        return EntrySnapshot(_pending(item), self._claim(item))

    def entries_of_shard(self, shard: int) -> list[PendingAlert]:
        """Every open window of a shard, oldest first (GSI query, paginated)."""
        found: list[PendingAlert] = []
        paginator = self._ddb.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=PENDING_BY_SHARD,
            KeyConditionExpression="#sh = :sh",
            ExpressionAttributeNames={"#sh": "shard"},
            ExpressionAttributeValues={":sh": {"N": str(shard)}},
        ):
            found.extend(_pending(i) for i in page.get("Items", []))
        return found

    def triggers(self, tenant: str, alert_id: str) -> list[tuple[str, Trigger]]:
        """(key, trigger) pairs of an alert, in arrival order."""
        pairs: list[tuple[str, Trigger]] = []
        paginator = self._ddb.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
            ExpressionAttributeValues={
                ":pk": {"S": alert_key(tenant, alert_id)},
                ":p": {"S": TRIGGER_PREFIX},
            },
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                pairs.append(
                    (
                        item["sk"]["S"],
                        Trigger.model_validate_json(item["trigger"]["S"]),
                    )
                )
        pairs.sort(key=lambda p: (p[1].received_at, p[0]))
        return pairs

    def claim(self, pending: PendingAlert, claim: Claim, notification_id: str) -> bool:
        """Save the exact notification about to be sent; False if it moved on."""
        encoded = json.dumps(
            {
                "body": claim.body,
                "trigger_keys": claim.trigger_keys,
                "last_updated_at": claim.last_updated_at,
            }
        )
        if len(encoded) > INLINE_CLAIM_LIMIT:
            key = f"claims/{notification_id}.json"
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=encoded.encode())
            value = {"M": {"s3_key": {"S": key}}}
        else:
            value = {"M": {"inline": {"S": encoded}}}
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={
                    "pk": {"S": alert_key(pending.tenant, pending.alert_id)},
                    "sk": {"S": ENTRY},
                },
                UpdateExpression="SET claim = :c",
                ConditionExpression="attribute_not_exists(claim)"
                " AND first_seen_at = :fs",
                ExpressionAttributeValues={
                    ":c": value,
                    ":fs": {
                        "S": pending.first_seen_at.isoformat(timespec="microseconds")
                    },
                },
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def remove_triggers(self, tenant: str, alert_id: str, keys: list[str]) -> None:
        pk = alert_key(tenant, alert_id)
        for start in range(0, len(keys), 25):
            requests = [
                {"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": key}}}}
                for key in keys[start : start + 25]
            ]
            pending: dict[str, Any] = {self._table: requests}
            while pending:
                response = self._ddb.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}

    def close_window(
        self, pending: PendingAlert, claimed_last_updated_at: str
    ) -> PendingAlert | None:
        """End the flushed window; the next window's entry if triggers remain.

        The entry is deleted only if nothing was added since the claim was read
        (``last_updated_at`` unchanged). Otherwise a trigger arrived during the
        flush: the entry stays, without its claim, and its window restarts at
        the earliest remaining trigger.
        """
        key = {
            "pk": {"S": alert_key(pending.tenant, pending.alert_id)},
            "sk": {"S": ENTRY},
        }
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key=key,
                ConditionExpression="last_updated_at = :lu",
                ExpressionAttributeValues={":lu": {"S": claimed_last_updated_at}},
            )
            return None
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        remaining = self.triggers(pending.tenant, pending.alert_id)
        if not remaining:
            # Only the entry was touched (its trigger went out in this flush).
            self._ddb.delete_item(TableName=self._table, Key=key)
            return None
        start = min(t.received_at for _, t in remaining)
        item = self._ddb.update_item(
            TableName=self._table,
            Key=key,
            UpdateExpression="REMOVE claim SET first_seen_at = :fs",
            ExpressionAttributeValues={
                ":fs": {"S": start.isoformat(timespec="microseconds")}
            },
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return _pending(item)

    def drop_entry(self, tenant: str, alert_id: str) -> None:
        self._ddb.delete_item(
            TableName=self._table,
            Key={"pk": {"S": alert_key(tenant, alert_id)}, "sk": {"S": ENTRY}},
        )

    def count_entries(self) -> int:
        """Open windows in the whole table (the demo's completion signal)."""
        total = 0
        paginator = self._ddb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="sk = :e",
            ExpressionAttributeValues={":e": {"S": ENTRY}},
            Select="COUNT",
        ):
            total += page["Count"]
        return total

    def _claim(self, item: dict[str, Any]) -> Claim | None:
        value = item.get("claim", {}).get("M")
        if not value:
            return None
        if "s3_key" in value:
            obj = self._s3.get_object(Bucket=self._bucket, Key=value["s3_key"]["S"])
            encoded = obj["Body"].read().decode()
        else:
            encoded = value["inline"]["S"]
        data = json.loads(encoded)
        return Claim(
            body=data["body"],
            trigger_keys=list(data["trigger_keys"]),
            last_updated_at=data["last_updated_at"],
        )


def _pending(item: dict[str, Any]) -> PendingAlert:
    return PendingAlert(
        tenant=item["tenant"]["S"],
        alert_id=item["alert_id"]["S"],
        shard=int(item["shard"]["N"]),
        first_seen_at=datetime.fromisoformat(item["first_seen_at"]["S"]),
        last_updated_at=datetime.fromisoformat(item["last_updated_at"]["S"]),
        window_seconds=float(item["window_seconds"]["N"]),
        state=json.loads(item["state"]["S"]),
    )
