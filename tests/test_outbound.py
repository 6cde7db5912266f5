"""Notices go to public addresses only: refused at registration and again at every attempt.

The registration tests run the app with no allowed networks (production's default). The
send-time tests run the delivery worker without the loopback allowance the other notice
tests get, against the same live receiver, which must then hear nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar

from service.app import create_app
from service.domain.delivery_worker import FAILURE_TEXT
from service.settings import Settings
from tests.conftest import PlatformFixture
from tests.helpers.notices import FAST, Receiver, drain, notices_for, recall_hosted_model

#: Every kind of address a notice must not reach, in the spellings an attacker would try.
FORBIDDEN = [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://localhost/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
    "http://0x7f.0.0.1/hook",
    "http://0.0.0.0/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.100.100.200/latest/meta-data/",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:a9fe:a9fe]/hook",  # 169.254.169.254, mapped
    "http://[fe80::1]/hook",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fc00::5]/hook",
    "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
    "http://224.0.0.1/hook",
]


@pytest.fixture(scope="module")
def public_only_app(settings: Settings, pool: asyncpg.Pool) -> Litestar:
    return create_app(msgspec.structs.replace(settings, notice_allowed_networks=""), pool=pool)


@pytest.fixture
async def public_only(public_only_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=cast("Any", public_only_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as c:
        yield c


async def _endpoint_count(conn: asyncpg.Connection, platform_id: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM notification_endpoints WHERE platform_id = $1::uuid",
            platform_id,
        )
    )


async def test_non_public_endpoints_are_refused_when_registered_or_changed(
    public_only: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
) -> None:
    path = f"/v1/platforms/{platform.slug}/endpoints"
    for url in FORBIDDEN:
        r = await public_only.post(path, json={"url": url}, headers=admin)
        assert r.status_code == 422, (url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "non-public" in r.json()["detail"]
    assert await _endpoint_count(conn, platform.id) == 0

    # A public address is taken; moving it to a forbidden one is refused, and nothing changes.
    r = await public_only.post(path, json={"url": "https://93.184.215.14/hook"}, headers=admin)
    assert r.status_code == 201, r.text
    endpoint_id = r.json()["endpoint"]["id"]
    for url in ("http://169.254.169.254/", "http://localhost:9/x", "http://[::1]/"):
        r = await public_only.patch(
            f"/v1/endpoints/{endpoint_id}", json={"url": url}, headers=admin
        )
        assert r.status_code == 422, (url, r.text)
    r = await public_only.get(f"/v1/endpoints/{endpoint_id}", headers=admin)
    assert r.json()["url"] == "https://93.184.215.14/hook"
    await public_only.patch(f"/v1/endpoints/{endpoint_id}", json={"disabled": True}, headers=admin)


async def test_an_allowed_network_is_taken(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture
) -> None:
    """The suite's app allows loopback (REGISTRY_NOTICE_ALLOWED_NETWORKS), and only that."""
    path = f"/v1/platforms/{platform.slug}/endpoints"
    r = await client.post(path, json={"url": "http://127.0.0.1:9/on-premise"}, headers=admin)
    assert r.status_code == 201, r.text
    await client.patch(
        f"/v1/endpoints/{r.json()['endpoint']['id']}", json={"disabled": True}, headers=admin
    )
    r = await client.post(path, json={"url": "http://10.0.0.1/on-premise"}, headers=admin)
    assert r.status_code == 422


@pytest.mark.parametrize("spelling", ["127.0.0.1", "localhost"])
async def test_an_endpoint_that_now_points_inside_is_refused_at_send_time(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
    spelling: str,
) -> None:
    """An endpoint registered while its name was public whose name now resolves to loopback
    (DNS rebinding): the worker, allowed no private network, must not call it."""
    decision = await recall_hosted_model(
        client, pool, admin, platform, f"acme/rebind-{spelling}-{uniq}", receiver=receiver
    )
    await conn.execute(
        "UPDATE notification_endpoints SET url = replace(url, '127.0.0.1', $2) "
        "WHERE platform_id = $1::uuid",
        platform.id,
        spelling,
    )
    public_only = dataclasses.replace(FAST, allowed_networks=())
    [notice] = await notices_for(client, admin, decision["id"])
    await drain(pool, http, lambda: True, config=public_only)
    assert receiver.hits == []
    assert receiver.started == 0
    r = await client.get(f"/v1/notifications/{notice['id']}/attempts", headers=admin)
    [attempt] = r.json()["items"]
    assert attempt["status_code"] is None
    assert attempt["error"] == FAILURE_TEXT["refused"]
    assert attempt["latency_ms"] >= 0
    assert attempt["retry_at"] is not None
    # With the network allowed (an operator's choice) the same notice goes through.
    await conn.execute(
        "UPDATE outbox SET next_attempt_at = now() WHERE id = $1::uuid", notice["id"]
    )
    await conn.execute(
        "UPDATE notification_endpoints SET url = replace(url, $2, '127.0.0.1') "
        "WHERE platform_id = $1::uuid",
        platform.id,
        spelling,
    )
    await drain(pool, http, lambda: len(receiver.delivered()) == 1)


async def test_redirects_are_not_followed(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    path = f"/hooks/{platform.slug}"
    receiver.answer(path, (302, {"Location": "http://169.254.169.254/latest/meta-data/"}))
    decision = await recall_hosted_model(
        client, pool, admin, platform, f"acme/redir-{uniq}", receiver=receiver
    )
    [notice] = await notices_for(client, admin, decision["id"])
    follows = httpx.AsyncClient(follow_redirects=True)
    async with follows:
        await drain(pool, follows, lambda: len(receiver.to(path)) >= 1)
    r = await client.get(f"/v1/notifications/{notice['id']}/attempts", headers=admin)
    [attempt] = r.json()["items"]
    assert attempt["status_code"] == 302
    assert attempt["retry_at"] is not None
    assert len(receiver.to(path)) == 1


async def test_a_platform_key_is_held_to_the_same_rule(
    public_only: httpx.AsyncClient,
    conn: asyncpg.Connection,
    platform: PlatformFixture,
) -> None:
    """A platform registering or moving its own endpoint gets the admin's 422s."""
    me = platform.headers
    path = f"/v1/platforms/{platform.slug}/endpoints"
    for url in (
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
    ):
        r = await public_only.post(path, json={"url": url}, headers=me)
        assert r.status_code == 422, (url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "non-public" in r.json()["detail"]
    assert await _endpoint_count(conn, platform.id) == 0

    r = await public_only.post(path, json={"url": "https://93.184.215.14/hook"}, headers=me)
    assert r.status_code == 201, r.text
    endpoint_id = r.json()["endpoint"]["id"]
    for url in ("http://169.254.169.254/", "http://[::1]/"):
        r = await public_only.patch(f"/v1/endpoints/{endpoint_id}", json={"url": url}, headers=me)
        assert r.status_code == 422, (url, r.text)
    r = await public_only.get(f"/v1/endpoints/{endpoint_id}", headers=me)
    assert r.json()["url"] == "https://93.184.215.14/hook"
    await public_only.patch(f"/v1/endpoints/{endpoint_id}", json={"disabled": True}, headers=me)


async def test_a_test_notice_to_an_address_now_inside_is_refused_at_send_time(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    quiet_endpoints: None,
) -> None:
    """The test notice a platform asks for goes through the same check as every notice: a
    worker allowed no private network does not call the (loopback) receiver."""
    me = platform.headers
    path = f"/test-notice/{platform.slug}"
    r = await client.post(
        f"/v1/platforms/{platform.slug}/endpoints", json={"url": receiver.url(path)}, headers=me
    )
    assert r.status_code == 201, r.text
    receiver.secrets[path] = r.json()["secret"]
    endpoint_id = r.json()["endpoint"]["id"]
    r = await client.post(f"/v1/endpoints/{endpoint_id}/test", headers=me)
    assert r.status_code == 202, r.text
    notice = r.json()

    public_only = dataclasses.replace(FAST, allowed_networks=())
    await drain(pool, http, lambda: True, config=public_only)
    assert receiver.to(path) == []
    r = await client.get(f"/v1/notifications/{notice['id']}/attempts", headers=me)
    [attempt] = r.json()["items"]
    assert attempt["status_code"] is None
    assert attempt["error"] == FAILURE_TEXT["refused"]
    assert attempt["retry_at"] is not None
