"""``/v1/tenants/{tenant}/context``: the short documents alert creation draws on.

A glossary, the products and competitors, the team structure: whatever makes
"our competitors" or "the enterprise plan" mean what the tenant means. Each
creation request retrieves the passages most relevant to it
(``shared.llm.context``); a change here applies from the next request on.
"""

# No ``from __future__ import annotations``: FastAPI must resolve the local
# ``Tenant`` dependency alias in the route signatures at run time.

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from serve.errors import ApiError, not_found, responses
from serve.schemas import (
    DOC_PATTERN,
    ApiLimits,
    ContextList,
    ContextPublic,
    ContextPut,
    ContextSummary,
)
from serve.services import Services

DocName = Annotated[
    str,
    Path(
        pattern=DOC_PATTERN,
        description="The document's name: lower-case letters, digits, '_', '.',"
        " '-'; 64 at most.",
        examples=["competitors"],
        openapi_examples={"example": {"value": "competitors"}},
    ),
]


def context_router(services: Services) -> APIRouter:
    """The context routes over ``services``."""
    router = APIRouter(
        prefix="/v1/tenants/{tenant}/context",
        tags=["context"],
        responses=responses(401, 404, 422, 503),
    )
    Tenant = Annotated[str, Depends(services.guard)]
    store = services.tenants

    @router.get("", response_model=ContextList)
    async def list_documents(tenant: Tenant) -> ContextList:
        """The tenant's context documents, without their text."""
        documents = await asyncio.to_thread(store.context_documents, tenant)
        return ContextList(
            items=[
                ContextSummary(doc=d.doc, chars=len(d.text), updated_at=d.updated_at)
                for d in documents
            ]
        )

    @router.put(
        "/{doc}",
        response_model=ContextPublic,
        status_code=200,
        responses={
            201: {"model": ContextPublic, "description": "A new document."},
            **responses(409, 413, 415),
        },
    )
    async def put_document(
        tenant: Tenant, doc: DocName, body: ContextPut, response: Response
    ) -> ContextPublic:
        """Store a context document, or replace it (200 replaced, 201 new)."""
        documents = await asyncio.to_thread(store.context_documents, tenant)
        names = {d.doc for d in documents}
        if doc not in names and len(names) >= ApiLimits.MAX_CONTEXT_DOCS:
            raise ApiError(
                409,
                "limit_reached",
                f"a tenant keeps at most {ApiLimits.MAX_CONTEXT_DOCS} context"
                " documents; delete one first",
            )
        if await asyncio.to_thread(store.put_context, tenant, doc, body.text):
            response.status_code = 201
        stored = await asyncio.to_thread(store.get_context, tenant, doc)
        if stored is None:  # deleted between the two calls
            raise not_found(f"context document {doc}")
        return ContextPublic.of(stored)

    @router.get("/{doc}", response_model=ContextPublic, responses=responses(404))
    async def get_document(tenant: Tenant, doc: DocName) -> ContextPublic:
        """One context document."""
        found = await asyncio.to_thread(store.get_context, tenant, doc)
        if found is None:
            raise not_found(f"context document {doc}")
        return ContextPublic.of(found)

    @router.delete("/{doc}", status_code=204, responses=responses(404))
    async def delete_document(tenant: Tenant, doc: DocName) -> Response:
        """Delete a context document."""
        if not await asyncio.to_thread(store.delete_context, tenant, doc):
            raise not_found(f"context document {doc}")
        return Response(status_code=204)

    return router
