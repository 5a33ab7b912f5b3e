"""The tenants table: API keys, context documents and creation drafts.

One table (``<prefix>-tenants``), keyed (``tenant``, ``sk``):

====================  ======================  ==================================
tenant                sk                      what
====================  ======================  ==================================
``apikey#<key_id>``   ``apikey``              a key's record, found by its id:
                                              owner tenant, hash, revoked_at
<tenant>              ``apikey#<key_id>``     the same key in its tenant's list
<tenant>              ``context#<doc>``       a context document's text
<tenant>              ``draft#<draft_id>``    a creation draft, as JSON, with a
                                              revision and an expiry (TTL)
====================  ======================  ==================================

Tenant ids never contain ``#``, so a key's record cannot collide with a tenant.

API keys are random tokens ``ww_<key_id>_<secret>`` (a 256-bit secret). Only
their SHA-256 is stored; a presented token is looked up by its key id and its
hash compared in constant time (``hmac.compare_digest``). The token is shown
once, when the key is made. A revoked key keeps its records, marked with the
time of revocation, as an audit trail.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import datetime
from typing import Annotated, Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from shared.aws.clients import client
from shared.aws.names import ResourceNames
from shared.aws.provision import LEDGER_TTL_ATTRIBUTE
from shared.models.alerts import AlertDefinition, utcnow
from shared.settings import Settings

TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DOC_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
DRAFT_ID_PATTERN = r"^dr-[0-9a-f]{12}$"
TOKEN_PATTERN = re.compile(r"^ww_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")

DRAFT_TTL_SECONDS = 7 * 86_400
# The expiry attribute that the tables' TTL setting names (see provision).
EXPIRES_AT = LEDGER_TTL_ATTRIBUTE

_KEY = "apikey"
_CONTEXT = "context#"
_DRAFT = "draft#"


class ApiKey(BaseModel):
    """An API key of a tenant, without its secret."""

    key_id: str
    tenant: str
    label: str = ""
    created_at: datetime
    revoked_at: datetime | None = None


class IssuedKey(BaseModel):
    """A new key and its token, which is not stored and shown only this once."""

    key: ApiKey
    token: str


class ContextDocument(BaseModel):
    """A short document the tenant wrote for alert creation to draw on."""

    tenant: str
    doc: str
    text: str
    updated_at: datetime


DraftStatus = Literal["needs_clarification", "ready", "refused", "accepted"]


class Draft(BaseModel):
    """An alert in the making: the creation dialogue and where it stands."""

    model_config = ConfigDict(extra="forbid")

    tenant: str
    draft_id: Annotated[str, Field(pattern=DRAFT_ID_PATTERN)]
    status: DraftStatus
    prompt: str
    owner: str = ""
    window_seconds: float | None = None
    questions: list[str] = []
    definition: AlertDefinition | None = None
    reason: str = ""
    context: list[str] = []
    messages: list[dict[str, Any]]
    replies: int = 0
    alert_id: str | None = None
    revision: int = 0
    created_at: datetime
    updated_at: datetime
    expires_at: datetime

    @property
    def accepted_alert_id(self) -> str:
        """The id the alert made from this draft has (the same random part)."""
        return "al-" + self.draft_id.removeprefix("dr-")


def new_draft_id() -> str:
    return "dr-" + secrets.token_hex(6)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TenantStore:
    """API keys, context documents and drafts, scoped by tenant on every call."""

    def __init__(self, settings: Settings) -> None:
        self._ddb = client(settings, "dynamodb")
        self._table = ResourceNames.of(settings).tenants_table

    # --- API keys ----------------------------------------------------------

    def create_key(self, tenant: str, label: str = "") -> IssuedKey:
        """A new key for ``tenant``; the token is in the answer and nowhere else."""
        if not re.fullmatch(TENANT_PATTERN, tenant):
            raise ValueError(f"not a tenant id: {tenant!r}")
        key = ApiKey(
            key_id=secrets.token_hex(6), tenant=tenant, label=label, created_at=utcnow()
        )
        token = f"ww_{key.key_id}_{secrets.token_urlsafe(32)}"
        common = {
            "key_id": {"S": key.key_id},
            "owner": {"S": tenant},
            "label": {"S": label},
            "created_at": {"S": key.created_at.isoformat()},
        }
        self._ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "tenant": {"S": f"{_KEY}#{key.key_id}"},
                            "sk": {"S": _KEY},
                            "hash": {"S": hash_token(token)},
                            **common,
                        },
                        "ConditionExpression": "attribute_not_exists(tenant)",
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "tenant": {"S": tenant},
                            "sk": {"S": f"{_KEY}#{key.key_id}"},
                            **common,
                        },
                    }
                },
            ]
        )
        return IssuedKey(key=key, token=token)

    def authenticate(self, token: str) -> ApiKey | None:
        """The live key that ``token`` is, or None (unknown, wrong or revoked)."""
        match = TOKEN_PATTERN.fullmatch(token)
        if match is None:
            return None
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"tenant": {"S": f"{_KEY}#{match.group(1)}"}, "sk": {"S": _KEY}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            return None
        if not hmac.compare_digest(item["hash"]["S"], hash_token(token)):
            return None
        key = _key_from_item(item)
        return None if key.revoked_at is not None else key

    def keys(self, tenant: str) -> list[ApiKey]:
        """Every key of ``tenant``, revoked ones included."""
        return [_key_from_item(i) for i in self._query(tenant, f"{_KEY}#")]

    def revoke_key(self, tenant: str, key_id: str) -> bool:
        """Revoke one key of ``tenant``; False when it has no such live key."""
        now = {":now": {"S": utcnow().isoformat()}, ":t": {"S": tenant}}
        update = {
            "TableName": self._table,
            "UpdateExpression": "SET revoked_at = :now",
            "ConditionExpression": "#o = :t AND attribute_not_exists(revoked_at)",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": now,
        }
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            **update,
                            "Key": {
                                "tenant": {"S": f"{_KEY}#{key_id}"},
                                "sk": {"S": _KEY},
                            },
                        }
                    },
                    {
                        "Update": {
                            **update,
                            "Key": {
                                "tenant": {"S": tenant},
                                "sk": {"S": f"{_KEY}#{key_id}"},
                            },
                        }
                    },
                ]
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "TransactionCanceledException":
                return False
            raise
        return True

    # --- context documents -------------------------------------------------

    def put_context(self, tenant: str, doc: str, text: str) -> bool:
        """Store (or replace) a document; True when it is new."""
        old = self._ddb.put_item(
            TableName=self._table,
            Item={
                "tenant": {"S": tenant},
                "sk": {"S": _CONTEXT + doc},
                "text": {"S": text},
                "updated_at": {"S": utcnow().isoformat()},
            },
            ReturnValues="ALL_OLD",
        )
        return "Attributes" not in old

    def get_context(self, tenant: str, doc: str) -> ContextDocument | None:
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"tenant": {"S": tenant}, "sk": {"S": _CONTEXT + doc}},
            ConsistentRead=True,
        ).get("Item")
        return _document_from_item(item) if item else None

    def delete_context(self, tenant: str, doc: str) -> bool:
        old = self._ddb.delete_item(
            TableName=self._table,
            Key={"tenant": {"S": tenant}, "sk": {"S": _CONTEXT + doc}},
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in old

    def context_documents(self, tenant: str) -> list[ContextDocument]:
        """Every context document of ``tenant``, by name."""
        return [_document_from_item(i) for i in self._query(tenant, _CONTEXT)]

    # --- drafts --------------------------------------------------------------

    def create_draft(self, draft: Draft) -> None:
        self._ddb.put_item(
            TableName=self._table,
            Item=_draft_to_item(draft),
            ConditionExpression="attribute_not_exists(sk)",
        )

    def get_draft(self, tenant: str, draft_id: str) -> Draft | None:
        """The draft, or None when there is none or it has expired.

        An expired draft may still be in the table: DynamoDB's TTL deletes
        items some time after their expiry, and the emulator never does.
        """
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"tenant": {"S": tenant}, "sk": {"S": _DRAFT + draft_id}},
            ConsistentRead=True,
        ).get("Item")
        if item is None or int(item[EXPIRES_AT]["N"]) < time.time():
            return None
        return Draft.model_validate_json(item["body"]["S"])

    def save_draft(self, draft: Draft) -> Draft | None:
        """Write a changed draft if nobody else did since it was read.

        Returns the draft as written (its revision one higher), or None when
        its revision moved on meanwhile.
        """
        saved = draft.model_copy(
            update={"revision": draft.revision + 1, "updated_at": utcnow()}
        )
        try:
            self._ddb.put_item(
                TableName=self._table,
                Item=_draft_to_item(saved),
                ConditionExpression="revision = :r",
                ExpressionAttributeValues={":r": {"N": str(draft.revision)}},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return saved

    def delete_draft(self, tenant: str, draft_id: str) -> bool:
        old = self._ddb.delete_item(
            TableName=self._table,
            Key={"tenant": {"S": tenant}, "sk": {"S": _DRAFT + draft_id}},
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in old

    # --- helpers -------------------------------------------------------------

    def _query(self, tenant: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "tenant = :t AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":t": {"S": tenant}, ":p": {"S": prefix}},
            "ConsistentRead": True,
        }
        while True:
            page = self._ddb.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _key_from_item(item: dict[str, Any]) -> ApiKey:
    revoked = item.get("revoked_at", {}).get("S")
    return ApiKey(
        key_id=item["key_id"]["S"],
        tenant=item["owner"]["S"],
        label=item.get("label", {}).get("S", ""),
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        revoked_at=datetime.fromisoformat(revoked) if revoked else None,
    )


def _document_from_item(item: dict[str, Any]) -> ContextDocument:
    return ContextDocument(
        tenant=item["tenant"]["S"],
        doc=item["sk"]["S"].removeprefix(_CONTEXT),
        text=item["text"]["S"],
        updated_at=datetime.fromisoformat(item["updated_at"]["S"]),
    )


def _draft_to_item(draft: Draft) -> dict[str, Any]:
    return {
        "tenant": {"S": draft.tenant},
        "sk": {"S": _DRAFT + draft.draft_id},
        "body": {"S": draft.model_dump_json()},
        "revision": {"N": str(draft.revision)},
        EXPIRES_AT: {"N": str(int(draft.expires_at.timestamp()))},
    }
