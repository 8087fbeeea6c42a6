"""The error answers of the gateway, declared in its OpenAPI schema.

Every error body is ``{"detail": ...}``: a string, or for a request that does not fit
its schema (422) a list of ``{"loc", "msg", "type"}`` (never the input sent). Routes
declare the codes they may answer with :func:`responses`; the schemathesis fuzz
(tests/test_api_fuzz.py) checks that every answer is declared and fits.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """An error answer: what went wrong, in a sentence."""

    detail: str


class ValidationIssue(BaseModel):
    """One reason a request was refused: where (``loc``), what and its kind."""

    loc: list[str | int]
    msg: str
    type: str


class InvalidRequest(BaseModel):
    """A 422: the reason as a sentence, or one issue per field that does not fit."""

    detail: str | list[ValidationIssue]


_MEANING: dict[int, str] = {
    400: "Malformed request framing (an invalid Content-Length)",
    401: "Missing, unknown or revoked API key (header WWW-Authenticate: Bearer)",
    403: "The API key lacks the scope this needs",
    404: "No such goal, step or memory item for this tenant",
    409: "The goal, step or memory item is not in a state that allows this",
    413: "Request body over MAX_REQUEST_BYTES",
    422: "The request does not fit its schema or the input limits",
    429: "Over a quota; retry after the Retry-After header (seconds)",
    503: "Postgres or Redis out of reach; retry after the Retry-After header (seconds)",
}

COMMON = (400, 401, 403, 413, 422, 503)
"""What any ``/v1`` route may answer besides its success."""


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: :data:`COMMON` plus ``codes``, each with its model."""
    return {code: {"model": InvalidRequest if code == 422 else ErrorBody,
                   "description": _MEANING[code]}
            for code in sorted(set(COMMON) | set(codes))}
