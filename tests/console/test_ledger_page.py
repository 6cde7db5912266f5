"""The public ledger page checks proofs in the browser: a real event and a real consistency
proof verify; a tampered event and a wrong key are shown as failing."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from playwright.async_api import Route

from service.domain.checkpoints import Signer, key_id
from tests.conftest import register_model
from tests.console.conftest import Browsing
from tests.helpers.ledger import ORIGIN, seal_all, write_test_key
from tests.live_service import LiveService


@pytest.fixture(scope="module")
async def signed_live(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LiveService]:
    """A live service holding the run's checkpoint key, so it publishes the verifier key."""
    here = tmp_path_factory.mktemp("ledger-live")
    key = write_test_key(here / "checkpoint.pem")
    async with LiveService(
        database_url,
        here,
        REGISTRY_SIGNING_KEY_FILE=str(key),
        REGISTRY_CHECKPOINT_ORIGIN=ORIGIN,
    ) as service:
        yield service


def _other_key() -> str:
    """A well-formed verifier key with the registry's key name but another key."""
    public = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    raw = base64.b64encode(b"\x01" + public).decode()
    return f"{ORIGIN}+{key_id(ORIGIN, public).hex()}+{raw}"


async def _newest_event(client: httpx.AsyncClient, admin: dict[str, str], model_id: str) -> str:
    """The model's newest event, exactly as ``GET /v1/events`` serves it."""
    r = await client.get(
        "/v1/events", params={"subject_id": model_id, "order": "newest", "limit": 1}, headers=admin
    )
    assert r.status_code == 200, r.text
    return json.dumps(r.json()["items"][0], ensure_ascii=False)


async def _check_event(tab: Browsing, *, seq: str = "", event: str = "") -> str:
    await tab.page.get_by_label("Event seq").fill(seq)
    await tab.page.get_by_label("Or the event, as JSON").fill(event)
    await tab.page.get_by_role("button", name="Check the event").click()
    result = tab.page.locator("#inclusion-result")
    await result.locator("strong").wait_for()
    return await result.inner_text()


async def test_the_browser_verifies_an_event_and_refuses_a_tampered_one_or_a_wrong_key(
    browser: object,
    signed_live: LiveService,
    tab: Browsing,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    signer: Signer,
    tmp_path: Path,
) -> None:
    uniq = uuid.uuid4().hex[:8]
    model = await register_model(client, admin, f"ledger-{uniq}/first")
    first = await seal_all(pool, signer)
    model = await register_model(client, admin, f"ledger-{uniq}/second", provider="Société \u2028")
    second = await seal_all(pool, signer)
    assert second > first
    event = await _newest_event(client, admin, str(model["id"]))
    seq = str(json.loads(event)["seq"])

    tab.base_url = signed_live.base_url
    assert await tab.goto("/ledger") == 200
    assert await tab.page.locator("#verifier-key").input_value() == signer.verifier_key
    assert await tab.page.locator("#latest-size").inner_text() == str(second)
    await tab.check("ledger")

    by_seq = await _check_event(tab, seq=seq)
    assert by_seq.startswith(f"Verified: event {seq} is in the signed tree of size {second}")

    pasted = await _check_event(tab, event=event)
    assert pasted.startswith(f"Verified: event {seq}"), pasted
    assert "Hashed the pasted event" in pasted
    await tab.check("ledger-verified")

    tampered = json.loads(event)
    tampered["payload"]["state"]["name"] = f"ledger-{uniq}/other"
    refused = await _check_event(tab, event=json.dumps(tampered))
    assert refused.startswith("Not verified: the inclusion proof does not lead"), refused

    # The same event, with another key in the key field: the signature is what fails.
    await tab.page.get_by_label("Verifier key (name+key id+base64)").fill(_other_key())
    wrong_key = await _check_event(tab, event=event)
    assert wrong_key.startswith("Not verified: the checkpoint carries no signature"), wrong_key
    await tab.check("ledger-refused")

    # Two checkpoints: consistent with the right key, refused with the wrong one.
    await tab.page.get_by_label("Older tree size").fill(str(first))
    await tab.page.get_by_label("Newer tree size").fill(str(second))
    await tab.page.get_by_role("button", name="Check consistency").click()
    result = tab.page.locator("#consistency-result")
    await result.locator("strong").wait_for()
    assert (await result.inner_text()).startswith("Not verified: the checkpoint carries no")
    await tab.page.get_by_label("Verifier key (name+key id+base64)").fill(signer.verifier_key)
    await tab.page.get_by_role("button", name="Check consistency").click()
    await tab.page.get_by_text(f"Verified: the tree of size {first} is a prefix").wait_for()


async def test_the_browser_refuses_a_checkpoint_the_server_altered(
    browser: object,
    signed_live: LiveService,
    tab: Browsing,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    signer: Signer,
) -> None:
    """A server that serves a note with another root under the real signature is caught."""
    await register_model(client, admin, f"ledger-{uuid.uuid4().hex[:8]}/altered")
    size = await seal_all(pool, signer)
    note = (await client.get("/v1/ledger/checkpoint")).text
    origin, tree_size, _root, rest = note.split("\n", 3)
    assert int(tree_size) == size
    altered = "\n".join([origin, tree_size, base64.b64encode(bytes(32)).decode(), rest])

    async def serve_altered(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/plain", body=altered)

    tab.base_url = signed_live.base_url
    await tab.page.route("**/v1/ledger/checkpoint", serve_altered)
    assert await tab.goto("/ledger") == 200
    refused = await _check_event(tab, seq="1")
    assert refused.startswith("Not verified: the checkpoint's signature does not verify"), refused


async def test_the_browser_encodes_each_leaf_in_its_format(
    browser: object,
    signed_live: LiveService,
    tab: Browsing,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    signer: Signer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A format 1 leaf (sealed before RFC 8785) and a format 2 one holding the doubles JCS
    writes differently from Python both verify when pasted, in any spacing."""
    from service.domain import sealer
    from service.domain.ledger import canonical_entry
    from tests.helpers.audits import audit_body, grant, new_auditor

    uniq = uuid.uuid4().hex[:8]
    old = await register_model(client, admin, f"ledger-{uniq}/legacy", provider="Caf\u00e9 \u2028")
    with monkeypatch.context() as m:
        m.setattr(sealer, "_entry", lambda e: (1, canonical_entry(e, 1)))
        await seal_all(pool, signer)
    name = f"ledger-{uniq}/floats"
    await register_model(client, admin, name)
    auditor = await new_auditor(pool)
    await grant(client, admin, auditor, name, ["weights"])
    values = [1e-7, 1e21, -0.0, 0.1, 5.0, 1.5e300, 123456.789]
    evaluations = [{"metric": f"m{i}", "value": v} for i, v in enumerate(values)]
    r = await client.post(
        "/v1/audits", json=audit_body(name, evaluations=evaluations), headers=auditor.headers
    )
    assert r.status_code == 201, r.text
    audit_id = r.json()["id"]
    await seal_all(pool, signer)

    legacy = await _newest_event(client, admin, str(old["id"]))
    floats = await _newest_event(client, admin, audit_id)
    tab.base_url = signed_live.base_url
    assert await tab.goto("/ledger") == 200
    for event, leaf_format in ((legacy, 1), (floats, 2)):
        seq = json.loads(event)["seq"]
        shown = await _check_event(tab, event=event)
        assert shown.startswith(f"Verified: event {seq}"), shown
        assert f"leaf format {leaf_format}" in shown
    spaced = json.dumps(json.loads(floats), indent=2, ensure_ascii=True)
    assert (await _check_event(tab, event=spaced)).startswith("Verified"), spaced
    tampered = floats.replace("1e-07", "1e-06")
    assert tampered != floats
    refused = await _check_event(tab, event=tampered)
    assert refused.startswith("Not verified: the inclusion proof does not lead"), refused
