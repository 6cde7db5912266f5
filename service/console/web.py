"""What every console page shares: the session, form tokens, headers, errors and rendering.

* **Session**: the ``rr_console`` cookie (HttpOnly, SameSite=Strict, Secure over HTTPS,
  path ``/console``) names a server-side session (``service.domain.console_sessions``).
  A page that needs one takes the ``viewer`` dependency; without a live session the
  browser is sent to the sign-in page.
* **Form tokens (CSRF)**: every form posts ``csrf_token``. Signed-in forms carry their
  session's token; the sign-in and public report forms, which have no session, carry a
  random token that must equal the ``rr_form`` cookie (SameSite=Strict, double submit).
  A POST handler takes ``form`` (signed in) or ``public_form``: both refuse a missing or
  wrong token with 403 before anything is read or written.
* **Headers**: a strict Content-Security-Policy (scripts, styles and images from the
  service itself only; no inline script or style), no framing, no referrer, no caching.
* **Errors**: a browser gets an HTML page with the status; any other client gets the same
  RFC 9457 problem as the API would send.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Request, Response
from litestar.datastructures import Cookie, FormMultiDict
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from service.api.deps import Db
from service.api.problems import exception_handlers as problem_handlers
from service.domain.console_sessions import ConsoleSession, find_session
from service.errors import InvalidInput, RegistryError
from service.logs import request_id
from service.schemas.keys import Role
from service.settings import Settings

__all__ = [
    "FORM_COOKIE",
    "SESSION_COOKIE",
    "Form",
    "PublicForm",
    "Viewer",
    "console_dependencies",
    "console_exception_handlers",
    "form_body",
    "page",
    "require",
    "security_headers",
    "template_config",
    "template_environment",
]

HERE = Path(__file__).parent
SESSION_COOKIE = "rr_console"
FORM_COOKIE = "rr_form"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class NotSignedIn(Exception):
    """No live session: the browser goes to the sign-in page and comes back afterwards."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class CsrfRefused(PermissionDeniedException):
    def __init__(self) -> None:
        super().__init__(
            "this form was not sent from the page the registry served (its form token is "
            "missing or wrong); reload the page and try again"
        )


def idle_timeout(request: Request[Any, Any, Any]) -> timedelta:
    settings: Settings = request.app.state.settings
    return timedelta(minutes=settings.console_idle_minutes)


def is_https(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


def session_cookie(request: Request[Any, Any, Any], value: str, *, max_age: int | None) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        max_age=max_age,
    )


def form_cookie(request: Request[Any, Any, Any], value: str, path: str) -> Cookie:
    return Cookie(
        key=FORM_COOKIE,
        value=value,
        path=path,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def form_token(request: Request[Any, Any, Any]) -> str:
    """The browser's form token for pages without a session: kept while it has one, so
    two open tabs do not spoil each other's forms."""
    current = request.cookies.get(FORM_COOKIE, "")
    if 32 <= len(current) <= 64 and current.replace("-", "").replace("_", "").isalnum():
        return current
    return secrets.token_urlsafe(32)


def safe_back_to(target: str | None) -> str:
    """Only a console path may be returned to after sign-in (never another site)."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console"


#: The signed-in person's session.
Viewer = NamedDependency[ConsoleSession]


async def provide_viewer(request: Request[Any, Any, Any], db: Db) -> ConsoleSession:
    return await find_viewer(request, db)


async def find_viewer(request: Request[Any, Any, Any], db: asyncpg.Connection) -> ConsoleSession:
    """The signed-in person, for a page that takes its connection for part of its work only
    (``provide_viewer`` holds the request's through the whole page)."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    session = await find_session(db, cookie=cookie, idle=idle_timeout(request))
    if session is None:
        back_to = request.url.path
        if request.method == "GET" and request.url.query:
            back_to += "?" + request.url.query
        raise NotSignedIn(back_to)
    return session


def _token_matches(sent: object, expected: str | None) -> bool:
    return (
        isinstance(sent, str)
        and bool(expected)
        and hmac.compare_digest(sent.encode(), (expected or "").encode())
    )


async def provide_form(request: Request[Any, Any, Any], viewer: Viewer) -> FormMultiDict:
    """The posted form of a signed-in page, once its session's form token is checked."""
    form = await request.form()
    if not _token_matches(form.get("csrf_token"), viewer.csrf_token):
        raise CsrfRefused()
    return form


async def provide_public_form(request: Request[Any, Any, Any]) -> FormMultiDict:
    """The posted form of a page without a session: its token must equal the form cookie."""
    form = await request.form()
    if not _token_matches(form.get("csrf_token"), request.cookies.get(FORM_COOKIE)):
        raise CsrfRefused()
    return form


#: A signed-in page's posted form, its token checked.
Form = NamedDependency[FormMultiDict]
#: A public page's posted form, its token checked.
PublicForm = NamedDependency[FormMultiDict]

console_dependencies = {
    "viewer": Provide(provide_viewer),
    "form": Provide(provide_form),
    "public_form": Provide(provide_public_form),
}


def require(viewer: ConsoleSession, *roles: Role) -> None:
    """The same role rule as the API's guards: a page is never wider than its route."""
    if viewer.principal.role not in roles:
        raise PermissionDeniedException(f"this page needs one of the roles: {', '.join(roles)}")


#: The console's navigation per role: only pages the role may read.
NAV: dict[str, list[tuple[str, str]]] = {
    "admin": [
        ("/console/incidents", "Triage queue"),
        ("/console/compliance", "Compliance"),
        ("/console/decisions", "Decisions"),
        ("/console/models", "Models"),
        ("/console/hostings", "Hostings"),
        ("/console/platforms", "Platforms"),
        ("/console/exports", "Exports"),
        ("/console/audits", "Audits"),
    ],
    "platform": [
        ("/console/platform", "My platform"),
        ("/console/incidents", "Incidents"),
        ("/console/models", "Models"),
        ("/console/hostings", "Hostings"),
    ],
    "auditor": [
        ("/console/audits", "Audits"),
        ("/console/incidents", "Incidents"),
        ("/console/models", "Models"),
        ("/console/hostings", "Hostings"),
        ("/console/platforms", "Platforms"),
    ],
    "regulator": [
        ("/console/compliance", "Compliance"),
        ("/console/incidents", "Incidents"),
        ("/console/models", "Models"),
        ("/console/hostings", "Hostings"),
        ("/console/platforms", "Platforms"),
        ("/console/exports", "Exports"),
        ("/console/audits", "Audits"),
    ],
}


def page(
    name: str,
    *,
    viewer: ConsoleSession | None,
    title: str,
    status_code: int = 200,
    cookies: list[Cookie] | None = None,
    **context: Any,
) -> Template:
    nav = NAV.get(viewer.principal.role, []) if viewer is not None else []
    return Template(
        template_name=name,
        context={"viewer": viewer, "title": title, "nav": nav, **context},
        status_code=status_code,
        cookies=cookies,
    )


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _error_page(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    response = page(
        "error.html",
        viewer=None,
        title=f"Error {status}",
        status_code=status,
        detail=detail,
        request_id=request_id.get(),
    )
    # Also outside the console's router (an unknown address): the same protective headers.
    response.headers.update(PAGE_HEADERS)
    response.headers.update(headers or {})
    return response


def _registry_error(request: Request[Any, Any, Any], exc: RegistryError) -> Response[Any]:
    if not _wants_html(request):
        return problem_handlers[RegistryError](request, exc)
    return _error_page(request, exc.status, exc.detail)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if not _wants_html(request):
        return problem_handlers[HTTPException](request, exc)
    if exc.status_code >= 500:
        # Logged as the API logs it; the page says no more than the problem would.
        problem = problem_handlers[HTTPException](request, exc)
        return _error_page(request, problem.status_code or 500, _detail_of(problem))
    return _error_page(request, exc.status_code, exc.detail, dict(exc.headers or {}))


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """An error no page foresaw: the API's mapping decides the status and logs it (never the
    exception's text); a browser gets a page naming the request id to quote."""
    problem = problem_handlers[Exception](request, exc)
    if not _wants_html(request):
        return problem
    retry = problem.headers.get("retry-after")
    return _error_page(
        request,
        problem.status_code or 500,
        _detail_of(problem),
        {"Retry-After": retry} if retry else None,
    )


def _detail_of(problem: Response[Any]) -> str:
    body = msgspec.json.decode(problem.content) if isinstance(problem.content, bytes) else {}
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else "an internal error occurred; it has been logged"


def _not_signed_in(request: Request[Any, Any, Any], exc: NotSignedIn) -> Response[Any]:
    return Redirect(f"/console/sign-in?next={quote(exc.back_to, safe='')}", status_code=303)


console_exception_handlers: Any = {
    NotSignedIn: _not_signed_in,
    RegistryError: _registry_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}

#: Where a browser asks for an address no route has: under these prefixes it gets a page.
PAGE_PREFIXES = ("/console", "/report")


def app_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """The application's handler for HTTP errors raised before any router (an unknown address,
    a method not allowed): a page under the console's prefixes, a problem elsewhere."""
    path = request.url.path
    if any(path == prefix or path.startswith(prefix + "/") for prefix in PAGE_PREFIXES):
        return _http_error(request, exc)
    return problem_handlers[HTTPException](request, exc)


PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


async def security_headers(response: Response[Any]) -> Response[Any]:
    response.headers.update(PAGE_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float | None) -> str:
    """Remaining time on a clock: ``3 d 4 h left``, or ``overdue by 5 h``."""
    if seconds is None:
        return "—"
    left = abs(int(seconds))
    days, rest = divmod(left, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    text = f"{days} d {hours} h" if days else f"{hours} h {minutes} min"
    return f"{text} left" if seconds >= 0 else f"overdue by {text}"


def _label(value: str | None) -> str:
    return "—" if value is None else value.replace("_", " ")


def template_environment() -> Environment:
    """The console's Jinja environment: its templates and filters."""
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    environment.filters["duration"] = _duration
    environment.filters["label"] = _label
    return environment


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(template_environment()))


def form_body(data: dict[str, Any], kind: type[Any]) -> Any:
    """A form's fields as the API's request body ``kind``: the same checks apply to both."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from exc
