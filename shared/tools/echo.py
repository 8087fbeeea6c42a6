"""``echo``: returns its input, optionally after a delay. For demos, tests and benchmarks.

The delay is a real ``time.sleep`` standing in for a tool's latency, so the output says
``"simulated": true``.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

from shared.tools.base import Tool, ToolContext


class EchoInput(BaseModel):
    """Arguments of ``echo``.

    Attributes:
        value: Any JSON value, returned unchanged.
        delay_s: Seconds to sleep first (0 to 600).
    """

    value: Any = None
    delay_s: float = Field(default=0.0, ge=0.0, le=600.0)


def _run(args: EchoInput, ctx: ToolContext) -> dict[str, Any]:
    if args.delay_s:
        time.sleep(args.delay_s)
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
