"""``/v1/exports``: whole datasets for regulators, streamed as CSV or JSON lines."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream

from service.api.auth import allow, principal_of
from service.api.deps import Caller, Db
from service.api.negotiation import negotiate
from service.api.openapi_extras import also_served_as
from service.api.problems import problem_responses
from service.domain import export_jobs as jobs
from service.domain import exports as domain
from service.domain.csaf import build_decision_advisory
from service.domain.decommissions import get_decision
from service.domain.export_archive import archive_name, archive_size, stream_archive
from service.errors import Conflict, NotAcceptable
from service.schemas.events import Stage
from service.schemas.exports import Dataset, ExportFormat, ExportJob, ExportJobIn

__all__ = ["ExportController", "archive_response"]

Format = ExportFormat

# Litestar adds "; charset=utf-8" to text media types itself.
MEDIA_TYPES: dict[str, str] = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
_OFFERS: dict[str, Format] = {
    "text/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/json-seq": "jsonl",
}


Document = Literal["model_card", "safety_testing", "risk_analysis", "use_guidance"]
Article73 = Literal["met", "recorded_late", "missed", "pending"]
Word = Annotated[str | None, QueryParameter(max_length=40, pattern=r"^[a-z_]+$")]


def _columns_doc() -> str:
    return "\n".join(f"- `{name}`: {', '.join(cols)}" for name, cols in domain.COLUMNS.items())


class ExportController(Controller):
    path = "/v1/exports"
    tags = ["exports"]
    guards = [allow("admin", "regulator")]

    @get(
        "/{dataset:str}",
        operation_id="exportDataset",
        operation_class=also_served_as(MEDIA_TYPES["jsonl"]),
        summary="Stream a whole dataset as CSV (RFC 4180, with a header row) or JSON lines",
        description=(
            "Streams from a consistent snapshot in bounded memory. The format is chosen by "
            "`format=`, else by `Accept` (`text/csv` or `application/x-ndjson`); CSV by "
            "default. `from`/`to` bound `recorded_at` for events and `created_at` for "
            "records. Rows come in a stable order (sequence or id). In CSV, a text cell "
            "that begins with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'`, so no "
            "spreadsheet runs it as a formula; numbers are unchanged, and JSON lines carry "
            "every value as stored. Narrowing filters, each the rows' own field: hostings "
            "take `status`, `documented` and `undocumented` (a documentation element); "
            "incidents take `status`, `category`, `serious`, `duplicates=false` (leave out "
            "merged duplicates) and `article73` (the deadline outcome, as the compliance "
            "report counts it); decisions take `status` and `action`. Another dataset "
            "refuses them (422). The compliance report names, for each figure, the export "
            "that returns exactly the records it counts. Columns, in order:\n\n" + _columns_doc()
        ),
        responses={
            200: ResponseSpec(
                data_container=str,
                description="The rows, as CSV or JSON lines.",
                media_type="text/csv",
                generate_examples=False,
            ),
            **problem_responses(400, 401, 403, 404, 406, 422),
        },
    )
    async def export(
        self,
        request: Request[Any, Any, Any],
        state: State,
        dataset: FromPath[Dataset],
        since: Annotated[
            datetime | None,
            QueryParameter(name="from", description="Start of the range (inclusive)."),
        ] = None,
        until: Annotated[
            datetime | None,
            QueryParameter(name="to", description="End of the range (exclusive)."),
        ] = None,
        platform: Annotated[str | None, QueryParameter(max_length=63)] = None,
        stage: FromQuery[Stage | None] = None,
        model_id: FromQuery[UUID | None] = None,
        status: Word = None,
        documented: FromQuery[Document | None] = None,
        undocumented: FromQuery[Document | None] = None,
        category: Word = None,
        serious: FromQuery[bool | None] = None,
        duplicates: FromQuery[bool | None] = None,
        article73: FromQuery[Article73 | None] = None,
        action: Word = None,
        format: FromQuery[Format | None] = None,
    ) -> Stream:
        principal = principal_of(request)
        fmt = negotiate(request, format, offers=_OFFERS, default="csv")
        if fmt is None:
            raise NotAcceptable("exports are served as text/csv or application/x-ndjson")
        settings = state.settings
        redact = domain.redacts_for(
            principal, redact_for_regulators=settings.redact_incident_text_for_regulators
        )
        chunks = await domain.start_export(
            state.pool,
            dataset=dataset,
            fmt=fmt,
            filters=domain.ExportFilters(
                since=since,
                until=until,
                stage=stage,
                model_id=model_id,
                narrow={
                    "status": status,
                    "documented": documented,
                    "undocumented": undocumented,
                    "category": category,
                    "serious": serious,
                    "duplicates": duplicates,
                    "article73": article73,
                    "action": action,
                },
            ),
            platform=platform,
            seconds=settings.export_timeout_seconds,
            acquire_timeout=state.acquire_timeout,
            redact=redact,
        )
        return Stream(
            chunks,
            media_type=MEDIA_TYPES[fmt],
            headers={
                "Content-Disposition": f'attachment; filename="{dataset}.{fmt}"',
                "Cache-Control": "no-store",
            },
        )

    @post(
        operation_id="createExportJob",
        summary="Queue a signed export bundle of one or more datasets",
        description=(
            "Returns at once with the job (202); poll it until `status` is `done`, then fetch "
            "its files: the data files, `manifest.json` (row counts, SHA-256 of each file, "
            "the ledger checkpoint the bundle is consistent with) and `manifest.sig` (a "
            "signed note by the registry's Ed25519 key). `risk-registry verify-export DIR` "
            "checks a downloaded bundle offline. CSV files neutralise formula-like text "
            "cells as the streaming export does."
        ),
        status_code=202,
        responses=problem_responses(400, 401, 403, 413, 415, 422),
    )
    async def create_job(
        self, data: JSONBody[ExportJobIn], db: Db, principal: Caller, state: State
    ) -> Response[ExportJob]:
        redact = domain.redacts_for(
            principal, redact_for_regulators=state.settings.redact_incident_text_for_regulators
        )
        job = await jobs.create_job(db, data=data, requested_by=principal.id, redact=redact)
        wake: asyncio.Event | None = getattr(state, "export_wakeup", None)
        # This process's worker is woken once the response (and so the commit) is done;
        # the other replicas' workers find the job when they next poll.
        return Response(
            job,
            status_code=202,
            headers={"Location": f"/v1/exports/jobs/{job.id}"},
            background=BackgroundTask(wake.set) if wake is not None else None,
        )

    @get(
        "/jobs/{job_id:uuid}",
        operation_id="getExportJob",
        summary="An export job's status, progress and (once done) files",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read_job(self, job_id: FromPath[UUID], db: Db, principal: Caller) -> ExportJob:
        return await jobs.get_job(db, job_id=job_id, visible_to=principal)

    @get(
        "/jobs/{job_id:uuid}/files/{name:str}",
        operation_id="getExportFile",
        summary="One file of a finished export bundle",
        responses={
            200: ResponseSpec(
                data_container=str,
                description="The file's bytes, exactly as listed in the manifest.",
                media_type="application/octet-stream",
                generate_examples=False,
            ),
            **problem_responses(400, 401, 403, 404, 409),
        },
    )
    async def read_file(
        self,
        job_id: FromPath[UUID],
        name: FromPath[str],
        db: Db,
        principal: Caller,
        state: State,
    ) -> Stream:
        job = await jobs.get_job(db, job_id=job_id, visible_to=principal)
        await jobs.check_file(db, job=job, name=name)
        return Stream(
            jobs.stream_file(
                state.pool, job_id=job_id, name=name, acquire_timeout=state.acquire_timeout
            ),
            # A download: the bytes exactly as the manifest lists them, whatever the file.
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @get(
        "/jobs/{job_id:uuid}/archive",
        operation_id="getExportArchive",
        summary="A finished export bundle as one tar archive: files, manifest and signature",
        description=(
            "A POSIX tar of the bundle's files in a folder `export-<job id>/`: the data "
            "files, `manifest.json` and `manifest.sig`, byte for byte as the single-file "
            "downloads serve them, streamed in bounded memory. Unpack it with `tar -xf` and "
            "check it offline with `risk-registry verify-export export-<job id> --key KEY`. "
            "409 until the job is done."
        ),
        responses={
            200: ResponseSpec(
                data_container=str,
                description="The tar archive.",
                media_type="application/x-tar",
                generate_examples=False,
            ),
            **problem_responses(400, 401, 403, 404, 409),
        },
    )
    async def read_archive(
        self, job_id: FromPath[UUID], db: Db, principal: Caller, state: State
    ) -> Stream:
        job = await jobs.get_job(db, job_id=job_id, visible_to=principal)
        return archive_response(job, state)

    @get(
        "/csaf/decisions/{decision_id:uuid}",
        operation_id="getDecisionAdvisory",
        summary="A decommissioning decision as a CSAF 2.0 security advisory",
        description=(
            "The decision's model and the descendants it reaches are the products; the "
            "action is the remediation (recall, restriction, licence change: mitigation; "
            "deprecation: vendor_fix with a successor, else no_fix_planned); each workflow "
            "step is a revision. Each product carries its package URLs "
            "(`product_identification_helper`: the first as `purl`, any others as "
            "`x_generic_uris` under the purl specification's namespace)."
        ),
        responses=problem_responses(400, 401, 403, 404),
    )
    async def decision_csaf(
        self, decision_id: FromPath[UUID], db: Db, state: State
    ) -> dict[str, Any]:
        decision = await get_decision(db, decision_id=decision_id)
        settings = state.settings
        return await build_decision_advisory(
            db,
            decision,
            publisher_name=settings.csaf_publisher_name,
            publisher_namespace=settings.csaf_publisher_namespace,
        )


def archive_response(job: ExportJob, state: State) -> Stream:
    """The tar of a done job (409 before), for the API and the console alike."""
    if job.status != "done":
        raise Conflict(f"the export job is {job.status}; its archive exists once it is done")
    return Stream(
        stream_archive(state.pool, job=job, acquire_timeout=state.acquire_timeout),
        media_type="application/x-tar",
        headers={
            "Content-Disposition": f'attachment; filename="{archive_name(job)}"',
            "Content-Length": str(archive_size(job)),
            "Cache-Control": "no-store",
        },
    )
