"""``echo``: returns its input, optionally after a delay. For demos, tests and benchmarks.

The delay is a real sleep standing in for a tool's latency, so the output says
``"simulated": true``. It is taken in slices of at most ``SLEEP_SLICE_S`` seconds, and
the tool stops with ``ToolError("cancelled: ...")`` at the first slice that finds its
goal cancelled (``ToolContext.cancelled``), so a cancelled goal does not keep a worker
thread for the rest of the delay.
"""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel, Field, field_validator

from shared.errors import ToolError
from shared.tools.base import Tool, ToolContext

MAX_VALUE_CHARS = 65_536
"""Largest ``value`` accepted, as compact JSON text (characters)."""
MAX_DELAY_S = 600.0
"""Static bound of ``delay_s``; ``TOOL_ECHO_MAX_DELAY_S`` (default 30 s) caps it further."""
SLEEP_SLICE_S = 0.25
"""Longest sleep between two cancellation checks (seconds)."""


class EchoInput(BaseModel):
    """Arguments of ``echo``.

    Attributes:
        value: Any JSON value, returned unchanged (at most 65,536 characters as JSON).
        delay_s: Seconds to sleep first (0 to ``TOOL_ECHO_MAX_DELAY_S``, default 30).
    """

    value: Any = None
    delay_s: float = Field(default=0.0, ge=0.0, le=MAX_DELAY_S)

    @field_validator("value")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        try:
            size = len(json.dumps(value, separators=(",", ":")))
        except (TypeError, ValueError):
            raise ValueError("value must be JSON") from None
        if size > MAX_VALUE_CHARS:
            raise ValueError(f"value is {size} characters of JSON, more than {MAX_VALUE_CHARS}")
        return value


def _sleep_unless_cancelled(delay_s: float, ctx: ToolContext) -> None:
    """Sleep ``delay_s`` seconds in short slices; raise ToolError once the goal is cancelled."""
    deadline = time.monotonic() + delay_s
    while (left := deadline - time.monotonic()) > 0:
        if ctx.cancelled():
            raise ToolError("cancelled: the goal was cancelled during the delay")
        time.sleep(min(SLEEP_SLICE_S, left))


def _run(args: EchoInput, ctx: ToolContext) -> dict[str, Any]:
    from shared.settings import get_settings

    cap_s = get_settings().tool_echo_max_delay_s
    if args.delay_s > cap_s:
        raise ToolError(f"delay_s {args.delay_s:g} is above the limit of {cap_s:g} s "
                        "(TOOL_ECHO_MAX_DELAY_S)")
    if args.delay_s:
        _sleep_unless_cancelled(args.delay_s, ctx)
    return {"value": args.value, "delay_s": args.delay_s, "simulated": True}


ECHO = Tool(
    name="echo",
    description=(
        "Return a value unchanged after an optional delay (a stand-in for a slow tool). "
        "Input: {\"value\": any, \"delay_s\": number}. Output: {\"value\": any}."
    ),
    input_model=EchoInput,
    run=_run,
)
