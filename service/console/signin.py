"""Signing in to the console with an API key, and signing out."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from service.api.deps import Db
from service.console.web import (
    SESSION_COOKIE,
    Form,
    PublicForm,
    Viewer,
    form_cookie,
    form_token,
    idle_timeout,
    page,
    safe_back_to,
    session_cookie,
)
from service.domain.console_sessions import end_session, open_session

__all__ = ["SignInController"]


def _sign_in_page(
    request: Request[Any, Any, Any], *, back_to: str, error: str | None, status_code: int = 200
) -> Template:
    token = form_token(request)
    return page(
        "sign_in.html",
        viewer=None,
        title="Sign in",
        csrf_token=token,
        back_to=back_to,
        error=error,
        status_code=status_code,
        cookies=[form_cookie(request, token, "/console/sign-in")],
    )


class SignInController(Controller):
    path = "/console"

    @get("/", name="console:home")
    async def home(self, viewer: Viewer) -> Template:
        return page("home.html", viewer=viewer, title="Console")

    @get("/sign-in")
    async def sign_in_form(
        self,
        request: Request[Any, Any, Any],
        back_to: Annotated[str, QueryParameter(name="next", max_length=2000)] = "",
    ) -> Template:
        return _sign_in_page(request, back_to=safe_back_to(back_to), error=None)

    @post("/sign-in", status_code=303)
    async def sign_in(
        self, request: Request[Any, Any, Any], db: Db, public_form: PublicForm
    ) -> Redirect | Template:
        back_to = safe_back_to(str(public_form.get("next", "")))
        api_key = public_form.get("api_key", "")
        opened = None
        if isinstance(api_key, str) and 0 < len(api_key) <= 200:
            opened = await open_session(db, api_key=api_key, idle=idle_timeout(request))
        if opened is None:
            return _sign_in_page(
                request,
                back_to=back_to,
                error="That key is not valid: it is unknown, mistyped or revoked.",
                status_code=401,
            )
        response = Redirect(back_to, status_code=303)
        response.set_cookie(session_cookie(request, opened.cookie, max_age=None))
        return response

    @post("/sign-out", status_code=303)
    async def sign_out(
        self, request: Request[Any, Any, Any], db: Db, viewer: Viewer, form: Form
    ) -> Redirect:
        await end_session(db, cookie=request.cookies.get(SESSION_COOKIE, ""))
        response = Redirect("/console/sign-in", status_code=303)
        response.set_cookie(session_cookie(request, "", max_age=0))
        return response
