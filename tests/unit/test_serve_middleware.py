"""The API's body check (``serve.middleware.BodyCheck``) on a tiny app, no servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from serve.middleware import BodyCheck

LIMIT = 10_000


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = FastAPI()
    app.add_middleware(BodyCheck, max_bytes=LIMIT)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    with TestClient(app) as test_client:
        yield test_client


JSON = {"content-type": "application/json"}


def string_of(size: int) -> bytes:
    """A JSON string of exactly ``size`` bytes."""
    return b'"' + b"x" * (size - 2) + b'"'


def test_a_body_within_the_limit_reaches_the_app_whole(client: TestClient) -> None:
    answer = client.post("/echo", content=string_of(LIMIT), headers=JSON)

    assert answer.json() == {"received": LIMIT}


def test_a_request_without_a_body_passes(client: TestClient) -> None:
    assert client.post("/echo").json() == {"received": 0}


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", '"<>;<J2', "application/jsonx"]
)
def test_a_body_that_is_not_json_is_refused_with_415(
    client: TestClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}

    answer = client.post("/echo", content=b"\xff\xfe", headers=headers)

    assert answer.status_code == 415
    assert answer.json()["error"] == "unsupported_media_type"


def test_a_json_suffix_media_type_counts_as_json(client: TestClient) -> None:
    headers = {"content-type": "application/merge-patch+json; charset=utf-8"}

    assert client.post("/echo", content=b"{}", headers=headers).status_code == 200


def test_a_declared_length_over_the_limit_is_refused_with_413(
    client: TestClient,
) -> None:
    answer = client.post("/echo", content=string_of(LIMIT + 1), headers=JSON)

    assert answer.status_code == 413
    assert answer.json() == {
        "error": "too_large",
        "detail": f"the body is over {LIMIT} bytes",
    }


def test_a_streamed_body_that_grows_past_the_limit_is_refused_with_413(
    client: TestClient,
) -> None:
    chunks = iter([b"x" * 6_000, b"x" * 6_000])  # no Content-Length: chunked

    answer = client.post("/echo", content=chunks, headers=JSON)

    assert answer.status_code == 413


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"a": NaN}', "NaN"),
        (b'{"a": -Infinity}', "NaN"),
        (b'{"a": "\\udc00"}', "surrogate"),
        (b'{"a": "\xff"}', "UTF-8"),
        (b'{"a": ' + b"9" * 5_000 + b"}", "cannot be read"),
        (b"[" * 40 + b"]" * 40, None),
    ],
    ids=["nan", "infinity", "lone-surrogate", "not-utf8", "huge-int", "nested"],
)
def test_json_only_python_would_parse_is_refused_with_422(
    client: TestClient, raw: bytes, why: str | None
) -> None:
    answer = client.post("/echo", content=raw, headers=JSON)

    if why is None:  # plain nesting within Python's limit passes
        assert answer.status_code == 200
    else:
        assert answer.status_code == 422
        assert why in answer.json()["detail"]


def test_a_valid_surrogate_pair_and_invalid_json_pass_through(
    client: TestClient,
) -> None:
    pair = client.post("/echo", content=b'{"a": "\\ud83d\\ude00"}', headers=JSON)
    broken = client.post("/echo", content=b'{"a": ', headers=JSON)

    assert pair.status_code == 200
    assert broken.status_code == 200  # the app's own validation decides
