"""The platform kit (``kit/``) receiving notices and checking receivers.

Notices come from the registry's delivery worker to a live receiver built on the kit; the
conformance command is run against a good receiver and against broken ones, each of which
must be named for what it breaks; the test-notice command drives a live registry.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx
import pytest
from registry_kit import (
    CHECKS,
    MemorySeenStore,
    Notice,
    NoticeReceiver,
    VerificationError,
    encode_event,
    run_conformance,
    signed_headers,
    verify,
)
from registry_kit.__main__ import main as kit_main

from tests.conftest import PlatformFixture
from tests.helpers.kit import OTHER, SECRET, Answer, Handler, kit_receiver, serve
from tests.helpers.notices import admin_headers, decide, drain
from tests.live_service import LiveService

# -- receiving ----------------------------------------------------------------------------


async def test_notices_from_the_registry_are_verified_and_processed_once(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    admin: dict[str, str],
    platform: PlatformFixture,
    uniq: str,
) -> None:
    processed: list[Notice] = []
    holder: dict[str, NoticeReceiver] = {}
    requests: list[str] = []

    def handle(headers: dict[str, str], body: bytes) -> Answer:
        requests.append(headers.get("webhook-id", ""))
        return kit_receiver(holder["r"], processed)(headers, body)

    with serve(handle) as url:
        r = await client.post(
            f"/v1/platforms/{platform.slug}/endpoints", json={"url": url}, headers=platform.headers
        )
        assert r.status_code == 201, r.text
        endpoint_id, secret = r.json()["endpoint"]["id"], r.json()["secret"]
        holder["r"] = NoticeReceiver(secret)
        try:
            model = f"org-{uniq}/noticed"
            await client.post("/v1/models", json={"name": model}, headers=admin)
            await client.post(
                "/v1/hostings",
                json={
                    "model": model,
                    "url": f"https://x.example/{model}",
                    "platform": platform.slug,
                },
                headers=admin,
            )
            await decide(client, admin, await admin_headers(pool), model)
            r = await client.post(f"/v1/endpoints/{endpoint_id}/test", headers=platform.headers)
            await drain(pool, http, lambda: len(processed) == 2)
            assert sorted(n.type for n in processed) == ["decommission.notice", "endpoint.test"]
            notice = next(n for n in processed if n.type == "decommission.notice")
            assert notice.data["model"] == model

            # A redelivery arrives with the same id: acknowledged, not processed again.
            r = await client.post(
                f"/v1/notifications/{notice.id}/redeliver", headers=platform.headers
            )
            assert r.status_code == 202, r.text
            await drain(pool, http, lambda: len(requests) == 3)
            assert requests.count(notice.id) == 2
            r = await client.get(f"/v1/notifications/{notice.id}/attempts", headers=admin)
            assert [a["status_code"] for a in r.json()["items"]] == [200, 200]
            assert len(processed) == 2

            # A forged copy is refused.
            body = encode_event("decommission.notice", {})
            forged = signed_headers(OTHER, msg_id=str(notice.id), body=body)
            assert holder["r"].handle(forged, body, processed.append) == 401
        finally:
            await client.patch(
                f"/v1/endpoints/{endpoint_id}", json={"disabled": True}, headers=admin
            )


def test_receiver_forgets_a_notice_whose_processing_failed() -> None:
    receiver = NoticeReceiver([OTHER, SECRET], seen=MemorySeenStore(max_items=2))
    body = b'{"type":"endpoint.test","timestamp":"2026-11-30T00:00:00Z","id":"n1","data":{}}'
    headers = signed_headers(SECRET, msg_id="n1", body=body)

    def explode(_: Notice) -> None:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        receiver.handle(headers, body, explode)
    done: list[Notice] = []
    assert receiver.handle(headers, body, done.append) == 200
    assert receiver.handle(headers, body, done.append) == 200
    assert [n.id for n in done] == ["n1"]
    # A signed body that is not a notice, or whose id is not its webhook-id, is a 400.
    assert (
        receiver.handle(signed_headers(SECRET, msg_id="n1", body=b"[]"), b"[]", done.append) == 400
    )
    assert receiver.handle(signed_headers(SECRET, msg_id="n2", body=body), body, done.append) == 400


# -- conformance --------------------------------------------------------------------------


def _accept_all(headers: dict[str, str], body: bytes) -> Answer:
    return 200, {}, b""


def _no_time_check(headers: dict[str, str], body: bytes) -> Answer:
    lax = NoticeReceiver(SECRET, tolerance=10**9)
    return lax.handle(headers, body, lambda n: None), {}, b""


class _CrashesOnRepeat:
    """Inserts each id under a unique key and lets the violation become a 500."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def __call__(self, headers: dict[str, str], body: bytes) -> Answer:
        try:
            msg_id = verify(SECRET, headers, body)
        except VerificationError:
            return 401, {}, b""
        if msg_id in self.ids:
            return 500, {}, b"duplicate key value violates unique constraint"
        self.ids.add(msg_id)
        return 204, {}, b""


def _crashes_on_bad_signature(headers: dict[str, str], body: bytes) -> Answer:
    try:
        verify(SECRET, headers, body)
    except VerificationError:
        return 500, {}, b"unhandled exception"
    return 200, {}, b""


@pytest.mark.parametrize(
    ("handler", "failing"),
    [
        (None, set()),
        (
            _accept_all,
            {"bad signature refused", "missing signature refused", "stale timestamp refused"},
        ),
        (_no_time_check, {"stale timestamp refused"}),
        (_CrashesOnRepeat(), {"repeat de-duplicated"}),
        (
            _crashes_on_bad_signature,
            {"bad signature refused", "missing signature refused", "stale timestamp refused"},
        ),
        ("wrong-secret", {"valid notice accepted", "repeat de-duplicated"}),
    ],
    ids=[
        "good",
        "accepts-all",
        "no-time-check",
        "500-on-repeat",
        "500-on-bad-signature",
        "wrong-secret",
    ],
)
def test_conformance_names_each_failure(handler: Handler | str | None, failing: set[str]) -> None:
    processed: list[Notice] = []
    if handler is None:
        handler = kit_receiver(NoticeReceiver(SECRET), processed)
    elif handler == "wrong-secret":
        handler = kit_receiver(NoticeReceiver(OTHER), processed)
    assert callable(handler)
    with serve(handler) as url:
        results = run_conformance(url, SECRET, timeout=5)
    assert [r.name for r in results] == list(CHECKS)
    assert {r.name for r in results if not r.passed} == failing, results
    if handler is None:
        assert len(processed) == 1  # the repeat was acknowledged, not processed again


def test_conformance_command_exit_status_and_report(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(kit_receiver(NoticeReceiver(SECRET), [])) as url:
        assert kit_main(["conformance", url, "--secret", SECRET]) == 0
        out = capsys.readouterr().out
        assert out.count("PASS") == len(CHECKS)
        assert "all 5 checks passed" in out
    with serve(_no_time_check) as url:
        monkeypatch.setenv("REGISTRY_KIT_SECRET", SECRET)
        assert kit_main(["conformance", url]) == 1
        out = capsys.readouterr().out
        assert "FAIL  stale timestamp refused: answered 200, expected 4xx" in out
        assert "1 of 5 checks failed" in out
    monkeypatch.delenv("REGISTRY_KIT_SECRET")
    with pytest.raises(SystemExit) as usage:
        kit_main(["conformance", "http://127.0.0.1:9/"])
    assert usage.value.code == 2
    # Nobody listening is a failure of every check, not a crash.
    assert kit_main(["conformance", "http://127.0.0.1:9/", "--secret", SECRET]) == 1


async def test_test_notice_command_reports_what_the_receiver_answered(
    client: httpx.AsyncClient,
    database_url: str,
    admin: dict[str, str],
    platform: PlatformFixture,
    other_platform: PlatformFixture,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A live registry with its delivery worker sends the test notice the command asks for."""
    key = platform.headers["Authorization"].removeprefix("Bearer ")
    processed: list[Notice] = []
    holder: dict[str, NoticeReceiver] = {}
    failing = {"on": False}

    def handle(headers: dict[str, str], body: bytes) -> Answer:
        if failing["on"]:
            return 503, {}, b""
        return kit_receiver(holder["r"], processed)(headers, body)

    with serve(handle) as url:
        r = await client.post(
            f"/v1/platforms/{platform.slug}/endpoints", json={"url": url}, headers=platform.headers
        )
        assert r.status_code == 201, r.text
        endpoint_id = r.json()["endpoint"]["id"]
        holder["r"] = NoticeReceiver(r.json()["secret"])
        try:
            env = {
                "REGISTRY_OUTBOX_WORKER": "true",
                "REGISTRY_OUTBOX_POLL_SECONDS": "0.1",
                # The receiver listens on loopback, which notices reach only when allowed.
                "REGISTRY_NOTICE_ALLOWED_NETWORKS": "127.0.0.0/8",
            }
            async with LiveService(database_url, tmp_path, **env) as svc:
                argv = ["test-notice", svc.base_url, endpoint_id, "--key", key, "--wait", "20"]
                assert await asyncio.to_thread(kit_main, argv) == 0
                out = capsys.readouterr().out
                assert "attempt 1: 200" in out
                assert f"PASS  notice {processed[0].id}" in out
                assert processed[0].type == "endpoint.test"

                failing["on"] = True
                assert await asyncio.to_thread(kit_main, argv) == 1
                out = capsys.readouterr().out
                assert "attempt 1: 503" in out
                assert "FAIL  notice" in out

                # Another platform's key finds no such endpoint; the command says so.
                theirs = other_platform.headers["Authorization"].removeprefix("Bearer ")
                other = ["test-notice", svc.base_url, endpoint_id, "--key", theirs]
                assert await asyncio.to_thread(kit_main, other) == 1
                assert "HTTP 404: no endpoint" in capsys.readouterr().out
        finally:
            await client.patch(
                f"/v1/endpoints/{endpoint_id}", json={"disabled": True}, headers=admin
            )
