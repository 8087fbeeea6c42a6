"""What a tool is: a name, a pydantic input model, and a function from input to JSON."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from shared.errors import RetryableToolError, ToolError, is_retryable
from shared.telemetry import genai

MAX_ERROR_CHARS = 300
# ``scheme://user:password@host`` in a driver's message: the credentials are cut out.
_CREDENTIALS = re.compile(r"(\w+://)[^\s/@]+@")


def _never_cancelled() -> bool:
    return False


@dataclass(frozen=True)
class ToolContext:
    """What a running tool may use besides its arguments.

    Attributes:
        goal_id: The goal the step belongs to (UUID as text).
        step_id: The step's number within its plan.
        attempt: The claim attempt (1 for the first run).
        engine: SQLAlchemy engine of the system of record (for tools that read it).
        extras: Free-form values for tools added by users.
        cancelled: ``cancelled() -> bool``: True once the step's goal has been cancelled
            (or has otherwise ended), so a long-running tool can stop early. The worker
            provides one that reads the goal's status from Postgres at most every
            0.5 s; the default never reports a cancellation. Cheap to call often.
        tenant_id: The tenant that owns the goal (UUID as text), for tools that read or
            write the tenant's data (``remember``, ``recall``); None outside a goal.
    """

    goal_id: str
    step_id: int
    attempt: int
    engine: Engine | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    cancelled: Callable[[], bool] = _never_cancelled
    tenant_id: str | None = None


@dataclass(frozen=True)
class Tool:
    """A callable a plan can name.

    Attributes:
        name: The name plans use (``"calculator"``).
        description: One paragraph for the planner's prompt.
        input_model: Pydantic model the arguments must fit. Bound every field (string
            lengths, number ranges, list sizes): arguments come from an LLM's plan or
            a client's request.
        run: ``run(args, ctx) -> JSON-serialisable output``; raises
            :class:`~shared.errors.ToolError` for bad input and
            :class:`~shared.errors.RetryableToolError` for transient failures.
        remote: True for tools that stand for a network round trip (search); goals on
            the ``sim`` provider add ``sim_tool_latency_s`` of simulated latency to them.
        isolated: True for CPU-bound tools. Such a tool runs in a child process of a
            small per-worker pool (:mod:`shared.tools.isolation`), where a time limit
            (``TOOL_CPU_TIME_LIMIT_S``) is really enforced by killing the child, and
            where its work cannot hold the worker's GIL (which would stall the other
            steps' threads and the lease heartbeat). ``run`` and ``input_model`` must
            then be importable module-level names; the child gets the arguments and
            returns the output as JSON text, and its context has no engine, extras
            nor cancellation hook.
        requires_approval: True for risky tools (deploying, sending, paying): a step
            calling one waits in ``awaiting_approval``, holding no worker thread, until
            a person approves or rejects it (``POST /v1/goals/{id}/steps/{n}/approve``,
            ``taskforce approve``) or ``APPROVAL_TIMEOUT_S`` rejects it.
    """

    name: str
    description: str
    input_model: type[BaseModel]
    run: Callable[[BaseModel, ToolContext], Any]
    remote: bool = False
    isolated: bool = False
    requires_approval: bool = False

    def call(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        """Validate ``args`` against the input model and run the tool.

        This is the tool call boundary: whatever else the tool raises becomes a
        :class:`ToolError` naming the tool and the exception's type and message (first
        line, credentials removed, no traceback), so a step never fails unreadably. An
        ``isolated`` tool runs in a child process (see the class docstring).

        Raises:
            pydantic.ValidationError: The (resolved) arguments do not fit the model.
            RetryableToolError: A database the tool uses failed transiently (lost or
                refused connection), or an isolated tool's child process was lost (its
                pool was replaced after another call's time limit).
            ToolError: The tool refused its input or failed in any other way, or an
                isolated tool exceeded ``TOOL_CPU_TIME_LIMIT_S`` ("time limit exceeded").
        """
        validated = self.input_model.model_validate(args)
        try:
            with genai.tool_call(self.name, goal_id=ctx.goal_id, step_id=ctx.step_id,
                                 isolated=self.isolated):
                if self.isolated:
                    from shared.tools.isolation import run_isolated

                    return run_isolated(self, validated, ctx)
                return self.run(validated, ctx)
        except ToolError:
            raise
        except Exception as exc:
            raise tool_failure(self.name, exc) from None


def tool_failure(tool: str, exc: BaseException) -> ToolError:
    """The :class:`ToolError` that stands for an unexpected exception raised by ``tool``:
    ``"<tool> failed: <Type>: <first line of the message>"`` (at most 300 characters of
    message). Transient failures (of a database, or a Taskforce error marked retryable)
    give a :class:`RetryableToolError`."""
    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(original).strip().splitlines()
    message = _CREDENTIALS.sub(r"\1***@", lines[0] if lines else "")[:MAX_ERROR_CHARS]
    text = f"{tool} failed: {type(exc).__name__}" + (f": {message}" if message else "")
    transient = is_retryable(exc) or isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)
    return RetryableToolError(text) if transient else ToolError(text)
