"""What a tool is: a name, a pydantic input model, and a function from input to JSON."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class ToolContext:
    """What a running tool may use besides its arguments.

    Attributes:
        goal_id: The goal the step belongs to (UUID as text).
        step_id: The step's number within its plan.
        attempt: The claim attempt (1 for the first run).
        engine: SQLAlchemy engine of the system of record (for tools that read it).
        extras: Free-form values for tools added by users.
    """

    goal_id: str
    step_id: int
    attempt: int
    engine: Engine | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tool:
    """A callable a plan can name.

    Attributes:
        name: The name plans use (``"calculator"``).
        description: One paragraph for the planner's prompt.
        input_model: Pydantic model the arguments must fit.
        run: ``run(args, ctx) -> JSON-serialisable output``; raises
            :class:`~shared.errors.ToolError` for bad input and
            :class:`~shared.errors.RetryableToolError` for transient failures.
        remote: True for tools that stand for a network round trip (search); goals on
            the ``sim`` provider add ``sim_tool_latency_s`` of simulated latency to them.
    """

    name: str
    description: str
    input_model: type[BaseModel]
    run: Callable[[BaseModel, ToolContext], Any]
    remote: bool = False

    def call(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        """Validate ``args`` against the input model and run the tool.

        Raises:
            pydantic.ValidationError: The (resolved) arguments do not fit the model.
            ToolError: The tool refused its input or failed.
        """
        return self.run(self.input_model.model_validate(args), ctx)
