"""The alerts table: definitions, status and the versioned current state.

One item per alert, keyed (tenant, alert_id). The definition and the state are
stored as JSON strings: DynamoDB's number type would turn every float into a
Decimal, and the state is small and always read and written whole. ``version``
goes up by one on every state write; writers condition on it (see
``shared.aws.evaluation_store``).
"""

from __future__ import annotations

import builtins
import json
import uuid
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from shared.aws.clients import client
from shared.aws.names import ResourceNames
from shared.models.alerts import Alert, AlertDefinition, utcnow
from shared.settings import Settings


def new_alert_id() -> str:
    return "al-" + uuid.uuid4().hex[:12]


def alert_to_item(alert: Alert) -> dict[str, Any]:
    return {
        "tenant": {"S": alert.tenant},
        "alert_id": {"S": alert.alert_id},
        "definition": {"S": alert.definition.model_dump_json()},
        "enabled": {"BOOL": alert.enabled},
        "state": {"S": json.dumps(alert.state, sort_keys=True)},
        "version": {"N": str(alert.version)},
        "created_at": {"S": alert.created_at.isoformat()},
        "updated_at": {"S": alert.updated_at.isoformat()},
        "prompt": {"S": alert.prompt},
    }


def alert_from_item(item: dict[str, Any]) -> Alert:
    return Alert(
        tenant=item["tenant"]["S"],
        alert_id=item["alert_id"]["S"],
        definition=AlertDefinition.model_validate_json(item["definition"]["S"]),
        enabled=item["enabled"]["BOOL"],
        state=json.loads(item["state"]["S"]),
        version=int(item["version"]["N"]),
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        updated_at=datetime.fromisoformat(item["updated_at"]["S"]),
        prompt=item.get("prompt", {}).get("S", ""),
    )


class AlertStore:
    """CRUD on alert definitions, scoped by tenant on every call."""

    def __init__(self, settings: Settings) -> None:
        self._ddb = client(settings, "dynamodb")
        self._table = ResourceNames.of(settings).alerts_table

    def create(
        self,
        tenant: str,
        definition: AlertDefinition,
        prompt: str = "",
        alert_id: str | None = None,
    ) -> Alert:
        """Store a new alert; with ``alert_id`` given, fail if that id exists."""
        now = utcnow()
        alert = Alert(
            tenant=tenant,
            alert_id=alert_id or new_alert_id(),
            definition=definition,
            state=dict(definition.initial_state or {}),
            created_at=now,
            updated_at=now,
            prompt=prompt,
        )
        self._ddb.put_item(
            TableName=self._table,
            Item=alert_to_item(alert),
            ConditionExpression="attribute_not_exists(alert_id)",
        )
        return alert

    def get(self, tenant: str, alert_id: str) -> Alert | None:
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"tenant": {"S": tenant}, "alert_id": {"S": alert_id}},
            ConsistentRead=True,
        ).get("Item")
        return alert_from_item(item) if item else None

    def list(
        self, tenant: str, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[Alert], str | None]:
        """One page of a tenant's alerts, and the cursor of the next page."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "tenant = :t",
            "ExpressionAttributeValues": {":t": {"S": tenant}},
            "ConsistentRead": True,
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = {
                "tenant": {"S": tenant},
                "alert_id": {"S": cursor},
            }
        page = self._ddb.query(**kwargs)
        alerts = [alert_from_item(i) for i in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return alerts, (last["alert_id"]["S"] if last else None)

    # builtins.list: inside this class, ``list`` is the method above.
    def all_for_tenant(self, tenant: str) -> builtins.list[Alert]:
        alerts: builtins.list[Alert] = []
        cursor: str | None = None
        while True:
            page, cursor = self.list(tenant, limit=100, cursor=cursor)
            alerts.extend(page)
            if cursor is None:
                return alerts

    def replace(self, alert: Alert, expected_version: int) -> bool:
        """Write a changed alert whole if its version is still the expected one."""
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=alert_to_item(alert),
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":v": {"N": str(expected_version)}},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def delete(self, tenant: str, alert_id: str) -> bool:
        response = self._ddb.delete_item(
            TableName=self._table,
            Key={"tenant": {"S": tenant}, "alert_id": {"S": alert_id}},
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in response
