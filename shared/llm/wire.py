"""Conventions between Taskforce's real providers and its wire-level simulator.

The payload block
-----------------
Every provider appends one final block to the user message::

    <taskforce-payload>{"purpose": "plan", "payload": {...}}</taskforce-payload>

It carries the request's ``purpose`` and its structured ``payload`` (the same content
the prompt states in prose) as JSON, so that ``taskforce sim-llm`` answers exactly as
the in-process ``sim`` provider does, and a real model gets the data in a
machine-readable form as well. ``<`` is written as ``\\u003c`` inside the JSON, so text
in the payload can never close the block early; the JSON still decodes to the same
value. The block costs input tokens on real models (about as many as the prose it
repeats).

Simulated marks
---------------
The simulator marks its responses so that providers report ``simulated=True``:
OpenAI-format responses carry ``system_fingerprint == SIM_FINGERPRINT``, Anthropic-format
responses an ``id`` starting with ``SIM_MESSAGE_ID_PREFIX``. The answer JSON also has
``"simulated": true`` and its texts start with ``[simulated]``.
"""

from __future__ import annotations

import json
from typing import Any

PAYLOAD_OPEN = "<taskforce-payload>"
PAYLOAD_CLOSE = "</taskforce-payload>"
SIM_FINGERPRINT = "taskforce-sim"
SIM_MESSAGE_ID_PREFIX = "msg_sim_"


def with_payload_block(prompt: str, *, purpose: str, payload: dict[str, Any]) -> str:
    """Return ``prompt`` followed by the payload block (see the module docstring)."""
    body = json.dumps({"purpose": purpose, "payload": payload}, sort_keys=True, default=str)
    body = body.replace("<", "\\u003c")
    return f"{prompt}\n\n{PAYLOAD_OPEN}{body}{PAYLOAD_CLOSE}"


def read_payload_block(text: str) -> tuple[str, dict[str, Any]] | None:
    """Find the last payload block in ``text``.

    Returns:
        ``(purpose, payload)``, or None when ``text`` has no well-formed block.
    """
    start = text.rfind(PAYLOAD_OPEN)
    if start < 0:
        return None
    end = text.find(PAYLOAD_CLOSE, start)
    if end < 0:
        return None
    try:
        block = json.loads(text[start + len(PAYLOAD_OPEN): end])
    except json.JSONDecodeError:
        return None
    if not isinstance(block, dict) or not isinstance(block.get("payload"), dict):
        return None
    return str(block.get("purpose", "")), block["payload"]
