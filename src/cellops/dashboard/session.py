"""Signing in and out: the token is checked once and a session made for it
(`store/sessions.py`): the browser's HttpOnly cookie (SameSite=Strict) holds the
session's random id, never the token, for `SESSION_TTL` at most; signing out or revoking
the token ends it. The cookie is Secure over HTTPS, and over HTTP too when TLS ends at
a proxy in front (`CELLOPS_SECURE_COOKIE=1`). A page without a valid session redirects to
the login page. Writes made with the cookie need the `X-CellOps-Request` header
(`cellops.api.auth`), which no other site can set; signing in and out need a form from
this site (`same_origin`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from cellops.api.auth import COOKIE, context
from cellops.store.tokens import Role, TokenRecord

MAX_FORM = 4096  # a login form: a token and where to go next
SESSION_TTL = 12 * 3600.0


def signed_in(request: Request) -> TokenRecord | None:
    """The valid token of the request's session, or None."""
    given = request.cookies.get(COOKIE)
    if not given:
        return None
    ctx = context(request)
    return ctx.store.session_token(given, ctx.clock())


def is_operator(token: TokenRecord) -> bool:
    return token.role.allows(Role.OPERATOR)


def to_login(request: Request) -> RedirectResponse:
    """303 to the login page, coming back here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def login_form(request: Request) -> dict[str, str]:
    """The form's fields (application/x-www-form-urlencoded, at most MAX_FORM bytes)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return {}
    fields = parse_qs(body.decode(errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def same_origin(request: Request) -> bool:
    """False for a form posted from another site: the browser says so (Sec-Fetch-Site),
    or its Origin names another host."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in {"same-origin", "none"}
    origin = request.headers.get("origin")
    return origin is None or origin.split("://", 1)[-1] == request.headers.get("host", "")


def sign_in(request: Request, token: TokenRecord, target: str) -> Response:
    ctx = context(request)
    session = ctx.store.create_session(token, ctx.clock(), SESSION_TTL)
    response = RedirectResponse(safe_next(target), status_code=303)
    response.set_cookie(
        COOKIE,
        session,
        max_age=int(SESSION_TTL),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )
    return response


def sign_out(request: Request) -> Response:
    """End the session (only for a form from this site: 403 otherwise, nothing ended)."""
    if not same_origin(request):
        return PlainTextResponse("this form was sent from another site", status_code=403)
    given = request.cookies.get(COOKIE)
    if given:
        context(request).store.end_session(given)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or context(request).secure_cookie


def viewer_of(token: TokenRecord) -> dict[str, Any]:
    """What every page shows of who is signed in."""
    return {"name": token.name, "role": str(token.role), "operator": is_operator(token)}
