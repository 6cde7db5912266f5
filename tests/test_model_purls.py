"""Package URLs: a platform names its purl type, its hostings carry the purl it gives them,
and the model record, the lookup, the exports, the BOM and the CSAF advisory all say it."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import asyncpg
import httpx
import pytest

from service.domain.reconciler import reconcile_all
from tests.conftest import PlatformFixture, register_model
from tests.helpers.divergences import divergences
from tests.helpers.webhooks import deliver, hosted, new_secret


async def _set_type(
    client: httpx.AsyncClient, admin: dict[str, str], slug: str, purl_type: str | None
) -> httpx.Response:
    return await client.patch(f"/v1/platforms/{slug}", json={"purl_type": purl_type}, headers=admin)


async def _typed(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, purl_type: str
) -> None:
    r = await _set_type(client, admin, platform.slug, purl_type)
    assert r.status_code == 200, r.text
    assert r.json()["purl_type"] == purl_type


async def _host(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    model: str,
    platform: PlatformFixture,
    **fields: Any,
) -> dict[str, Any]:
    r = await client.post(
        "/v1/hostings",
        json={
            "model": model,
            "url": f"https://{platform.slug}.example/{model}",
            "platform": platform.slug,
            **fields,
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    hosting: dict[str, Any] = r.json()
    return hosting


async def _model(client: httpx.AsyncClient, headers: dict[str, str], model_id: Any) -> Any:
    r = await client.get(f"/v1/models/{model_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def _lookup(client: httpx.AsyncClient, headers: dict[str, str], purl: str) -> list[str]:
    r = await client.get("/v1/models", params={"purl": purl}, headers=headers)
    assert r.status_code == 200, r.text
    return [m["name"] for m in r.json()["items"]]


async def test_a_typed_platform_gives_the_model_its_purl_with_the_revision(
    client: httpx.AsyncClient,
    conn: asyncpg.Connection,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    name = f"Acme{uniq}/Chat-Model"
    created = await register_model(client, admin, name)
    await _typed(client, admin, platform, "huggingface")
    await _host(client, admin, name, platform, revision="9F2C1E0")
    model = await _model(client, admin, created["id"])
    # Hugging Face keeps owner and name as they are and lower-cases the commit hash.
    assert model["purls"] == [f"pkg:huggingface/Acme{uniq}/Chat-Model@9f2c1e0"]
    r = await client.get("/v1/models", params={"name": name}, headers=admin)
    assert r.json()["items"][0]["purls"] == model["purls"]
    # The type is the platform's, recorded in the ledger as its other fields are.
    r = await client.get(f"/v1/platforms/{platform.slug}", headers=admin)
    assert r.json()["purl_type"] == "huggingface"
    row = await conn.fetchrow(
        "SELECT kind, payload FROM events WHERE subject_id = $1 ORDER BY seq DESC LIMIT 1",
        platform.id,
    )
    assert row is not None
    assert row["kind"] == "platform.updated"
    assert row["payload"]["state"]["purl_type"] == "huggingface"
    assert row["payload"]["changes"]["purl_type"] == {"from": None, "to": "huggingface"}


async def test_two_typed_platforms_give_two_purls_and_an_untyped_one_none(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    name = f"Acme{uniq}/Repo"
    created = await register_model(client, admin, name)
    await _host(client, admin, name, platform, revision="abc")
    assert (await _model(client, admin, created["id"]))["purls"] == []
    await _typed(client, admin, platform, "huggingface")
    await _typed(client, admin, other_platform, "github")
    await _host(client, admin, name, other_platform)
    model = await _model(client, admin, created["id"])
    # GitHub lower-cases owner and repository; no revision known: no version.
    assert model["purls"] == [
        f"pkg:github/acme{uniq}/repo",
        f"pkg:huggingface/Acme{uniq}/Repo@abc",
    ]
    # A platform sees the purls of its own hostings only, as it sees its hostings.
    mine = await _model(client, other_platform.headers, created["id"])
    assert mine["purls"] == [f"pkg:github/acme{uniq}/repo"]
    # Clearing a platform's type takes its hostings' purls away, in the same change.
    r = await _set_type(client, admin, platform.slug, None)
    assert r.status_code == 200, r.text
    assert r.json()["purl_type"] is None
    model = await _model(client, admin, created["id"])
    assert model["purls"] == [f"pkg:github/acme{uniq}/repo"]


async def test_an_mlflow_purl_has_no_namespace(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    name = f"team{uniq}/Fraud-Scorer"
    created = await register_model(client, admin, name)
    await _typed(client, admin, platform, "mlflow")
    await _host(client, admin, name, platform, revision="3")
    assert (await _model(client, admin, created["id"]))["purls"] == ["pkg:mlflow/Fraud-Scorer@3"]
    assert name in await _lookup(client, admin, "pkg:mlflow/Fraud-Scorer")


async def test_lookup_by_purl_with_and_without_version(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    auditor: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    name = f"Acme{uniq}/Chat"
    await register_model(client, admin, name)
    await register_model(client, admin, f"Acme{uniq}/Chat-2")
    await _typed(client, admin, platform, "huggingface")
    hosting = await _host(client, admin, name, platform, revision="abc")
    await _host(client, admin, f"Acme{uniq}/Chat-2", platform, revision="abc")
    base = f"pkg:huggingface/Acme{uniq}/Chat"
    assert await _lookup(client, auditor, base) == [name]
    assert await _lookup(client, auditor, f"{base}@abc") == [name]
    assert await _lookup(client, auditor, f"{base}@ABC") == [name]  # the hash's case
    assert await _lookup(client, auditor, f"{base}@abc?repository_url=https://hf.co") == [name]
    assert await _lookup(client, auditor, f"{base}@other") == []
    # Another ecosystem, or another case where the type is case-sensitive, is another name.
    assert await _lookup(client, auditor, f"pkg:github/acme{uniq}/chat") == []
    assert await _lookup(client, auditor, f"pkg:huggingface/acme{uniq}/chat") == []
    # A removed hosting no longer answers for its model.
    r = await client.patch(
        f"/v1/hostings/{hosting['id']}", json={"status": "removed"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert await _lookup(client, auditor, base) == []
    # Nor does the model record name it: the purls are those of its hostings not removed.
    model = await _model(client, auditor, hosting["model_id"])
    assert model["purls"] == [], model["purls"]


@pytest.mark.parametrize(
    ("purl", "says"),
    [
        ("not a purl", "not a package URL"),
        ("pkg:", "not a package URL"),
        ("pkg:huggingface/noowner", "Namespace is required"),
        ("pkg:mlflow/team/model@3", "Namespace is prohibited"),
        ("pkg:npm/left-pad", "not one a platform can have"),
    ],
)
async def test_a_malformed_purl_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], purl: str, says: str
) -> None:
    r = await client.get("/v1/models", params={"purl": purl}, headers=admin)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert says in problem["detail"]
    assert problem["errors"][0]["key"] == "purl"


async def test_an_unknown_purl_type_is_422_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    r = await client.post(
        "/v1/platforms",
        json={"slug": f"pypi-{uniq}", "name": "PyPI", "kind": "model_hub", "purl_type": "pypi"},
        headers=admin,
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["key"] == "purl_type"
    r = await client.get(f"/v1/platforms/pypi-{uniq}", headers=admin)
    assert r.status_code == 404
    r = await _set_type(client, admin, platform.slug, "Hugging Face")
    assert r.status_code == 422, r.text
    r = await client.get(f"/v1/platforms/{platform.slug}", headers=admin)
    assert r.json()["purl_type"] is None
    # Only an administrator sets it.
    r = await _set_type(client, platform.headers, platform.slug, "github")
    assert r.status_code == 403
    r = await client.post(
        "/v1/platforms",
        json={"slug": f"gh-{uniq}", "name": "Forge", "kind": "code_forge", "purl_type": "github"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["purl_type"] == "github"


async def test_exports_carry_the_purls(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    regulator: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    uniq: str,
) -> None:
    name = f"Acme{uniq}/Exported"
    created = await register_model(client, admin, name)
    await _typed(client, admin, platform, "huggingface")
    await _typed(client, admin, other_platform, "bitbucket")
    one = await _host(client, admin, name, platform, revision="f00d")
    two = await _host(client, admin, name, other_platform, revision="v1.0")
    purls = (await _model(client, admin, created["id"]))["purls"]
    assert purls == [f"pkg:bitbucket/acme{uniq}/exported@v1.0", f"pkg:huggingface/{name}@f00d"]
    params = {"model_id": str(created["id"])}
    r = await client.get(
        "/v1/exports/models", params={**params, "format": "jsonl"}, headers=regulator
    )
    [row] = [json.loads(line) for line in r.text.splitlines()]
    assert row["purls"] == purls
    r = await client.get(
        "/v1/exports/models", params={**params, "format": "csv"}, headers=regulator
    )
    [row] = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert row["purls"] == "{" + ",".join(purls) + "}"
    expected = {one["id"]: purls[1], two["id"]: purls[0]}
    r = await client.get(
        "/v1/exports/hostings", params={**params, "format": "jsonl"}, headers=regulator
    )
    assert {h["id"]: h["purl"] for h in map(json.loads, r.text.splitlines())} == expected
    r = await client.get(
        "/v1/exports/hostings", params={**params, "format": "csv"}, headers=regulator
    )
    assert {h["id"]: h["purl"] for h in csv.DictReader(io.StringIO(r.text, newline=""))} == expected
    # A platform's export names the purls of its own hostings only.
    r = await client.get(
        "/v1/exports/models",
        params={**params, "format": "jsonl", "platform": other_platform.slug},
        headers=regulator,
    )
    assert json.loads(r.text)["purls"] == [purls[0]]


async def test_the_bom_uses_the_model_records_purl(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    base, name = f"Acme{uniq}/Base", f"Acme{uniq}/Tuned"
    await register_model(client, admin, base)
    created = await register_model(client, admin, name, base_model=base, derivation="fine_tune")
    await _typed(client, admin, platform, "huggingface")
    await _host(client, admin, base, platform, revision="b1")
    await _host(client, admin, name, platform, revision="t2")
    r = await client.get(f"/v1/models/{created['id']}/bom", headers=admin)
    assert r.status_code == 200, r.text
    top = r.json()["metadata"]["component"]
    model = await _model(client, admin, created["id"])
    assert top["purl"] == model["purls"][0] == f"pkg:huggingface/{name}@t2"
    assert top["pedigree"]["ancestors"][0]["purl"] == f"pkg:huggingface/{base}@b1"


async def test_records_still_agree_with_the_ledger_after_a_type_change(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    name = f"Acme{uniq}/Reconciled"
    created = await register_model(client, admin, name)
    hosting = await _host(client, admin, name, platform, revision="r1")
    await _typed(client, admin, platform, "huggingface")
    r = await client.patch(f"/v1/hostings/{hosting['id']}", json={"revision": "r2"}, headers=admin)
    assert r.status_code == 200, r.text
    await _typed(client, admin, platform, "github")
    model = await _model(client, admin, created["id"])
    assert model["purls"] == [f"pkg:github/acme{uniq}/reconciled@r2"]
    await reconcile_all(pool, batch_size=500)
    found = await divergences(client, admin)
    assert {f for f in found if f[1] in (created["id"], hosting["id"])} == set()


async def test_a_platform_finds_the_model_it_hosted_by_the_purl_of_its_own_hub(
    client: httpx.AsyncClient, admin: dict[str, str], platform: PlatformFixture, uniq: str
) -> None:
    """As a hub would: sign a ``model.hosted`` webhook, then ask for the model by the
    package URL its own users know it by."""
    await _typed(client, admin, platform, "huggingface")
    secret = await new_secret(client, admin, platform.slug)
    name = f"Org{uniq}/Llama-Tune"
    r = await deliver(client, platform.slug, secret, hosted(name, revision="0A1B2C"))
    assert r.status_code == 202, r.text
    r = await client.get(
        "/v1/models",
        params={"purl": f"pkg:huggingface/Org{uniq}/Llama-Tune@0a1b2c"},
        headers=platform.headers,
    )
    assert r.status_code == 200, r.text
    [model] = r.json()["items"]
    assert model["name"] == name
    assert model["purls"] == [f"pkg:huggingface/Org{uniq}/Llama-Tune@0a1b2c"]
    # A new revision delivered moves the purl's version with it.
    update = hosted(name, revision="ffee")
    update = update.replace(b'"model.hosted"', b'"model.updated"')
    r = await deliver(client, platform.slug, secret, update)
    assert r.status_code == 202, r.text
    found = await _lookup(client, platform.headers, f"pkg:huggingface/Org{uniq}/Llama-Tune@ffee")
    assert found == [name]


async def test_the_command_line_sets_a_platforms_purl_type(
    database_url: str, client: httpx.AsyncClient, admin: dict[str, str], uniq: str
) -> None:
    from tests.helpers.cli import cli

    slug = f"cli-purl-{uniq}"
    add = ["platforms", "add", slug, "--name", "Forge", "--kind", "code_forge", "--json"]
    added = json.loads(cli(database_url, *add, "--purl-type", "github").stdout)
    assert added["purl_type"] == "github"
    name = f"Team{uniq}/Model"
    await register_model(client, admin, name)
    r = await client.post(
        "/v1/hostings",
        json={"model": name, "url": "https://forge.example/m", "platform": slug, "revision": "v2"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert await _lookup(client, admin, f"pkg:github/team{uniq}/model@v2") == [name]
    cli(database_url, "platforms", "set-purl-type", slug, "bitbucket")
    assert await _lookup(client, admin, f"pkg:bitbucket/team{uniq}/model") == [name]
    assert await _lookup(client, admin, f"pkg:github/team{uniq}/model") == []
    cleared = cli(database_url, "platforms", "set-purl-type", slug, "none", "--json")
    assert json.loads(cleared.stdout)["purl_type"] is None
    bad = cli(database_url, "platforms", "set-purl-type", slug, "gitlab", check=False)
    assert bad.returncode == 2
