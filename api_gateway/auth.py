"""Authentication of gateway requests: ``Authorization: Bearer <API key>``.

A route declares the scope it needs with ``Depends(requires(scope))`` and receives the
:class:`~shared.auth.Principal` it acts for. A missing, unknown or revoked key answers
401 with ``WWW-Authenticate: Bearer`` (RFC 6750, section 3); a key without the scope
answers 403. With ``AUTH_ENABLED=false`` every request acts as tenant ``default`` with
all scopes (``taskforce gateway`` then binds loopback only).

The web console (:mod:`api_gateway.console`) sends the same key from an HttpOnly,
``SameSite=Strict`` cookie instead of the header. A request that changes state (any
method but GET, HEAD, OPTIONS) authenticated by that cookie must also carry the header
``X-Taskforce-Console: 1``: a page on another site can make a browser send the cookie
(were it not SameSite) but cannot add a custom header without a CORS preflight, which
the gateway never grants (docs/security.md, "Web console").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.auth import Principal, default_principal, verify_key
from shared.errors import AuthenticationError, PermissionDeniedError
from shared.settings import get_settings

bearer = HTTPBearer(auto_error=False, scheme_name="APIKey",
                    description="An API key from `taskforce keys create`.")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail,
                         headers={"WWW-Authenticate": "Bearer"})


CONSOLE_COOKIE = "taskforce_key"  # the console's login cookie: the API key itself
CONSOLE_HEADER = "X-Taskforce-Console"  # required with the cookie on state changes
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The principal of the request's bearer key, or of the console's cookie (the
    default one when auth is off).

    Raises:
        HTTPException: 401 when the key is missing, malformed, unknown or revoked; 403
            for a state change authenticated by the cookie without the console header.
    """
    if not get_settings().auth_enabled:
        return default_principal()
    presented = credentials.credentials if credentials is not None else None
    if presented is None and (cookie := request.cookies.get(CONSOLE_COOKIE)):
        if request.method not in SAFE_METHODS and request.headers.get(CONSOLE_HEADER) != "1":
            raise HTTPException(status_code=403, detail=(
                f"a change made with the console's cookie needs the header {CONSOLE_HEADER}: 1"))
        presented = cookie
    if presented is None:
        raise _unauthorized("missing API key: send Authorization: Bearer <key>")
    try:
        return verify_key(presented)
    except AuthenticationError as exc:
        raise _unauthorized(exc.detail()) from None


def requires(scope: str) -> Callable[[Principal], Principal]:
    """A dependency that authenticates the request and demands ``scope`` (403 without)."""

    def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        try:
            principal.require(scope)
        except PermissionDeniedError as exc:
            raise HTTPException(status_code=403, detail=exc.detail()) from None
        return principal

    return dependency
