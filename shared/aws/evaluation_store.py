"""State writes and the evaluation ledger, committed together.

The ledger holds one item per (alert, communication): the validated result and
how far its side effects got. It is what makes processing idempotent:

- ``applied``: the new state and this item were written in one transaction,
  conditioned on the alert's version (so two writers never both win) and on
  the item not existing yet (so a redelivery never applies twice);
- ``completed``: the pending-alert upsert that a firing result needs is done.

A crash between the two leaves ``applied`` with the result inside it, so a
redelivery finishes the side effects from the record instead of evaluating
again. A ``failed`` item is only an audit record and never blocks a retry.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from shared.aws.clients import client
from shared.aws.names import ResourceNames
from shared.aws.provision import LEDGER_TTL_ATTRIBUTE
from shared.errors import VersionConflict
from shared.models.alerts import utcnow
from shared.models.evaluation import ProcessingResult
from shared.settings import Settings

LEDGER_TTL_SECONDS = 30 * 86_400

LedgerStatus = Literal["applied", "completed", "failed"]


class AlreadyApplied(Exception):
    """The ledger already holds this (alert, communication)."""


@dataclass(frozen=True)
class LedgerRecord:
    status: LedgerStatus
    result: ProcessingResult
    evaluated_at: str


def alert_key(tenant: str, alert_id: str) -> str:
    return f"{tenant}#{alert_id}"


class EvaluationStore:
    """Versioned state writes of the alerts table plus the ledger table."""

    def __init__(self, settings: Settings) -> None:
        names = ResourceNames.of(settings)
        self._ddb = client(settings, "dynamodb")
        self._alerts = names.alerts_table
        self._ledger = names.ledger_table

    def load_state(self, tenant: str, alert_id: str) -> tuple[dict[str, Any], int]:
        item = self._ddb.get_item(
            TableName=self._alerts,
            Key={"tenant": {"S": tenant}, "alert_id": {"S": alert_id}},
            ProjectionExpression="#s, version",
            ExpressionAttributeNames={"#s": "state"},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            raise KeyError(f"alert {alert_id} of {tenant} is gone")
        return json.loads(item["state"]["S"]), int(item["version"]["N"])

    def ledger(
        self, tenant: str, alert_id: str, communication_id: str
    ) -> LedgerRecord | None:
        item = self._ddb.get_item(
            TableName=self._ledger,
            Key={
                "pk": {"S": alert_key(tenant, alert_id)},
                "communication_id": {"S": communication_id},
            },
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else _record(item)

    def ledgers(
        self, tenant: str, alert_ids: list[str], communication_id: str
    ) -> dict[str, LedgerRecord]:
        """The ledger records of one communication for many alerts, batched."""
        found: dict[str, LedgerRecord] = {}
        for start in range(0, len(alert_ids), 100):  # BatchGetItem's limit
            keys = [
                {
                    "pk": {"S": alert_key(tenant, alert_id)},
                    "communication_id": {"S": communication_id},
                }
                for alert_id in alert_ids[start : start + 100]
            ]
            request: dict[str, Any] = {
                self._ledger: {"Keys": keys, "ConsistentRead": True}
            }
            while request:
                response = self._ddb.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._ledger, []):
                    alert_id = item["pk"]["S"].split("#", 1)[1]
                    found[alert_id] = _record(item)
                request = response.get("UnprocessedKeys") or {}
        return found

    def recent(self, tenant: str, alert_id: str, limit: int = 20) -> list[LedgerRecord]:
        """The latest ledger records of an alert (its why-it-fired trail)."""
        items = self._ddb.query(
            TableName=self._ledger,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": alert_key(tenant, alert_id)}},
        ).get("Items", [])
        records = [_record(i) for i in items]
        records.sort(key=lambda r: r.evaluated_at, reverse=True)
        return records[:limit]

    def _ledger_item(self, result: ProcessingResult, status: LedgerStatus) -> dict:
        return {
            "pk": {"S": alert_key(result.tenant, result.alert_id)},
            "communication_id": {"S": result.communication_id},
            "status": {"S": status},
            "outcome": {"S": result.outcome},
            "result": {"S": result.model_dump_json()},
            "evaluated_at": {"S": utcnow().isoformat()},
            LEDGER_TTL_ATTRIBUTE: {"N": str(int(time.time()) + LEDGER_TTL_SECONDS)},
        }

    def apply(self, result: ProcessingResult, expected_version: int) -> int:
        """Write the new state and the ledger record atomically; the new version.

        Raises VersionConflict when the alert moved on, AlreadyApplied when the
        ledger already has this pair.
        """
        assert result.new_state is not None
        now = utcnow().isoformat()
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._alerts,
                            "Key": {
                                "tenant": {"S": result.tenant},
                                "alert_id": {"S": result.alert_id},
                            },
                            "UpdateExpression": "SET #s = :s, version = :nv,"
                            " updated_at = :now",
                            "ConditionExpression": "version = :v",
                            "ExpressionAttributeNames": {"#s": "state"},
                            "ExpressionAttributeValues": {
                                ":s": {
                                    "S": json.dumps(result.new_state, sort_keys=True)
                                },
                                ":v": {"N": str(expected_version)},
                                ":nv": {"N": str(expected_version + 1)},
                                ":now": {"S": now},
                            },
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._ledger,
                            "Item": self._ledger_item(result, _status(result)),
                            # A failed attempt's audit record does not block.
                            "ConditionExpression": "attribute_not_exists(pk)"
                            " OR #st = :failed",
                            "ExpressionAttributeNames": {"#st": "status"},
                            "ExpressionAttributeValues": {":failed": {"S": "failed"}},
                        }
                    },
                ]
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [
                r.get("Code", "None")
                for r in err.response.get("CancellationReasons", [])
            ]
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise AlreadyApplied(result.alert_id, result.communication_id) from None
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise VersionConflict(
                    f"alert {result.alert_id} moved past version {expected_version}"
                ) from None
            raise
        return expected_version + 1

    def apply_stateless(self, result: ProcessingResult) -> None:
        """Record a result of an alert without state: the ledger item alone.

        There is no state to keep in order, so no version to check; the
        ledger's condition still makes a redelivery a no-op (AlreadyApplied).
        """
        try:
            self._ddb.put_item(
                TableName=self._ledger,
                Item=self._ledger_item(result, _status(result)),
                ConditionExpression="attribute_not_exists(pk) OR #st = :failed",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={":failed": {"S": "failed"}},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise AlreadyApplied(result.alert_id, result.communication_id) from None
            raise

    def mark_completed(self, tenant: str, alert_id: str, communication_id: str) -> None:
        self._ddb.update_item(
            TableName=self._ledger,
            Key={
                "pk": {"S": alert_key(tenant, alert_id)},
                "communication_id": {"S": communication_id},
            },
            UpdateExpression="SET #st = :c",
            ExpressionAttributeNames={"#st": "status"},
            ExpressionAttributeValues={":c": {"S": "completed"}},
        )

    def record_failure(self, result: ProcessingResult) -> None:
        """Audit a failed evaluation unless a real result is already there."""
        try:
            self._ddb.put_item(
                TableName=self._ledger,
                Item=self._ledger_item(result, "failed"),
                ConditionExpression="attribute_not_exists(pk) OR #st = :failed",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues={":failed": {"S": "failed"}},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


def _record(item: dict[str, Any]) -> LedgerRecord:
    return LedgerRecord(
        status=item["status"]["S"],  # type: ignore[arg-type]
        result=ProcessingResult.model_validate_json(item["result"]["S"]),
        evaluated_at=item["evaluated_at"]["S"],
    )


def _status(result: ProcessingResult) -> LedgerStatus:
    # Only a firing result has side effects left to do after the write.
    return "applied" if result.fired else "completed"
