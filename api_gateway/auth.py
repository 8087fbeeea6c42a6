"""Authentication of gateway requests: ``Authorization: Bearer <API key>``.

A route declares the scope it needs with ``Depends(requires(scope))`` and receives the
:class:`~shared.auth.Principal` it acts for. A missing, unknown or revoked key answers
401 with ``WWW-Authenticate: Bearer`` (RFC 6750, section 3); a key without the scope
answers 403. With ``AUTH_ENABLED=false`` every request acts as tenant ``default`` with
all scopes (``taskforce gateway`` then binds loopback only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.auth import Principal, default_principal, verify_key
from shared.errors import AuthenticationError, PermissionDeniedError
from shared.settings import get_settings

bearer = HTTPBearer(auto_error=False, scheme_name="APIKey",
                    description="An API key from `taskforce keys create`.")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail,
                         headers={"WWW-Authenticate": "Bearer"})


def authenticate(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The principal of the request's bearer key (the default one when auth is off).

    Raises:
        HTTPException: 401 when the key is missing, malformed, unknown or revoked.
    """
    if not get_settings().auth_enabled:
        return default_principal()
    if credentials is None:
        raise _unauthorized("missing API key: send Authorization: Bearer <key>")
    try:
        return verify_key(credentials.credentials)
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
