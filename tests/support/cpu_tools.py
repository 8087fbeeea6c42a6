"""An ``isolated`` tool that computes until it is stopped, for the isolation tests.

It is not registered with any worker; the tests call it through :meth:`Tool.call`.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, Field

from shared.errors import ToolError
from shared.tools.base import Tool, ToolContext


class SpinInput(BaseModel):
    """Arguments of ``spin``: loop forever (``forever``), else return the child's pid."""

    forever: bool = False
    fail: str | None = Field(default=None, max_length=100)


def _spin(args: SpinInput, ctx: ToolContext) -> dict[str, Any]:
    if args.fail:
        raise ToolError(args.fail)
    count = 0
    while args.forever:  # pure-Python work: holds the GIL of whatever process runs it
        count += 1
    return {"pid": os.getpid(), "goal": ctx.goal_id}


SPIN = Tool(name="spin", description="Loop forever in Python (tests only).",
            input_model=SpinInput, run=_spin, isolated=True)


TOOLS = [SPIN]
"""For a worker started with ``TOOL_MODULES=...,tests.support.cpu_tools``."""
