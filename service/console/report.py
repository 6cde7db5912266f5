"""``/report``: the public report form and the reporter's status page. No account, no
JavaScript needed.

The pages call the same domain functions as ``/v1/reports`` and decode the form into the
same ``ReportIn`` struct, under the same rate limit (one allowance per address shared with
the API) and size limit. A receipt is shown once, in the answer to the form, and never
stored in readable form. The follow-up token is always posted, never put in a URL.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import FormMultiDict, State
from litestar.response import Template

from service.api.deps import Db
from service.api.reports import check_size, public_limits
from service.console.web import PublicForm, form_cookie, form_token, page
from service.domain import reports as domain
from service.errors import RegistryError
from service.schemas.incidents import CATEGORIES, SERIOUS_KINDS, SEVERITIES, Incident
from service.schemas.reports import ReportIn, ReportUpdateIn

__all__ = ["ReportPageController"]


def _text(form: FormMultiDict, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _lines(form: FormMultiDict, name: str) -> list[str]:
    return [line.strip() for line in _text(form, name).splitlines() if line.strip()]


def report_from_form(form: FormMultiDict) -> dict[str, Any]:
    """The form's fields as the JSON body ``POST /v1/reports`` would take."""
    body: dict[str, Any] = {
        "title": _text(form, "title"),
        "category": _text(form, "category"),
        "severity": _text(form, "severity") or "medium",
        "description": _text(form, "description"),
        "models": _lines(form, "models"),
        "evidence_urls": _lines(form, "evidence_urls"),
        "serious": form.get("serious") == "yes",
        "death": form.get("death") == "yes",
        "widespread": form.get("widespread") == "yes",
    }
    if kind := _text(form, "serious_kind"):
        body["serious_kind"] = kind
    if occurred := _text(form, "occurred_on"):
        body["occurred_at"] = f"{occurred}T00:00:00Z"
    contact = {
        key: value for key in ("name", "email", "phone") if (value := _text(form, f"contact_{key}"))
    }
    if contact:
        body["contact"] = contact
    return body


def _form_page(
    request: Request[Any, Any, Any],
    *,
    values: dict[str, str],
    error: str | None = None,
    status_code: int = 200,
) -> Template:
    token = form_token(request)
    return page(
        "report_form.html",
        viewer=None,
        title="Report an incident",
        csrf_token=token,
        values=values,
        error=error,
        categories=CATEGORIES,
        severities=SEVERITIES,
        serious_kinds=SERIOUS_KINDS,
        status_code=status_code,
        cookies=[form_cookie(request, token, "/report")],
    )


def _lookup_page(
    request: Request[Any, Any, Any], *, error: str | None = None, status_code: int = 200
) -> Template:
    token = form_token(request)
    return page(
        "report_lookup.html",
        viewer=None,
        title="Follow up on a report",
        csrf_token=token,
        error=error,
        status_code=status_code,
        cookies=[form_cookie(request, token, "/report")],
    )


async def _status_page(
    request: Request[Any, Any, Any],
    db: Db,
    *,
    incident: Incident,
    token: str,
    added: bool = False,
    error: str | None = None,
    status_code: int = 200,
) -> Template:
    status = await domain.report_status(db, incident=incident)
    csrf = form_token(request)
    return page(
        "report_status.html",
        viewer=None,
        title=f"Report {status.ref}",
        status=status,
        followup_token=token,
        csrf_token=csrf,
        added=added,
        error=error,
        status_code=status_code,
        cookies=[form_cookie(request, csrf, "/report")],
    )


def _why(exc: msgspec.ValidationError | RegistryError) -> str:
    text = str(exc)
    return text.replace("`$.", "`").replace("`$`", "the report")


class ReportPageController(Controller):
    path = "/report"

    @get("/")
    async def form(self, request: Request[Any, Any, Any]) -> Template:
        return _form_page(request, values={})

    @post("/", guards=[public_limits], status_code=201)
    async def submit(
        self, request: Request[Any, Any, Any], db: Db, state: State, public_form: PublicForm
    ) -> Template:
        await check_size(request, state)
        values = {k: v for k, v in public_form.items() if isinstance(v, str) and k != "csrf_token"}
        try:
            data = msgspec.convert(report_from_form(public_form), ReportIn)
            # A savepoint: a refused report leaves nothing behind in this transaction.
            async with db.transaction():
                receipt = await domain.submit_report(db, data=data)
        except msgspec.ValidationError as exc:
            return _form_page(request, values=values, error=_why(exc), status_code=400)
        except RegistryError as exc:
            return _form_page(request, values=values, error=exc.detail, status_code=exc.status)
        return page(
            "report_receipt.html",
            viewer=None,
            title="Report received",
            receipt=receipt,
            status_code=201,
        )

    @get("/status")
    async def lookup(self, request: Request[Any, Any, Any]) -> Template:
        return _lookup_page(request)

    @post("/status", guards=[public_limits], status_code=200)
    async def status(
        self, request: Request[Any, Any, Any], db: Db, public_form: PublicForm
    ) -> Template:
        ref, token = _text(public_form, "ref"), _text(public_form, "followup_token")
        if not ref or not token or len(ref) > 40 or len(token) > 100:
            return _lookup_page(
                request, error="Enter both the reference and the token.", status_code=400
            )
        try:
            incident = await domain.open_report(db, ref=ref, token=token)
        except RegistryError as exc:
            return _lookup_page(request, error=exc.detail, status_code=exc.status)
        return await _status_page(request, db, incident=incident, token=token)

    @post("/status/updates", guards=[public_limits], status_code=200)
    async def add(
        self, request: Request[Any, Any, Any], db: Db, state: State, public_form: PublicForm
    ) -> Template:
        await check_size(request, state)
        ref, token = _text(public_form, "ref"), _text(public_form, "followup_token")
        if not ref or not token or len(ref) > 40 or len(token) > 100:
            return _lookup_page(
                request, error="Enter both the reference and the token.", status_code=400
            )
        try:
            incident = await domain.open_report(db, ref=ref, token=token)
        except RegistryError as exc:
            return _lookup_page(request, error=exc.detail, status_code=exc.status)
        try:
            update = msgspec.convert(
                {
                    "body": _text(public_form, "body"),
                    "evidence_urls": _lines(public_form, "evidence_urls"),
                },
                ReportUpdateIn,
            )
            async with db.transaction():
                await domain.add_reporter_update(
                    db,
                    incident=incident,
                    body=update.body,
                    evidence_urls=list(update.evidence_urls),
                )
        except msgspec.ValidationError as exc:
            return await _status_page(
                request, db, incident=incident, token=token, error=_why(exc), status_code=400
            )
        return await _status_page(request, db, incident=incident, token=token, added=True)
