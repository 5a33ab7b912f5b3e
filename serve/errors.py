"""How the alert API answers when a request fails: always an ``ErrorBody``.

Nothing a client sends is to end in a 500. The model being unreachable is a
503, the model answering outside its contract a 502, the stores being
unreachable a 503, a request the model refuses a 422 with its reason, and a
value that fails validation inside a handler (a merged update, say) a 422.
FastAPI's own validation errors keep FastAPI's 422 shape (``detail`` list).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from serve.schemas import ErrorBody, ErrorCode, Unprocessable
from shared.errors import (
    ModelAnswerInvalid,
    ModelUnavailable,
    SpendingLimit,
    StateViolation,
)

logger = logging.getLogger(__name__)


class ApiError(Exception):
    """A failure the API answers with ``status`` and an ``ErrorBody``."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, detail, headers)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"no {what} for this tenant")


def error_response(
    status: int, code: ErrorCode, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(error=code, detail=detail)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def describe(error: ValidationError) -> str:
    """A validation error's locations and messages, without the input."""
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "body"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entries of the error statuses a route can answer."""
    return {status: ERROR_RESPONSES[status] for status in statuses}


def _example(code: ErrorCode, detail: str) -> dict[str, Any]:
    return {"application/json": {"example": {"error": code, "detail": detail}}}


ERROR_RESPONSES: dict[int, dict[str, Any]] = {
    401: {
        "model": ErrorBody,
        "description": "No API key, or one that is unknown or revoked.",
        "content": _example("unauthorized", "a valid API key is required"),
    },
    404: {
        "model": ErrorBody,
        "description": "Nothing of that id for this tenant (or the key is"
        " another tenant's).",
        "content": _example("not_found", "no alert al-3f9c2a7b1d04 for this tenant"),
    },
    409: {
        "model": ErrorBody,
        "description": "The resource is not in a state that allows this.",
        "content": _example("conflict", "the draft is accepted"),
    },
    413: {
        "model": ErrorBody,
        "description": "The body is over the size limit in bytes.",
        "content": _example("too_large", "the body is over 131072 bytes"),
    },
    415: {
        "model": ErrorBody,
        "description": "The body is not JSON (application/json).",
        "content": _example(
            "unsupported_media_type", "the body must be JSON, sent as application/json"
        ),
    },
    422: {
        "model": Unprocessable,
        "description": "The request is invalid: FastAPI's validation detail, or"
        " an error code ('refused' with the model's reason, 'invalid').",
    },
    502: {
        "model": ErrorBody,
        "description": "The model answered outside its contract.",
        "content": _example(
            "model_answer_invalid",
            "The model's answer did not follow the creation contract.",
        ),
    },
    503: {
        "model": ErrorBody,
        "description": "The model or the store is unreachable.",
        "content": _example(
            "model_unavailable", "The model did not answer; try again shortly."
        ),
    },
}

Handler = Callable[[Request, Exception], Awaitable[Response]]


def add_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    async def invalid(_: Request, exc: Exception) -> Response:
        # A value built inside a handler (a merged update, a definition with
        # the request's options) that the models reject.
        detail = describe(exc) if isinstance(exc, ValidationError) else str(exc)
        return error_response(422, "invalid", detail)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(ValidationError, invalid)
    app.add_exception_handler(StateViolation, invalid)

    def handler(status: int, code: ErrorCode, detail: str, level: int) -> Handler:
        async def handle(_: Request, exc: Exception) -> Response:
            logger.log(level, "request failed status=%d error=%s", status, exc)
            return error_response(status, code, detail)

        return handle

    failures: dict[type[Exception], tuple[int, ErrorCode, str, int]] = {
        ModelUnavailable: (
            503,
            "model_unavailable",
            "The model did not answer; try again shortly.",
            logging.WARNING,
        ),
        SpendingLimit: (
            503,
            "model_unavailable",
            "The model provider refused the call for billing reasons.",
            logging.ERROR,
        ),
        ModelAnswerInvalid: (
            502,
            "model_answer_invalid",
            "The model's answer did not follow the creation contract.",
            logging.WARNING,
        ),
        # Whatever the retries and translate() left: a 4xx from the provider
        # (key, model name) or a response the SDK could not read.
        anthropic.APIError: (
            502,
            "model_answer_invalid",
            "The model service rejected the call.",
            logging.ERROR,
        ),
        BotoCoreError: (
            503,
            "store_unavailable",
            "The store is unreachable; try again shortly.",
            logging.WARNING,
        ),
        ClientError: (
            503,
            "store_unavailable",
            "The store refused the call; try again shortly.",
            logging.WARNING,
        ),
    }
    for error, args in failures.items():
        app.add_exception_handler(error, handler(*args))
