"""Who a console page acts for, the login that sets the key cookie, and the headers every
console page carries.

The login page takes an API key, checks it, and stores it in a cookie
(``taskforce_key``) that is HttpOnly (no script reads it), ``SameSite=Strict`` (no other
site's page makes the browser send it), ``Secure`` when the console is reached over
HTTPS, and expires after ``CONSOLE_SESSION_HOURS``. The API routes accept that cookie
through the same dependency as a bearer key (:func:`api_gateway.auth.authenticate`),
demanding the header ``X-Taskforce-Console: 1`` on anything that changes state. The
login and logout forms check ``Origin`` (when the browser sends it) against the
console's own.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from fastapi.responses import Response

from api_gateway.auth import CONSOLE_COOKIE
from shared.auth import Principal, default_principal, verify_key
from shared.errors import AuthenticationError
from shared.settings import get_settings

MAX_FORM_BYTES = 4_096  # largest login form read (bytes)

# Scripts and styles from the gateway only (no inline script, no CDN); the graph
# library draws on a canvas; the event stream and fetches go to the same origin.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
       "object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def principal_of(request: Request) -> Principal | None:
    """The principal of the request's bearer key or key cookie; None without a valid
    one (the default principal when authentication is off)."""
    if not get_settings().auth_enabled:
        return default_principal()
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    presented = token.strip() if scheme.lower() == "bearer" else None
    presented = presented or request.cookies.get(CONSOLE_COOKIE)
    if not presented:
        return None
    try:
        return verify_key(presented)
    except AuthenticationError:
        return None


def same_origin(request: Request) -> bool:
    """False when the browser says the form came from another origin."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent by every browser on a same-origin POST
    if origin == "null":
        return False
    own = urlsplit(str(request.base_url))
    sent = urlsplit(origin)
    return (sent.scheme, sent.netloc) == (own.scheme, own.netloc)


async def form_field(request: Request, name: str) -> str | None:
    """One field of a small urlencoded form body (None if absent or the body too big)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    values = parse_qs(body.decode("utf-8", errors="replace")).get(name)
    return values[0].strip() if values else None


def set_key_cookie(response: Response, request: Request, key: str) -> None:
    """Store the key in the console's cookie (HttpOnly, SameSite=Strict, Secure over
    HTTPS)."""
    response.set_cookie(
        CONSOLE_COOKIE, key, max_age=int(get_settings().console_session_hours * 3600),
        httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/")


def clear_key_cookie(response: Response) -> None:
    """Forget the key."""
    response.delete_cookie(CONSOLE_COOKIE, path="/", httponly=True, samesite="strict")


def check_login(key: str | None) -> Principal | None:
    """The principal of a key typed into the login form, or None."""
    if not key:
        return None
    try:
        return verify_key(key)
    except AuthenticationError:
        return None
