"""Nothing is erased by omission: ``model.hosted`` for a hosting that exists, and the
adapters' equivalents, change only the fields they carry; an explicit ``null`` clears.
Driven through the signed webhook doors as platforms send them."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import PlatformFixture
from tests.helpers.adapters import gh_repository, gh_send, hf_payload, hf_send
from tests.helpers.hostings import deliver_ok, hosting_of
from tests.helpers.webhooks import hosted

FULL: dict[str, Any] = {
    "external_id": "ext-1",
    "revision": "abc123",
    "licence": "apache-2.0",
    "gated": True,
    "downloads": 1234,
    "documentation": {
        "model_card": {"present": True, "url": "https://hub.example/card"},
        "safety_testing": {"present": True, "url": "https://hub.example/safety"},
    },
}


def _kept(h: dict[str, Any]) -> dict[str, Any]:
    return {
        "external_id": h["external_id"],
        "revision": h["revision"],
        "licence": h["licence"],
        "gated": h["gated"],
        "downloads": h["downloads"],
        "model_card": h["documentation"]["model_card"],
        "safety_testing": h["documentation"]["safety_testing"],
    }


EXPECTED = {
    "external_id": "ext-1",
    "revision": "abc123",
    "licence": "apache-2.0",
    "gated": True,
    "downloads": 1234,
    "model_card": {"present": True, "url": "https://hub.example/card"},
    "safety_testing": {"present": True, "url": "https://hub.example/safety"},
}


async def test_model_hosted_with_only_model_and_url_keeps_the_rest(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    model = f"acme/kept-{uniq}"
    await deliver_ok(client, platform.slug, secret, hosted(model, **FULL))
    assert _kept(await hosting_of(client, admin, platform.slug, model)) == EXPECTED
    await deliver_ok(client, platform.slug, secret, hosted(model))
    assert _kept(await hosting_of(client, admin, platform.slug, model)) == EXPECTED


async def test_model_hosted_with_explicit_nulls_clears_them(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    model = f"acme/cleared-{uniq}"
    await deliver_ok(client, platform.slug, secret, hosted(model, **FULL))
    nulls = {"revision": None, "licence": None, "external_id": None, "downloads": None}
    docs = {"documentation": {"safety_testing": {"present": False}}}
    await deliver_ok(client, platform.slug, secret, hosted(model, **nulls, **docs))
    h = await hosting_of(client, admin, platform.slug, model)
    assert _kept(h) == {
        **EXPECTED,
        **nulls,
        "safety_testing": {"present": False, "url": None},
    }
    assert h["downloads_at"] is None


async def test_a_new_hosting_takes_the_defaults_for_what_is_omitted(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    model = f"acme/fresh-{uniq}"
    await deliver_ok(client, platform.slug, secret, hosted(model))
    h = await hosting_of(client, admin, platform.slug, model)
    assert (h["revision"], h["licence"], h["gated"], h["downloads"]) == (None, None, False, None)
    assert h["documentation"]["model_card"] == {"present": False, "url": None}


async def test_huggingface_create_for_a_hosting_that_exists_keeps_the_rest(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    model = f"hf-{uniq}/kept"
    await deliver_ok(client, platform.slug, secret, hosted(model, **FULL))
    r = await hf_send(
        client, platform.slug, secret, hf_payload(model, action="create", scope="repo")
    )
    assert r.status_code == 202, r.text
    h = await hosting_of(client, admin, platform.slug, model)
    # The Hub's payload carries the repository id and head commit; nothing else is touched.
    assert _kept(h) == {
        **EXPECTED,
        "external_id": "621ffdc036468d709f17434d",
        "revision": "c1a2b3d4e5f60718293a4b5c6d7e8f9012345678",
    }


async def test_github_publicized_for_a_hosting_that_exists_keeps_the_rest(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    model = f"gh-{uniq}/kept"
    await deliver_ok(client, platform.slug, secret, hosted(model, **FULL))
    payload = {"action": "publicized", "repository": gh_repository(model)}
    r = await gh_send(client, platform.slug, secret, "repository", payload)
    assert r.status_code == 202, r.text
    h = await hosting_of(client, admin, platform.slug, model)
    # GitHub's payload carries the repository id and its licence; nothing else is touched.
    assert _kept(h) == {**EXPECTED, "external_id": "1296269"}
