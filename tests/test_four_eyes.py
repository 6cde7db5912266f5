"""Four eyes are two people: the approver of a decision is neither its proposer, nor a
principal the proposer created (directly or through principals it created), nor one
created after the proposal; the notice says who proposed and who approved, with the ledger
seqs of those two events."""

from __future__ import annotations

import asyncpg
import httpx

from tests.conftest import PlatformFixture, bearer, register_model
from tests.helpers.notices import Receiver, admin_headers, drain, propose, recall_hosted_model


async def _mint_admin(client: httpx.AsyncClient, by: dict[str, str], name: str) -> dict[str, str]:
    """An admin key minted over HTTP by the holder of ``by``."""
    r = await client.post("/v1/keys", json={"role": "admin", "name": name}, headers=by)
    assert r.status_code == 201, r.text
    return bearer(r.json()["key"])


async def test_the_proposer_in_another_key_may_not_approve(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    uniq: str,
) -> None:
    independent = await admin_headers(pool)
    minted = await _mint_admin(client, admin, "minted by the proposer")
    middle = await _mint_admin(client, admin, "middle of a chain")
    chained = await _mint_admin(client, middle, "minted by a key the proposer minted")
    # A key the approver-to-be minted itself is not the proposer's.
    by_independent = await _mint_admin(client, independent, "minted by the second admin")
    model = f"acme/four-eyes-{uniq}"
    await register_model(client, admin, model)
    decision = await propose(client, admin, model, reason="leaks training data")
    approve = f"/v1/decommissions/{decision['id']}/approve"
    late = await admin_headers(pool)
    late_minted = await _mint_admin(client, independent, "minted after the proposal")

    for headers, why in [
        (admin, "its proposer may not approve it"),
        (minted, "created by its proposer"),
        (chained, "created by its proposer"),
        (late, "created after the proposal"),
        (late_minted, "created after the proposal"),
    ]:
        r = await client.post(approve, headers=headers)
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert why in r.json()["detail"]
    r = await client.get(f"/v1/decommissions/{decision['id']}", headers=admin)
    assert r.json()["status"] == "proposed"
    assert r.json()["approved_by"] is None

    r = await client.post(approve, headers=by_independent)
    assert r.status_code == 200, r.text
    assert r.json()["approved_by"] not in (None, decision["proposed_by"])


async def test_a_chain_of_two_is_followed_down_from_the_proposer_not_up(
    client: httpx.AsyncClient, pool: asyncpg.Pool, admin: dict[str, str], uniq: str
) -> None:
    """A chain of two where the proposer is in the middle: the proposer's maker may
    approve (it did not descend from the proposer), the proposer's grandchild may not."""
    top = await admin_headers(pool)
    proposer = await _mint_admin(client, top, "proposer, minted by top")
    child = await _mint_admin(client, proposer, "child")
    grandchild = await _mint_admin(client, child, "grandchild")
    model = f"acme/four-eyes-chain-{uniq}"
    await register_model(client, admin, model)
    decision = await propose(client, proposer, model, reason="leaks training data")
    approve = f"/v1/decommissions/{decision['id']}/approve"
    assert (await client.post(approve, headers=grandchild)).status_code == 403
    assert (await client.post(approve, headers=child)).status_code == 403
    r = await client.post(approve, headers=top)
    assert r.status_code == 200, r.text


async def test_the_notice_names_proposer_and_approver_with_their_ledger_seqs(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    receiver: Receiver,
    http: httpx.AsyncClient,
    uniq: str,
    quiet_endpoints: None,
) -> None:
    decided = await recall_hosted_model(
        client,
        pool,
        admin,
        platform,
        f"acme/four-eyes-notice-{uniq}",
        receiver=receiver,
        reason="leaks training data",
    )

    await drain(pool, http, lambda: len(receiver.delivered()) == 1)
    [hit] = receiver.delivered()
    assert hit.verified
    assert hit.payload is not None
    data = hit.payload["data"]
    r = await client.get("/v1/events", params={"subject_id": decided["id"]}, headers=admin)
    events = {e["kind"]: e for e in r.json()["items"]}
    proposed, approved = events["decommission.proposed"], events["decommission.approved"]
    approvals = {a["step"]: a for a in data["approvals"]}
    assert approvals["proposed"]["principal_id"] == decided["proposed_by"] == proposed["actor_id"]
    assert approvals["approved"]["principal_id"] == decided["approved_by"] == approved["actor_id"]
    assert decided["proposed_by"] != decided["approved_by"]
    assert approvals["proposed"]["seq"] == proposed["seq"]
    assert approvals["approved"]["seq"] == approved["seq"]
