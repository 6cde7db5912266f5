"""``PUT /v1/platforms/{platform}/catalogue``: a platform's whole catalogue in one request.

Signed the Standard Webhooks way with the platform's secret, like a webhook, but streamed:
the body is written to a temporary file as it arrives, hashed and checked against the
signature as it goes, within its own size limit and upload deadline, and only then read
(``service.domain.catalogue``) in one transaction. The service holds a bounded part of
the body at any time, whatever its size.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import asyncpg
from litestar import Controller, Request, Response, put
from litestar.datastructures import State
from litestar.enums import ParamType
from litestar.exceptions import HTTPException, TooManyRequestsException
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.openapi.spec import Parameter as OpenAPIParameter
from litestar.params import FromPath, FromQuery

from service.api.params import PlatformSlugPath
from service.api.problems import problem_responses
from service.db.pool import acquire
from service.domain import catalogue
from service.domain.group_commit import Lease
from service.errors import NotFound, SignatureRejected, Unavailable
from service.platforms import standard
from service.schemas.catalogue import CATALOGUE_MEDIA_TYPES, CatalogueSummary
from service.settings import Settings

__all__ = ["CatalogueController"]


def _header(name: str, description: str) -> OpenAPIParameter:
    return OpenAPIParameter(
        name=name,
        param_in=ParamType.HEADER,
        required=True,
        schema=Schema(type=OpenAPIType.STRING),
        description=description,
    )


@dataclass
class CatalogueOperation(Operation):
    """Documents the streamed body and the signature headers the handler reads itself."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description=(
                "NDJSON (`application/x-ndjson`): one hosting per line, each the `data` of a "
                "`model.hosted` event plus `relation`. CycloneDX 1.6 or 1.7 JSON "
                "(`application/vnd.cyclonedx+json`): each `machine-learning-model` "
                "component a hosting."
            ),
            content={
                "application/x-ndjson": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
                "application/vnd.cyclonedx+json": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.OBJECT)
                ),
            },
        )
        self.parameters = [
            *(self.parameters or []),
            _header("webhook-id", "The catalogue's delivery id; the same on every retry."),
            _header("webhook-timestamp", "Unix seconds; within 5 minutes of the registry's clock."),
            _header("webhook-signature", "Space-separated `v1,<base64 HMAC-SHA256>` entries."),
        ]


class _Spooled:
    """A body being written to a temporary file, hashed and verified as it arrives."""

    def __init__(self, verifier: standard.StreamVerifier, limit: int) -> None:
        self.verifier = verifier
        self.limit = limit
        self.digest = hashlib.sha256()
        self.size = 0
        self.file = tempfile.NamedTemporaryFile(prefix="catalogue-", suffix=".part")  # noqa: SIM115

    async def read(self, request: Request[Any, Any, Any]) -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise HTTPException(status_code=400, detail="the client went away mid-upload")
            part: bytes = message.get("body", b"")  # type: ignore[assignment]
            if part:
                self.size += len(part)
                if self.size > self.limit:
                    raise HTTPException(
                        status_code=413,
                        detail=f"a catalogue of this format may be at most {self.limit} bytes",
                    )
                self.verifier.update(part)
                self.digest.update(part)
                self.file.write(part)
            if not message.get("more_body", False):
                self.file.flush()
                return


async def _verifier(
    lease: Lease, state: State, slug: str, headers: dict[str, str]
) -> tuple[Any, standard.StreamVerifier, standard.SignedHeaders]:
    gate = state.webhook_gate
    found = await gate.signing.fetch(await lease.get(), slug)
    if found is None:
        raise NotFound(f"no platform {slug!r}")
    platform_id, secrets = found
    wait = gate.allowance.wait(platform_id)
    if wait > 0:
        raise TooManyRequestsException(
            detail="this platform is sending faster than its allowance",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    keys = []
    for secret in secrets:
        try:
            keys.append(standard.secret_key(secret))
        except ValueError:
            continue
    try:
        signed = standard.signed_headers(headers)
        verifier = standard.StreamVerifier(keys=keys, signed=signed, tolerance=gate.tolerance)
    except standard.SignatureError as exc:
        raise SignatureRejected(str(exc)) from None
    gate.allowance.take(platform_id)
    return platform_id, verifier, signed


#: How long a sync waits for each connection to apply a part on besides its own: a part
#: without one is applied on the request's own connection, after the others.
HELPER_WAIT_SECONDS = 0.2


async def _helpers(pool: asyncpg.Pool, wanted: int) -> list[asyncpg.Connection]:
    """Up to ``wanted`` more pooled connections, as far as the pool gives them at once
    (``acquire``: whatever keeps it from giving one, the parts then run in turn)."""
    got: list[asyncpg.Connection] = []
    for _ in range(wanted):
        try:
            got.append(cast("asyncpg.Connection", await acquire(pool, timeout=HELPER_WAIT_SECONDS)))
        except Unavailable:
            break
    return got


class CatalogueController(Controller):
    """A platform's catalogue sync; authenticated by signature, not by key."""

    path = "/v1/platforms"
    tags = ["catalogue"]

    @put(
        "/{platform:str}/catalogue",
        operation_id="syncCatalogue",
        summary="Sync a platform's whole catalogue of hostings (NDJSON or CycloneDX)",
        description=(
            "Signed like a Standard Webhooks delivery (`{id}.{timestamp}.{body}` with the "
            "platform's `whsec_` secret). Only real changes are written, each a ledger event "
            "as the matching webhook would write; the same catalogue sent again changes "
            "nothing, and the same `webhook-id` with the same body is answered with the "
            "first answer (`duplicate`). Applied in parts, each one transaction (the "
            "checks, then the lines of each part, then removals and the summary): a sync "
            "cut off midway is resumed by sending the same `webhook-id` and body again, "
            "which applies only the parts not yet committed; 409 while another request is "
            "applying it. `complete=true`: hostings "
            "absent from the catalogue are marked removed. A line that fails validation is "
            "listed in `rejected` and the rest applied; `all_or_nothing=true` refuses the "
            "whole catalogue instead (422). A line naming another platform is 403; a BOM "
            "that is not valid CycloneDX 1.6/1.7 is 422 naming the first fault; 408 for an "
            "upload slower than the limit; 413 for one larger."
        ),
        status_code=200,
        opt={"exclude_from_auth": True},
        operation_class=CatalogueOperation,
        responses={
            **problem_responses(400, 401, 403, 404, 408, 409, 413, 415, 422, 429),
        },
        response_description="The catalogue is applied; what it changed.",
        request_max_body_size=None,
    )
    async def sync(
        self,
        platform: FromPath[PlatformSlugPath],
        request: Request[Any, Any, Any],
        state: State,
        complete: FromQuery[bool] = False,
        all_or_nothing: FromQuery[bool] = False,
    ) -> Response[CatalogueSummary]:
        settings: Settings = state.settings
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        fmt = CATALOGUE_MEDIA_TYPES.get(media)
        if fmt is None:
            raise HTTPException(
                status_code=415,
                detail="a catalogue is application/x-ndjson or application/vnd.cyclonedx+json",
            )
        limit = (
            settings.catalogue_max_bytes if fmt == "ndjson" else settings.catalogue_bom_max_bytes
        )
        announced = request.headers.get("content-length")
        if announced is not None and announced.isdigit() and int(announced) > limit:
            raise HTTPException(
                status_code=413, detail=f"a catalogue of this format may be at most {limit} bytes"
            )
        headers = {k.lower(): v for k, v in request.headers.items()}
        lease = Lease(state.pool, state.acquire_timeout)
        try:
            platform_id, verifier, signed = await _verifier(lease, state, platform, headers)
        finally:
            await lease.release()  # no connection is held while the body arrives
        spooled = _Spooled(verifier, limit)
        with spooled.file:
            try:
                async with asyncio.timeout(settings.catalogue_upload_seconds):
                    await spooled.read(request)
            except TimeoutError:
                raise HTTPException(
                    status_code=408,
                    detail=f"the catalogue did not arrive within "
                    f"{settings.catalogue_upload_seconds:g} seconds",
                ) from None
            try:
                verifier.finish()
            except standard.SignatureError as exc:
                raise SignatureRejected(str(exc)) from None
            work = catalogue.Catalogue(
                platform_id=platform_id,
                platform_slug=platform,
                delivery_id=signed.msg_id,
                format=fmt,
                path=Path(spooled.file.name),
                body_sha256=spooled.digest.digest(),
                body_bytes=spooled.size,
                complete=complete,
                all_or_nothing=all_or_nothing,
                occurred_at=datetime.fromtimestamp(int(signed.timestamp), UTC),
            )
            helpers: list[asyncpg.Connection] = []
            try:
                conn = await lease.get()
                helpers = await _helpers(state.pool, settings.catalogue_parts - 1)
                summary = await catalogue.sync(
                    conn,
                    work,
                    helpers=helpers,
                    parts=settings.catalogue_parts,
                    seconds=settings.catalogue_timeout_seconds,
                )
            except asyncpg.TransactionRollbackError as exc:
                raise Unavailable(
                    "the catalogue collided with a concurrent change; send it again (the "
                    "parts already applied are not applied twice)"
                ) from exc
            finally:
                for helper in helpers:
                    await state.pool.release(helper)
                await lease.release()
        return Response(summary, status_code=200)
