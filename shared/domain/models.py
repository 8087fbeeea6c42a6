"""Pydantic models of the domain: what a plan is, and what Taskforce shows of a goal.

A :class:`Plan` is a DAG of :class:`Step`. The stored state of a goal lives in
Postgres (see ``shared.persistence``); :class:`Goal`, :class:`StepState`,
:class:`StepRun`, :class:`LLMCallRecord` and :class:`Episode` are how it is shown.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.domain.limits import check_json_value
from shared.domain.refs import referenced_steps

# Largest step id a plan may use: far above MAX_PLAN_STEPS times the replans a goal may
# have (new steps of a replan number on from the last id), far below the 2**31 - 1 of
# the Integer step_id columns (shared.persistence.tables).
MAX_STEP_ID = 10_000
StepId = Annotated[int, Field(ge=1, le=MAX_STEP_ID)]
# A session id: 1 to 128 letters, digits, ".", "_", ":" or "-" (no spaces, no "/").
SESSION_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"


def _settings() -> Any:
    from shared.settings import get_settings  # read when validating, never at import

    return get_settings()


def check_raw_plan(data: Any) -> Any:
    """Checks on a plan's raw JSON before any of its steps is parsed: the step count
    (``MAX_PLAN_STEPS``), then depth (``MAX_JSON_DEPTH`` below the step's arguments),
    NUL characters, lone surrogates, NaN and infinities anywhere in it.

    Raises:
        ValueError: (an :class:`~shared.domain.limits.InputLimitError`) A limit is broken.
    """
    if isinstance(data, dict) and isinstance(data.get("steps"), list):
        cap = _settings().max_plan_steps
        if len(data["steps"]) > cap:
            raise ValueError(f"{len(data['steps'])} steps exceed the cap of {cap}")
    # plan -> steps -> step -> args: three levels above a step's arguments.
    return check_json_value(data, max_depth=_settings().max_json_depth + 3, where="plan")


class StepKind(StrEnum):
    """What a step does: call a tool, have the LLM validate an output, or synthesize."""

    TOOL = "tool"
    VALIDATE = "validate"
    SYNTHESIZE = "synthesize"


class StepStatus(StrEnum):
    """Life of a step: ``pending`` until its dependencies are done, ``queued`` once its
    message is (about to be) published, ``running`` while a worker holds its lease, then
    ``succeeded``, ``failed`` or ``skipped`` (never run because the goal ended). A step
    whose tool requires approval goes ``running → awaiting_approval`` at its first claim
    (no lease, no thread held), then ``queued`` once approved or ``failed`` once
    rejected."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    AWAITING_APPROVAL = "awaiting_approval"


class GoalMode(StrEnum):
    """How a goal runs: ``dag`` plans it once into a DAG whose independent steps run in
    parallel; ``react`` lets one LLM call choose each next action from the observations
    so far (a sequential ReAct loop, Yao et al., ICLR 2023), each action a step of the
    goal's plan run by the same step machinery (see :mod:`worker.react`)."""

    DAG = "dag"
    REACT = "react"


class GoalStatus(StrEnum):
    """Life of a goal: ``pending`` → ``planning`` → ``running`` → a final status, with
    ``replanning`` → ``planning`` → ``running`` again after a step failed."""

    PENDING = "pending"
    PLANNING = "planning"
    REPLANNING = "replanning"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True for ``succeeded``, ``failed`` and ``cancelled``."""
        return self in {GoalStatus.SUCCEEDED, GoalStatus.FAILED, GoalStatus.CANCELLED}


class Step(BaseModel):
    """One node of a plan's DAG.

    Attributes:
        id: Step number, unique within the plan (1, 2, ...); references use it (``$1``).
        kind: ``tool``, ``validate`` or ``synthesize``.
        tool: Registered tool name; required for ``tool`` steps, absent otherwise.
        args: JSON arguments. Tool steps: checked against the tool's input model.
            Validate steps: ``{"target": "$N", "criteria": str}``. Synthesize steps:
            ``{"inputs": [...], "instruction": str}``. Any string may hold references.
        depends_on: Extra dependencies beyond the references in ``args``.
        description: Optional one-line note from the planner, shown to users.
    """

    model_config = ConfigDict(extra="forbid")

    id: StepId
    kind: StepKind
    tool: str | None = Field(default=None, max_length=128)
    args: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[StepId] = Field(default_factory=list, max_length=256)
    description: str | None = Field(default=None, max_length=2_000)

    @field_validator("args")
    @classmethod
    def _bounded_args(cls, value: dict[str, Any]) -> dict[str, Any]:
        settings = _settings()
        return check_json_value(value, max_depth=settings.max_json_depth,
                                max_bytes=settings.max_step_args_bytes, where="args")

    @property
    def dependencies(self) -> frozenset[int]:
        """Ids of the steps this one waits for: its references plus ``depends_on``."""
        return frozenset(referenced_steps(self.args)) | frozenset(self.depends_on)


class Plan(BaseModel):
    """A DAG of steps that ends in exactly one ``synthesize`` step.

    Attributes:
        steps: The steps, in any order (dependencies decide the order of execution).
        rationale: Optional short explanation from the planner.
    """

    model_config = ConfigDict(extra="forbid")

    steps: list[Step] = Field(min_length=1)
    rationale: str | None = Field(default=None, max_length=4_000)

    @model_validator(mode="before")
    @classmethod
    def _raw_limits(cls, data: Any) -> Any:
        return check_raw_plan(data)

    @field_validator("steps")
    @classmethod
    def _unique_ids(cls, steps: list[Step]) -> list[Step]:
        seen: set[int] = set()
        for step in steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id} is used twice")
            seen.add(step.id)
        return steps

    def by_id(self) -> dict[int, Step]:
        """Return the steps keyed by id."""
        return {step.id: step for step in self.steps}


class GoalRequest(BaseModel):
    """What a client submits.

    Attributes:
        goal: The goal text (1 to ``MAX_GOAL_CHARS`` characters, default 20,000).
        provider: LLM provider name; the settings' default when absent.
        model: Model name; the provider's default when absent.
        metadata: Free-form JSON the client wants kept with the goal (at most
            ``MAX_METADATA_BYTES`` as compact JSON, ``MAX_JSON_DEPTH`` levels).
        plan: Optional ready-made plan (Plan JSON). It is validated like a planner's
            and then run as it is, with no planning call; its step count is checked
            before any step is parsed.
        max_tokens: Token budget over all the goal's LLM calls (default: settings; at
            most ``MAX_REQUEST_TOKENS``).
        max_cost_usd: USD budget over all the goal's LLM calls (default: settings; finite,
            at most ``MAX_REQUEST_COST_USD``).
        max_replans: Replans allowed after failed steps (default: settings).
        mode: ``dag`` (default) or ``react`` (:class:`GoalMode`); a ready-made ``plan``
            is ``dag`` only.
        session_id: The session the goal continues (1 to 128 letters, digits, ``.``,
            ``_``, ``:``, ``-``), per tenant: its planner and synthesizer see the
            session's earlier goals and answers.
    """

    model_config = ConfigDict(extra="forbid")

    goal: str = Field(min_length=1)
    provider: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=128)
    metadata: dict[str, Any] = Field(default_factory=dict)
    plan: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    max_replans: int | None = Field(default=None, ge=0, le=5)
    mode: Literal["dag", "react"] = "dag"

    @model_validator(mode="after")
    def _plan_is_dag(self) -> GoalRequest:
        if self.mode == GoalMode.REACT and self.plan is not None:
            raise ValueError("a ready-made plan runs in mode dag; mode react chooses each "
                             "action as it goes")
        return self
    session_id: str | None = Field(default=None, pattern=SESSION_ID_PATTERN)

    @field_validator("goal")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("goal must not be blank")
        cap = _settings().max_goal_chars
        if len(value) > cap:
            raise ValueError(f"goal must be at most {cap} characters")
        return check_json_value(value, max_depth=1, where="goal")

    @field_validator("provider", "model")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        return check_json_value(value, max_depth=1, where="name")

    @field_validator("metadata")
    @classmethod
    def _bounded_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        settings = _settings()
        return check_json_value(value, max_depth=settings.max_json_depth,
                                max_bytes=settings.max_metadata_bytes, where="metadata")

    @field_validator("plan", mode="before")
    @classmethod
    def _bounded_plan(cls, value: Any) -> Any:
        return value if value is None else check_raw_plan(value)

    @field_validator("max_tokens")
    @classmethod
    def _token_ceiling(cls, value: int | None) -> int | None:
        cap = _settings().max_request_tokens
        if value is not None and value > cap:
            raise ValueError(f"max_tokens must be less than or equal to {cap}")
        return value

    @field_validator("max_cost_usd")
    @classmethod
    def _cost_ceiling(cls, value: float | None) -> float | None:
        cap = _settings().max_request_cost_usd
        if value is not None and value > cap:
            raise ValueError(f"max_cost_usd must be less than or equal to {cap:g}")
        return value


class ApprovalDecision(StrEnum):
    """A person's (or the timeout's) decision on a step awaiting approval."""

    APPROVED = "approved"
    REJECTED = "rejected"


class StepApproval(BaseModel):
    """The approval state of a step whose tool requires approval.

    Attributes:
        requested_at: When the step started waiting (UTC).
        decision: ``approved`` or ``rejected``; None while it waits.
        by: Who decided: an API key id, ``cli``, ``api`` or ``timeout``.
        at: When the decision was taken (UTC).
        reason: The reason given with the decision, if any.
    """

    requested_at: datetime | None
    decision: ApprovalDecision | None = None
    by: str | None = None
    at: datetime | None = None
    reason: str | None = None


class StepState(BaseModel):
    """A step as shown to clients: its spec, status and timings (UTC); ``approval`` is
    set for a step that asked for approval."""

    id: int
    kind: StepKind
    tool: str | None
    args: dict[str, Any]
    dependencies: list[int]
    plan_version: int
    status: StepStatus
    attempt: int
    started_at: datetime | None
    finished_at: datetime | None
    result: Any = None
    error: str | None = None
    approval: StepApproval | None = None


class Goal(BaseModel):
    """A goal as shown to clients (``GET /v1/goals/{id}``, ``taskforce run --json``).

    Attributes:
        provider: LLM provider the goal runs on (``sim``, ``openai``, ...).
        model: Model name on that provider.
        simulated: True when no real model answered: the provider is ``sim`` or any of
            the goal's LLM calls was answered by a simulator (``llm_calls.simulated``).
        tokens: Input plus output tokens over every LLM call of the goal.
        cost_usd: Cost of those calls in US dollars.
        awaiting_approval: Ids of the steps waiting for a person's approval (the goal
            stays ``running`` meanwhile).
        mode: ``dag`` or ``react`` (:class:`GoalMode`).
        trace_id: The OpenTelemetry trace the goal runs in (32 hex digits): look it up
            in the tracing backend the deployment exports to. None when tracing is off.
        session_id: The session the goal belongs to, if any.
        reused_plan_from: The earlier goal whose plan this goal reused (entities
            substituted) instead of a planning call; None when it was planned.
    """

    id: UUID
    goal: str
    status: GoalStatus
    provider: str
    model: str
    metadata: dict[str, Any]
    answer: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    tokens: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    steps: list[StepState]
    simulated: bool = False
    awaiting_approval: list[int] = Field(default_factory=list)
    mode: GoalMode = GoalMode.DAG
    trace_id: str | None = None
    session_id: str | None = None
    reused_plan_from: UUID | None = None


class StepRun(BaseModel):
    """One execution attempt of a step: who claimed it and how it ended.

    Every claim writes one; a step whose message was delivered twice but ran once has
    exactly one run.
    """

    step_id: int
    attempt: int
    worker: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    error: str | None = None


class LLMCallRecord(BaseModel):
    """One LLM call: purpose, provider, model, token usage, cost (USD), latency (s)."""

    purpose: str
    step_id: int | None
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float
    simulated: bool
    created_at: datetime


class Episode(BaseModel):
    """The whole story of a finished goal, stored once when it ends.

    Attributes:
        goal: The goal as finally shown.
        plan: The plan that ran.
        runs: Every step run, in claim order.
        llm_calls: Every LLM call, in call order.
        total_tokens: Input plus output tokens.
        total_cost_usd: Cost in US dollars.
    """

    goal: Goal
    plan: Plan | None
    runs: list[StepRun]
    llm_calls: list[LLMCallRecord]
    total_tokens: int
    total_cost_usd: float
