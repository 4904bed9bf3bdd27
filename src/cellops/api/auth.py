"""Bearer tokens: every route but /healthz and the webhook needs one; writes need the
operator role. 401 without a valid token, 403 with a token of too small a role. The token
itself is never logged or echoed: errors name only the role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cellops.api.context import ApiContext
from cellops.store.tokens import Role, TokenRecord

COOKIE = "cellops_session"  # the dashboard's session, for requests a browser makes itself
CSRF = "X-CellOps-Request"  # what the dashboard's script sends with a write
bearer = HTTPBearer(auto_error=False, description="a token from `cellops token create`")


def context(request: Request) -> ApiContext:
    found: ApiContext = request.app.state.cellops
    return found


def require(role: Role) -> Callable[..., Awaitable[TokenRecord]]:
    async def check(  # on the event loop: one indexed read, no worker thread's hop
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> TokenRecord:
        given = credentials.credentials if credentials is not None else None
        session = None if given else request.cookies.get(COOKIE)
        if session:  # the dashboard's browser
            _from_this_site(request)
        elif not given:
            raise HTTPException(
                401,
                "a bearer token is needed: `cellops token create --role viewer` makes one",
                headers={"WWW-Authenticate": "Bearer"},
            )
        ctx = context(request)
        record = (
            ctx.quick.session_token(session, ctx.clock())
            if session
            else ctx.quick.authenticate(given or "", ctx.clock())
        )
        if record is None:
            raise HTTPException(
                401,
                "the dashboard's session has ended: sign in again"
                if session
                else "unknown, revoked or expired token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if not record.role.allows(role):
            raise HTTPException(
                403, f"this needs the {role} role; token {record.name!r} is a {record.role}"
            )
        request.state.token = record
        return record

    return check


def _from_this_site(request: Request) -> None:
    """A write made with the dashboard's cookie carries a header that only this site's
    own script sends (a cross-site form cannot set it): CSRF is refused."""
    if request.method not in {"GET", "HEAD", "OPTIONS"} and not request.headers.get(CSRF):
        raise HTTPException(
            403, f"a write with the dashboard's cookie needs the {CSRF} header (from its pages)"
        )


viewer = Depends(require(Role.VIEWER))
operator = Depends(require(Role.OPERATOR))
