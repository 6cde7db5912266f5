"""The committed OpenAPI document is the one the code generates and serves."""

from __future__ import annotations

import json

import httpx
import yaml

from service.openapi import openapi_document, render_openapi
from tests.conftest import REPO_ROOT


def test_committed_document_matches_the_code() -> None:
    committed = (REPO_ROOT / "openapi" / "openapi.json").read_bytes()
    assert committed == render_openapi(), (
        "openapi/openapi.json is stale: run `make openapi` and commit the result"
    )


async def test_served_document_is_the_committed_file(client: httpx.AsyncClient) -> None:
    """A client downloading the document gets exactly the committed bytes."""
    committed = (REPO_ROOT / "openapi" / "openapi.json").read_bytes()
    for _ in range(2):  # rendered once, then served from memory: the same both times
        r = await client.get("/schema/openapi.json")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/vnd.oai.openapi+json")
        assert r.content == committed
    # The YAML rendering is the same document.
    r = await client.get("/schema/openapi.yaml")
    assert r.status_code == 200
    assert yaml.safe_load(r.content) == json.loads(committed)


def test_every_operation_declares_its_problems() -> None:
    doc = openapi_document()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            assert op.get("operationId"), (method, path)
            codes = set(op["responses"])
            if path not in {"/healthz", "/metrics"}:
                assert "503" in codes, (method, path)
            if any("BearerAuth" in s for s in op.get("security", [])):
                assert "401" in codes, (method, path)
            if "requestBody" in op:
                assert {"400", "413"} <= codes, (method, path)
