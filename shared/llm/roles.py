"""The three things Taskforce asks of an LLM: plan a goal, validate an output, synthesize.

Each role builds an :class:`~shared.llm.base.LLMRequest` (system prompt, user prompt,
structured payload, JSON schema) and checks the provider's JSON against a pydantic
model. Providers never see these models; roles never see the wire.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from shared.domain.models import Plan
from shared.errors import LLMError
from shared.llm.base import LLMProvider, LLMRequest, LLMResult
from shared.tools.registry import ToolRegistry

PLANNER_SYSTEM = """You are the planner of Taskforce, a system that runs tool calls in parallel.
Decompose the user's goal into a DAG of steps, returned as JSON that fits the schema.
Rules:
- Steps are numbered 1, 2, 3, ... . A step's arguments may refer to an earlier step's
  output as "$N" (the whole output) or "$N.field" (one field of it), also inside text.
- Steps that do not refer to each other run in parallel: make independent lookups
  independent steps.
- kind "tool" calls one of the tools listed, with arguments fitting its input.
- kind "validate" checks an output: args {"target": "$N", "criteria": "..."}.
- End with exactly one "synthesize" step: args {"instruction": "...", "inputs": ["$N", ...]}.
  Every other step must lead to it."""

VALIDATOR_SYSTEM = (
    "You check one output of an agent's step against criteria. "
    "Answer JSON {\"ok\": bool, \"reason\": str}."
)

M = TypeVar("M", bound=BaseModel)

SYNTHESIZER_SYSTEM = (
    "You write the final answer to the user's goal from the outputs of the steps that "
    "ran. Be brief and direct. Answer JSON {\"answer\": str}."
)


class Verdict(BaseModel):
    """A validation step's decision."""

    ok: bool
    reason: str = ""


class Answer(BaseModel):
    """A synthesis step's answer text."""

    answer: str = Field(min_length=1)


def _dump(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)


def plan_request(
    goal: str, *, model: str, registry: ToolRegistry, replan: dict[str, Any] | None = None,
    repair: dict[str, Any] | None = None,
) -> LLMRequest:
    """Build the planning request for ``goal`` with the tools of ``registry``.

    Args:
        goal: The goal text.
        model: Model name.
        registry: The tools the plan may call.
        replan: For a replan, ``shared.persistence.goals.replan_context``'s answer: the
            completed steps (reusable by id), the failed ones and the first free id.
        repair: For the one repair attempt, ``{"error": str, "previous": str}``: what
            was wrong with the previous answer, and that answer.
    """
    tools = [
        {"name": t.name, "description": t.description, "input": t.input_model.model_json_schema()}
        for t in registry
    ]
    payload: dict[str, Any] = {"goal": goal, "tools": tools}
    prompt = f"Tools:\n{_dump(tools)}\n\nGoal:\n{goal}\n\n"
    if replan is not None:
        payload["replan"] = replan
        prompt += (
            "A step of the previous plan failed. These steps succeeded; refer to their "
            f"outputs by id instead of running them again:\n{_dump(replan['completed'])}\n"
            f"These failed:\n{_dump(replan['failed'])}\n"
            f"Number the new steps from {replan['next_step_id']}.\n\n"
        )
    if repair is not None:
        payload["repair"] = repair
        prompt += (
            f"Your previous answer was rejected: {repair['error']}\n"
            f"Previous answer:\n{repair['previous']}\nReturn a corrected plan.\n\n"
        )
    prompt += "Return the plan as JSON."
    return LLMRequest(
        purpose="plan",
        model=model,
        system=PLANNER_SYSTEM,
        prompt=prompt,
        payload=payload,
        output_schema=Plan.model_json_schema(),
    )


def validate_request(goal: str, *, model: str, criteria: str, target: Any) -> LLMRequest:
    """Build the request that checks ``target`` (a step's output) against ``criteria``."""
    payload = {"goal": goal, "criteria": criteria, "target": target}
    prompt = f"Goal: {goal}\nCriteria: {criteria}\nOutput to check:\n{_dump(target)}"
    return LLMRequest(
        purpose="validate",
        model=model,
        system=VALIDATOR_SYSTEM,
        prompt=prompt,
        payload=payload,
        output_schema=Verdict.model_json_schema(),
        max_output_tokens=256,
    )


def synthesize_request(goal: str, *, model: str, args: dict[str, Any]) -> LLMRequest:
    """Build the final-answer request; ``args`` are the synthesize step's resolved args."""
    payload = {"goal": goal, "args": args}
    prompt = f"Goal: {goal}\nStep outputs and instruction:\n{_dump(args)}"
    return LLMRequest(
        purpose="synthesize",
        model=model,
        system=SYNTHESIZER_SYSTEM,
        prompt=prompt,
        payload=payload,
        output_schema=Answer.model_json_schema(),
        max_output_tokens=512,
    )


def parse_output(result: LLMResult, model: type[M]) -> M:
    """Check a provider's JSON against ``model``.

    Raises:
        LLMError: The JSON does not fit (the message names the first problem).
    """
    try:
        return model.model_validate(
            {k: v for k, v in result.data.items() if k in model.model_fields}
        )
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise LLMError(f"{model.__name__} output does not fit: {error['loc']}: {error['msg']}")


def call(provider: LLMProvider, request: LLMRequest) -> LLMResult:
    """Run ``request`` on ``provider`` (the single place roles reach a provider)."""
    return provider.generate(request)
