"""Pydantic models of the domain: what a plan is, and what Taskforce shows of a goal.

A :class:`Plan` is a DAG of :class:`Step`. The stored state of a goal lives in
Postgres (see ``shared.persistence``); :class:`Goal`, :class:`StepState`,
:class:`StepRun`, :class:`LLMCallRecord` and :class:`Episode` are how it is shown.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.domain.refs import referenced_steps


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

    id: int = Field(ge=1)
    kind: StepKind
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[int] = Field(default_factory=list)
    description: str | None = None

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
    rationale: str | None = None

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
        goal: The goal text (1 to 20,000 characters).
        provider: LLM provider name; the settings' default when absent.
        model: Model name; the provider's default when absent.
        metadata: Free-form JSON the client wants kept with the goal.
        plan: Optional ready-made plan (Plan JSON). It is validated like a planner's
            and then run as it is, with no planning call.
        max_tokens: Token budget over all the goal's LLM calls (default: settings).
        max_cost_usd: USD budget over all the goal's LLM calls (default: settings).
        max_replans: Replans allowed after failed steps (default: settings).
    """

    model_config = ConfigDict(extra="forbid")

    goal: str = Field(min_length=1, max_length=20_000)
    provider: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=128)
    metadata: dict[str, Any] = Field(default_factory=dict)
    plan: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, ge=0)
    max_replans: int | None = Field(default=None, ge=0, le=5)

    @field_validator("goal")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("goal must not be blank")
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
