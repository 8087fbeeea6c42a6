"""``POST /v1/embeddings`` of the wire simulator, in OpenAI's format.

Answers with the ``sim`` model's deterministic vectors (:func:`shared.llm.embeddings.sim_vector`)
of ``dimensions`` numbers (default :data:`DEFAULT_DIMENSIONS`), with ``"simulated": true``
in the body so that the provider marks them simulated. Accepts ``input`` as a string or a
list of strings (at most :data:`MAX_INPUTS`); ``encoding_format`` must be ``float`` (the
SDK's ``base64`` default is refused with a 400 the SDK does not send when told
``float``). Authentication and counting as for completions.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from shared.llm.embeddings import sim_vector
from shared.llm.providers.sim.provider import simulated_tokens

DEFAULT_DIMENSIONS = 256
MAX_INPUTS = 2_048
MAX_DIMENSIONS = 4_096


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": f"{message} (simulated)",
                                   "type": "invalid_request_error"}}, status_code=status)


async def embeddings(request: Request) -> JSONResponse:
    """Embed ``input`` with the ``sim`` model (see the module docstring)."""
    sim: Any = request.app.state.simulator
    sim.count("requests")
    sim.count("route:embeddings")
    if not request.headers.get("authorization", "").lower().startswith("bearer "):
        return _error(401, "missing API key")
    try:
        body = json.loads(await request.body())
        texts = body["input"]
        texts = [texts] if isinstance(texts, str) else list(texts)
        dimensions = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
        model = str(body["model"])
    except (ValueError, KeyError, TypeError):
        return _error(400, "the body needs model and input")
    if not texts or len(texts) > MAX_INPUTS or not all(isinstance(t, str) for t in texts):
        return _error(400, f"input must be 1 to {MAX_INPUTS} strings")
    if not 1 <= dimensions <= MAX_DIMENSIONS:
        return _error(400, f"dimensions must be 1 to {MAX_DIMENSIONS}")
    if body.get("encoding_format", "float") != "float":
        return _error(400, "only encoding_format=float is simulated")
    tokens = sum(simulated_tokens(t) for t in texts)
    sim.count("input_tokens", tokens)
    sim.count("status:200")
    return JSONResponse({
        "object": "list", "model": model, "simulated": True,
        "data": [{"object": "embedding", "index": i, "embedding": sim_vector(t, dimensions)}
                 for i, t in enumerate(texts)],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
