"""ASGI middleware of the alert API: the request log and the body check.

``BodyCheck`` reads the whole body before the app sees it, so that no handler
ever works on a partial one:

- a ``Content-Length`` over the limit, or a streamed body that grows past it,
  is answered 413 at once;
- a body that is not ``application/json`` (or ``application/*+json``) is
  answered 415: every body the API takes is JSON;
- a JSON body that is not UTF-8, or is valid JSON only to Python's lenient
  parser (``NaN``, ``Infinity``, a lone UTF-16 surrogate, which no store or
  model can encode), or that Python cannot read (nested past its recursion
  limit, an integer of thousands of digits) is answered 422, where FastAPI
  would answer 400 or worse;
- anything else goes on, replayed to the app unchanged.

Bodies here are small (``ApiLimits.MAX_BODY_BYTES``), so holding one in
memory is cheaper than reasoning about half-read ones.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serve.errors import error_response
from serve.schemas import TENANT_PATTERN

logger = logging.getLogger(__name__)


class BodyCheck:
    """413 for a body over ``max_bytes``, 422 for JSON no store can hold."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away while sending: nothing to answer.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)

        if body:
            refusal = _refusal(body, headers.get("content-type", ""))
            if refusal is not None:
                await refusal(scope, receive, send)
                return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the body is over {self.max_bytes} bytes"
        response = error_response(413, "too_large", detail, {"connection": "close"})
        await response(scope, receive, send)


def _refusal(body: bytes, content_type: str) -> JSONResponse | None:
    """The answer to a body the API cannot take, or None to let it through."""
    media = content_type.split(";", 1)[0].strip().lower()
    is_json = media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
    if not is_json:
        # Every body the API takes is JSON; FastAPI would try others as raw
        # bytes, and answer 500 to bytes that are not UTF-8.
        return error_response(
            415,
            "unsupported_media_type",
            "the body must be JSON, sent as application/json",
        )
    problem = _json_problem(body)
    return None if problem is None else error_response(422, "invalid", problem)


def _json_problem(body: bytes) -> str | None:
    """Why a JSON body cannot be stored although Python parses it, or None."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        parsed = json.loads(body.decode("utf-8"), parse_constant=no_constant)
    except UnicodeDecodeError:
        return "the body is not UTF-8 text"
    except RecursionError:
        return "the JSON is nested too deeply"
    except json.JSONDecodeError:
        return None  # not JSON at all: FastAPI's validation says so
    except ValueError as err:
        if "is not JSON" in str(err):
            return "NaN and Infinity are not JSON numbers"
        return f"the JSON cannot be read: {err}"  # an integer of 5,000 digits
    try:
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        return "the JSON is nested too deeply"
    except UnicodeEncodeError:
        return "the body holds a lone UTF-16 surrogate, which is not text"
    return None


class RequestLog:
    """One info line per request: route, status and the tenant and alert ids."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router fills path_params and route into this same scope; a
            # handler that creates an alert leaves its id in the request state.
            params = scope.get("path_params", {})
            route = getattr(scope.get("route"), "path", None) or getattr(
                scope.get("endpoint"), "__name__", "unmatched"
            )
            alert_id = params.get("alert_id") or scope.get("state", {}).get("alert_id")
            logger.info(
                "%s %s status=%d tenant=%s alert=%s draft=%s",
                scope["method"],
                route,
                status,
                _loggable(params.get("tenant")),
                _loggable(alert_id),
                _loggable(params.get("draft_id")),
            )


def _loggable(value: str | None) -> str:
    # Only ids that passed the pattern reach the log, never arbitrary text.
    if value is None or not re.fullmatch(TENANT_PATTERN, value):
        return "-"
    return value
