"""Tenant API keys at the edge: every ``/v1/tenants/{tenant}`` route needs one.

The key is a bearer token (``Authorization: Bearer ww_...``) that
``watchword tenants create`` printed. No key, or an unknown or revoked one, is
a 401. A live key of another tenant is a 404, exactly as if the tenant had
nothing there: a key never learns what another tenant has.

Keys are checked against the store on every request, with no cache, so that a
revoked key stops working at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serve.errors import ApiError
from serve.schemas import EXAMPLE_TENANT, TENANT_PATTERN
from shared.aws.tenant_store import TenantStore

Tenant = Annotated[
    str,
    Path(
        pattern=TENANT_PATTERN,
        description="The tenant's id, as its communications carry it.",
        examples=[EXAMPLE_TENANT],
        openapi_examples={"example": {"value": EXAMPLE_TENANT}},
    ),
]

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="TenantKey",
    description="A tenant's API key, from `watchword tenants create TENANT_ID`.",
)

AuthorizedTenant = Callable[..., Awaitable[str]]


def tenant_guard(keys: TenantStore) -> AuthorizedTenant:
    """The dependency that yields the path's tenant once its key is checked."""

    async def authorized_tenant(
        tenant: Tenant,
        credentials: Annotated[
            HTTPAuthorizationCredentials | None, Depends(bearer)
        ] = None,
    ) -> str:
        if credentials is None:
            raise _unauthorized("a bearer API key is required")
        key = await asyncio.to_thread(keys.authenticate, credentials.credentials)
        if key is None:
            raise _unauthorized("the API key is unknown or revoked")
        if key.tenant != tenant:
            raise ApiError(404, "not_found", "no such tenant for this key")
        return tenant

    return authorized_tenant


def _unauthorized(detail: str) -> ApiError:
    return ApiError(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})
