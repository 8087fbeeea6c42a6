"""Tools the test suite adds to its workers (through ``TOOL_MODULES``).

``misbehave`` fails the way a careless tool might: it raises a database error or a
plain bug, or returns a value JSON has no form for (NaN, a complex number, an object,
a NUL character), or one Postgres refuses to store (a lone surrogate).

``tally`` appends one line per execution to a side-effect log, a plain file named by
``TASKFORCE_TEST_TALLY_LOG``, outside Redis and Postgres (the fault suite restarts
both), so a test can count how many times each step's tool really ran and under which
claim attempt.

``deploy`` stands for a risky tool (``requires_approval``): its step waits for a
person's approval; once approved it logs its execution like ``tally`` and returns its
value.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError

from shared.tools.base import Tool, ToolContext

TALLY_LOG_ENV = "TASKFORCE_TEST_TALLY_LOG"


class TallyInput(BaseModel):
    """Arguments of ``tally``: a value to return and seconds to take."""

    value: Any = None
    delay_s: float = Field(default=0.0, ge=0.0, le=60.0)


def _run(args: TallyInput, ctx: ToolContext) -> dict[str, Any]:
    line = json.dumps({"goal": ctx.goal_id, "step": ctx.step_id, "attempt": ctx.attempt,
                       "pid": os.getpid()})
    # One write of a short line with O_APPEND: lines from concurrent writers never mix.
    fd = os.open(os.environ[TALLY_LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
    if args.delay_s:
        time.sleep(args.delay_s)
    return {"value": args.value, "pid": os.getpid()}


def read_tally(path: Path | None = None) -> list[dict[str, Any]]:
    """Every logged execution: ``{"goal", "step", "attempt", "pid"}``."""
    path = path or Path(os.environ[TALLY_LOG_ENV])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def executions(goal_id: str, path: Path | None = None) -> Counter:
    """Executions per step number of one goal."""
    return Counter(e["step"] for e in read_tally(path) if e["goal"] == goal_id)


class MisbehaveInput(BaseModel):
    """Arguments of ``misbehave``: how to fail."""

    mode: Literal["db_error", "bug", "nan", "complex", "object", "nul", "surrogate"]


def _misbehave(args: MisbehaveInput, ctx: ToolContext) -> dict[str, Any]:
    if args.mode == "db_error":
        # What SQLAlchemy raises when the server drops the connection mid-query.
        raise OperationalError("SELECT 1", {}, ConnectionError(
            "server closed the connection unexpectedly\n\tThis probably means ..."))
    if args.mode == "bug":
        return {"value": {}["missing"]}
    values = {"nan": float("nan"), "complex": (-8) ** 0.5, "object": object(),
              "nul": "a\x00b", "surrogate": "a\ud800b"}
    return {"value": values[args.mode]}


TOOLS = [
    Tool(
        name="misbehave",
        description="Test tool: raises an unexpected exception or returns non-JSON.",
        input_model=MisbehaveInput,
        run=_misbehave,
    ),
    Tool(
        name="tally",
        description="Test tool: logs each execution to a file, returns its value.",
        input_model=TallyInput,
        run=_run,
    ),
    Tool(
        name="deploy",
        description="Test tool standing for a risky action: needs approval, then logs "
                    "its execution like tally and returns its value.",
        input_model=TallyInput,
        run=_run,
        requires_approval=True,
    ),
]
