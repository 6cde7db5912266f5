"""``/console/exports``: signed export bundles for regulators and admins.

A page to choose datasets, format and filters and start a bundle; the bundle's page shows
the job's progress as the export worker records it (it reloads itself without JavaScript;
``exports.js`` polls ``/progress`` instead when scripts run) and, once done, links the
whole bundle as one tar archive with the commands that check it offline. Each step calls
what ``POST /v1/exports``, ``GET /v1/exports/jobs/{id}`` and its ``/archive`` call, under
the same roles.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import FormMultiDict, State
from litestar.params import FromPath
from litestar.response import Redirect, Stream, Template

from service.api.deps import Db
from service.api.exports import archive_response
from service.api.transparency import CHECKPOINT_KEY_PATH
from service.console.web import Form, Viewer, page, require
from service.domain import export_jobs as jobs
from service.domain.export_archive import archive_folder, archive_name
from service.domain.exports import redacts_for
from service.errors import InvalidInput
from service.schemas.exports import ExportJob, ExportJobIn
from service.schemas.keys import Role

__all__ = ["ExportPageController"]

ROLES: tuple[Role, ...] = ("admin", "regulator")
DATASETS = ("events", "models", "hostings", "incidents", "audits", "decisions")
STAGES = ("prevent", "detect", "respond")


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """What the bundle's page shows of a job while it runs."""

    status: str
    progress: float | None
    rows_done: int
    rows_total: int | None


def _text(form: FormMultiDict, name: str) -> str | None:
    value = form.get(name, "")
    return (value.strip() or None) if isinstance(value, str) else None


def _day(form: FormMultiDict, name: str, *, after: bool = False) -> datetime | None:
    """A date from the form as 00:00 UTC; ``after``: of the next day (an inclusive 'to')."""
    text = _text(form, name)
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput(f"'{name}' is not a date (YYYY-MM-DD): {text!r}", key=name) from exc
    if after and day >= date.max:
        raise InvalidInput("the period ends too late", key=name)
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return moment + timedelta(days=1) if after else moment


def job_request(form: FormMultiDict) -> ExportJobIn:
    """The form as the API's request body: the same checks apply to both."""
    datasets = [d for d in form.getall("datasets", []) if isinstance(d, str)]
    if not datasets:
        raise InvalidInput("choose at least one dataset", key="datasets")
    data: dict[str, Any] = {
        "datasets": datasets,
        "format": _text(form, "format") or "csv",
        "from": _day(form, "from"),
        "to": _day(form, "to", after=True),
        "platform": _text(form, "platform"),
        "stage": _text(form, "stage"),
        "model_id": _text(form, "model_id"),
    }
    try:
        return msgspec.convert({k: v for k, v in data.items() if v is not None}, ExportJobIn)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from exc


class ExportPageController(Controller):
    path = "/console/exports"

    @get("/")
    async def index(self, db: Db, viewer: Viewer) -> Template:
        require(viewer, *ROLES)
        recent = await jobs.list_jobs(db, visible_to=viewer.principal, limit=20)
        return page(
            "exports.html",
            viewer=viewer,
            title="Exports",
            datasets=DATASETS,
            stages=STAGES,
            recent=recent,
        )

    @post("/")
    async def start(self, db: Db, viewer: Viewer, form: Form, state: State) -> Redirect:
        require(viewer, *ROLES)
        data = job_request(form)
        redact = redacts_for(
            viewer.principal,
            redact_for_regulators=state.settings.redact_incident_text_for_regulators,
        )
        job = await jobs.create_job(db, data=data, requested_by=viewer.principal.id, redact=redact)
        wake: asyncio.Event | None = getattr(state, "export_wakeup", None)
        # As the API does: this process's worker starts once the job is committed.
        return Redirect(
            f"/console/exports/{job.id}",
            status_code=303,
            background=BackgroundTask(wake.set) if wake is not None else None,
        )

    @get("/{job_id:uuid}")
    async def show(
        self, job_id: FromPath[UUID], db: Db, viewer: Viewer, request: Request[Any, Any, Any]
    ) -> Template:
        require(viewer, *ROLES)
        job = await jobs.get_job(db, job_id=job_id, visible_to=viewer.principal)
        base = str(request.base_url).rstrip("/")
        signer = request.app.state.get("signer")
        return page(
            "export.html",
            viewer=viewer,
            title=f"Export {str(job.id)[:8]}",
            job=job,
            running=job.status in ("queued", "running"),
            archive=archive_name(job),
            folder=archive_folder(job),
            key_url=base + CHECKPOINT_KEY_PATH,
            verifier_key=signer.verifier_key if signer is not None else None,
        )

    @get("/{job_id:uuid}/progress")
    async def progress(self, job_id: FromPath[UUID], db: Db, viewer: Viewer) -> Progress:
        """The job's state for the page's script (JSON, same session and roles)."""
        require(viewer, *ROLES)
        job = await jobs.get_job(db, job_id=job_id, visible_to=viewer.principal)
        return _progress(job)

    @get("/{job_id:uuid}/archive")
    async def archive(self, job_id: FromPath[UUID], db: Db, viewer: Viewer, state: State) -> Stream:
        require(viewer, *ROLES)
        job = await jobs.get_job(db, job_id=job_id, visible_to=viewer.principal)
        return archive_response(job, state)


def _progress(job: ExportJob) -> Progress:
    return Progress(
        status=job.status,
        progress=job.progress,
        rows_done=job.rows_done,
        rows_total=job.rows_total,
    )
