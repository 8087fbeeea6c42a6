"""Tools the test suite adds to its workers (through ``TOOL_MODULES``).

``tally`` records every execution in a Redis list, a side-effect log outside Postgres, so
a test can count how many times a step's tool really ran.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from pydantic import BaseModel, Field

from shared.config import get_settings
from shared.tools.base import Tool, ToolContext

TALLY_PREFIX = "taskforce:test:tally:"


def tally_key(goal_id: str, step_id: int) -> str:
    """Redis list that logs the executions of one step."""
    return f"{TALLY_PREFIX}{goal_id}:{step_id}"


class TallyInput(BaseModel):
    """Arguments of ``tally``: a value to return and seconds to take."""

    value: Any = None
    delay_s: float = Field(default=0.0, ge=0.0, le=60.0)


def _run(args: TallyInput, ctx: ToolContext) -> dict[str, Any]:
    client = redis.Redis.from_url(get_settings().redis_url or "")
    try:
        client.rpush(tally_key(ctx.goal_id, ctx.step_id), f"{os.getpid()}:{ctx.attempt}")
    finally:
        client.close()
    if args.delay_s:
        time.sleep(args.delay_s)
    return {"value": args.value, "pid": os.getpid()}


TOOLS = [
    Tool(
        name="tally",
        description="Test tool: logs each execution to Redis, returns its value.",
        input_model=TallyInput,
        run=_run,
    )
]
