"""Request ids: taken from ``X-Request-ID`` when sane, made up otherwise, echoed, and logged."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from service.logs import JsonFormatter, configure_logging
from service.middleware import accept_request_id


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything logged during the test, through the service's JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def entries(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


async def test_a_sane_incoming_id_is_kept_echoed_and_logged(
    client: httpx.AsyncClient, admin: dict[str, str], json_lines: io.StringIO
) -> None:
    r = await client.get("/v1/platforms", headers={**admin, "X-Request-ID": "edge-7f3a:42.b_c"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "edge-7f3a:42.b_c"
    access = [e for e in entries(json_lines) if e["logger"] == "service.access"]
    assert access, json_lines.getvalue()
    line = access[-1]
    assert line["request_id"] == "edge-7f3a:42.b_c"
    assert line["route"] == "/v1/platforms"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float)


@pytest.mark.parametrize(
    "incoming",
    [
        "has spaces",
        "x" * 129,
        "-starts-with-dash",
        "new\\nline",
        "ünïcode",
        "",
    ],
)
async def test_an_unfit_incoming_id_is_replaced(client: httpx.AsyncClient, incoming: str) -> None:
    r = await client.get("/healthz", headers=[(b"x-request-id", incoming.encode())])
    assert r.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


async def test_each_request_gets_its_own_id_also_on_errors(
    client: httpx.AsyncClient, json_lines: io.StringIO
) -> None:
    a = await client.get("/v1/platforms")  # no key: 401 from the authentication layer
    b = await client.get("/no/such/route")
    assert a.status_code == 401
    assert b.status_code == 404
    ids = {a.headers["x-request-id"], b.headers["x-request-id"]}
    assert len(ids) == 2
    logged = {e.get("request_id") for e in entries(json_lines) if e["logger"] == "service.access"}
    assert ids <= logged


def test_lines_outside_a_request_carry_no_id(json_lines: io.StringIO) -> None:
    logging.getLogger("service.test").info("hello", extra={"n": 1})
    (entry,) = [e for e in entries(json_lines) if e["logger"] == "service.test"]
    assert entry["message"] == "hello"
    assert entry["n"] == 1
    assert "request_id" not in entry


def test_accept_request_id_limits() -> None:
    assert accept_request_id(b"a" * 128) == "a" * 128
    assert accept_request_id(b"a" * 129) != "a" * 129
    assert accept_request_id(b"\xff\xfe") != "\xff\xfe"
    assert accept_request_id(None) != accept_request_id(None)


def test_configure_logging_routes_server_loggers_through_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    uvicorn_error = logging.getLogger("uvicorn.error")
    stray = logging.StreamHandler()
    uvicorn_error.addHandler(stray)  # as uvicorn's own default config would
    try:
        configure_logging("INFO")
        uvicorn_error.info("Uvicorn running on %s", "http://127.0.0.1:1")
        logging.getLogger("litestar").warning("from the framework")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert {e["logger"] for e in lines} == {"uvicorn.error", "litestar"}
    assert stray not in uvicorn_error.handlers
