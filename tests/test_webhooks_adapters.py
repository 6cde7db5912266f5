"""The Hugging Face Hub and GitHub adapters, fed payloads shaped as their documentation shows."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import msgspec

from tests.conftest import PlatformFixture
from tests.helpers.adapters import gh_repository, gh_send, hf_payload, hf_send

_json = msgspec.json.Encoder()


async def hosting_of(
    client: httpx.AsyncClient, admin: dict[str, str], slug: str, model: str
) -> dict[str, Any]:
    r = await client.get("/v1/hostings", params={"platform": slug}, headers=admin)
    found: list[dict[str, Any]] = [i for i in r.json()["items"] if i["model"] == model]
    assert len(found) == 1, r.text
    return found[0]


# -- Hugging Face -----------------------------------------------------------------------------


async def test_huggingface_repo_lifecycle_becomes_hosting_events(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    name = f"hf-{uniq}/gpt-tiny"
    r = await hf_send(
        client, platform.slug, secret, hf_payload(name, action="create", scope="repo")
    )
    assert r.status_code == 202, r.text
    h = await hosting_of(client, admin, platform.slug, name)
    assert (h["status"], h["external_id"]) == ("hosted", "621ffdc036468d709f17434d")
    assert h["url"] == f"https://huggingface.co/{name}"

    content = hf_payload(
        name,
        action="update",
        scope="repo.content",
        updatedRefs=[{"ref": "refs/heads/main", "oldSha": "c1a2", "newSha": "ffee"}],
    )
    content = content.replace(b"c1a2b3d4e5f60718293a4b5c6d7e8f9012345678", b"ffee" * 10)
    r = await hf_send(client, platform.slug, secret, content)
    assert r.status_code == 202, r.text
    h = await hosting_of(client, admin, platform.slug, name)
    assert h["revision"] == "ffee" * 10
    # The Hub retries with the same payload: a duplicate, nothing written.
    r = await hf_send(client, platform.slug, secret, content)
    assert (r.status_code, r.json()["duplicate"]) == (200, True)

    private = hf_payload(
        name, action="update", scope="repo.config", updatedConfig={"private": True}
    )
    r = await hf_send(client, platform.slug, secret, private)
    assert r.status_code == 202, r.text
    h = await hosting_of(client, admin, platform.slug, name)
    assert h["status"] == "restricted"

    public = hf_payload(
        name, action="update", scope="repo.config", updatedConfig={"private": False}
    )
    r = await hf_send(client, platform.slug, secret, public)
    assert r.status_code == 202, r.text
    h = await hosting_of(client, admin, platform.slug, name)
    assert h["status"] == "hosted"

    disabled = hf_payload(
        name, action="update", scope="repo.config", updatedConfig={"disabled": True}
    )
    r = await hf_send(client, platform.slug, secret, disabled)
    assert r.status_code == 202, r.text
    h = await hosting_of(client, admin, platform.slug, name)
    assert (h["status"], h["disabled"]) == ("restricted", True)

    r = await hf_send(
        client, platform.slug, secret, hf_payload(name, action="delete", scope="repo")
    )
    assert r.status_code == 202, r.text
    h = await hosting_of(client, admin, platform.slug, name)
    assert h["status"] == "removed"


async def test_huggingface_other_repos_and_scopes_are_accepted_and_ignored(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    dataset = hf_payload(f"hf-{uniq}/data", action="create", scope="repo", repo_type="dataset")
    discussion = hf_payload(
        f"hf-{uniq}/m",
        action="create",
        scope="discussion",
        discussion={"id": "6399f58518721fdd27fc9ca9", "title": "Update co2 emissions", "num": 19},
    )
    for body in (dataset, discussion):
        r = await hf_send(client, platform.slug, secret, body)
        assert r.status_code == 202, r.text
        assert r.json()["events"] == []


async def test_huggingface_secret_must_match(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    body = hf_payload(f"hf-{uniq}/m", action="create", scope="repo")
    for headers in (
        {"content-type": "application/json"},
        {"content-type": "application/json", "x-webhook-secret": secret + "x"},
        {"content-type": "application/json", "x-webhook-secret": "wrong"},
    ):
        r = await client.post(
            f"/v1/webhooks/{platform.slug}/huggingface", content=body, headers=headers
        )
        assert r.status_code == 401, r.text


# -- GitHub -----------------------------------------------------------------------------------


async def test_github_repository_and_release_events(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
) -> None:
    name = f"gh-{uniq}/llm"
    sender = {"login": "octocat", "id": 1}
    ping = {"zen": "Design for failure.", "hook_id": 292430182, "hook": {"type": "Repository"}}
    r = await gh_send(client, platform.slug, secret, "ping", ping)
    assert (r.status_code, r.json()["events"]) == (202, [])

    created = {"action": "created", "repository": gh_repository(name), "sender": sender}
    delivery = str(uuid4())
    r = await gh_send(client, platform.slug, secret, "repository", created, delivery=delivery)
    assert r.status_code == 202, r.text
    h = await hosting_of(client, admin, platform.slug, name)
    assert (h["status"], h["licence"], h["external_id"]) == ("hosted", "apache-2.0", "1296269")
    # GitHub's "redeliver" sends the same X-GitHub-Delivery and body.
    r = await gh_send(client, platform.slug, secret, "repository", created, delivery=delivery)
    assert (r.status_code, r.json()["duplicate"]) == (200, True)

    release = {
        "action": "published",
        "release": {
            "id": 1,
            "tag_name": "v1.0.0",
            "target_commitish": "main",
            "name": "v1.0.0",
            "draft": False,
            "prerelease": False,
        },
        "repository": gh_repository(name),
        "sender": sender,
    }
    r = await gh_send(client, platform.slug, secret, "release", release)
    assert r.status_code == 202, r.text
    h = await hosting_of(client, admin, platform.slug, name)
    assert h["revision"] == "v1.0.0"

    archived = {"action": "archived", "repository": gh_repository(name, archived=True)}
    r = await gh_send(client, platform.slug, secret, "repository", archived)
    assert r.status_code == 202, r.text
    h = await hosting_of(client, admin, platform.slug, name)
    assert h["status"] == "restricted"

    deleted = {"action": "deleted", "repository": gh_repository(name)}
    r = await gh_send(client, platform.slug, secret, "repository", deleted)
    assert r.status_code == 202, r.text
    h = await hosting_of(client, admin, platform.slug, name)
    assert h["status"] == "removed"


async def test_github_signature_and_headers_are_checked(
    client: httpx.AsyncClient, platform: PlatformFixture, secret: str, uniq: str
) -> None:
    payload = {"action": "created", "repository": gh_repository(f"gh-{uniq}/m")}
    for signature in (
        "sha256=" + "0" * 64,
        "sha1=abc",
        "sha256=",
        "sha256=zz\u00e9".encode("latin-1"),
    ):
        r = await gh_send(client, platform.slug, secret, "repository", payload, signature=signature)
        assert r.status_code == 401, (signature, r.text)
    r = await gh_send(client, platform.slug, "whsec_other", "repository", payload)
    assert r.status_code == 401


async def test_github_duplicate_id_with_another_body_is_409(
    client: httpx.AsyncClient,
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    delivery = str(uuid4())
    first = {"action": "created", "repository": gh_repository(f"gh-{uniq}/a")}
    second = {"action": "created", "repository": gh_repository(f"gh-{uniq}/b", id=7)}
    r = await gh_send(client, platform.slug, secret, "repository", first, delivery=delivery)
    assert r.status_code == 202
    r = await gh_send(client, platform.slug, secret, "repository", second, delivery=delivery)
    assert r.status_code == 409


async def test_the_shared_secret_header_is_never_stored(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    secret: str,
    uniq: str,
    conn: asyncpg.Connection,
) -> None:
    body = hf_payload(f"hf-{uniq}/m", action="create", scope="repo")
    r = await hf_send(client, platform.slug, secret, body)
    assert r.status_code == 202, r.text
    stored = await conn.fetchval(
        "SELECT headers::text FROM webhook_deliveries WHERE delivery_id = $1",
        r.json()["delivery_id"],
    )
    assert "x-webhook-secret" not in stored
    assert secret not in stored
