"""Request limits checked before any parsing work: body size (413), then JSON shape (422).

:class:`RequestLimits` is a small ASGI middleware in front of the whole application. It
refuses a body whose ``Content-Length`` is over ``MAX_REQUEST_BYTES`` without reading it,
counts the bytes of a streamed (chunked) body and stops at the limit, and runs
:func:`shared.domain.limits.check_json_document` on a JSON body (depth, NaN and
infinities, NUL characters, lone surrogates) before FastAPI and pydantic parse it. The
body it read is then handed on to the application unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.batches import JSONL_TYPES
from shared.domain.limits import InputLimitError, check_json_document
from shared.settings import get_settings


class RequestLimits:
    """ASGI middleware: 413 for a body over ``MAX_REQUEST_BYTES``, 422 for JSON over
    ``MAX_JSON_DEPTH`` or holding what JSON columns cannot store.

    Args:
        app: The application behind it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        limit = settings.max_request_bytes
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await _answer(send, 400, "invalid Content-Length")
                return
            if too_big:
                await _answer(send, 413, f"request body larger than {limit} bytes")
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, 413, f"request body larger than {limit} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"").lower()
        if body and b"json" in content_type:
            # JSON Lines (a batch): each line is a document of its own.
            media = content_type.split(b";")[0].strip().decode("latin-1")
            lines = media in JSONL_TYPES
            documents = body.split(b"\n") if lines else [body]
            try:
                for number, document in enumerate(documents, 1):
                    if document.strip():
                        check_json_document(document, settings.max_json_depth,
                                            where=f"line {number}" if lines else "body")
            except InputLimitError as exc:
                await _answer(send, 422, [{"loc": ["body"], "msg": str(exc),
                                           "type": "input_limit"}])
                return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, status: int, detail: Any) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
