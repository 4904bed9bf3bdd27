"""Signing in and out: the token is checked once, then kept in an HttpOnly cookie
(SameSite=Strict, Secure over HTTPS) that every page and the API read. A page without a
valid cookie redirects to the login page. Writes made with the cookie need the
`X-CellOps-Request` header (`cellops.api.auth`), which no other site can set."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from cellops.api.auth import COOKIE, context
from cellops.store.tokens import Role, TokenRecord

MAX_FORM = 4096  # a login form: a token and where to go next


def signed_in(request: Request) -> TokenRecord | None:
    """The valid token in the request's cookie, or None."""
    given = request.cookies.get(COOKIE)
    if not given:
        return None
    ctx = context(request)
    return ctx.store.authenticate(given, ctx.clock())


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


def sign_in(request: Request, token: str, target: str) -> Response:
    response = RedirectResponse(safe_next(target), status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


def sign_out() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def viewer_of(token: TokenRecord) -> dict[str, Any]:
    """What every page shows of who is signed in."""
    return {"name": token.name, "role": str(token.role), "operator": is_operator(token)}
