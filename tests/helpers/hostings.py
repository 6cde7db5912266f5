"""Hosting a model as a platform does, through its signed webhook, and reading back what the
registry recorded: the webhook secret every such test signs with, and the platform's hostings.

A pytest plugin (see ``conftest.py``): its ``secret`` fixture is available to every test
module.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import PlatformFixture
from tests.helpers.webhooks import deliver, new_secret


@pytest.fixture
async def secret(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture
) -> str:
    """A webhook secret of ``platform``, issued by the admin, to sign its deliveries with."""
    return await new_secret(client, admin, platform.slug)


async def deliver_ok(client: httpx.AsyncClient, slug: str, secret: str, body: bytes) -> None:
    """Deliver a signed webhook ``body`` as platform ``slug`` and require it accepted."""
    r = await deliver(client, slug, secret, body)
    assert r.status_code in (200, 202), r.text


async def platform_hostings(
    client: httpx.AsyncClient, admin: dict[str, str], slug: str
) -> list[dict[str, Any]]:
    """Every hosting recorded for platform ``slug`` (one page of up to 200), as the admin
    lists them."""
    r = await client.get("/v1/hostings", params={"platform": slug, "limit": 200}, headers=admin)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def hosting_of(
    client: httpx.AsyncClient, admin: dict[str, str], slug: str, model: str
) -> dict[str, Any]:
    """The one hosting of ``model`` on platform ``slug``."""
    hostings = await platform_hostings(client, admin, slug)
    found = [h for h in hostings if h["model"] == model]
    assert len(found) == 1, hostings
    return found[0]
