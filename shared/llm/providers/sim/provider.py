"""The ``sim`` provider: a deterministic simulated LLM that ships with Taskforce.

It is the default when no API key is configured. It answers from the structured
``data`` of each request using the rules in :mod:`shared.llm.providers.sim.heuristics`, sleeps
for a simulated latency, counts simulated tokens, and marks everything it produces as
simulated. It never reads reference answers.
"""

from __future__ import annotations

import hashlib
import json
import time

from shared.llm.base import LLMRequest, LLMResult, Usage, render
from shared.llm.providers.sim import followups, heuristics, react, replanning
from shared.names import SIMULATED_MARK
from shared.settings import Settings, get_settings

# Rough tokens per character of English text and JSON, as OpenAI's tokenizer guide
# states ("one token generally corresponds to ~4 characters of text").
CHARS_PER_TOKEN = 4


def simulated_tokens(text: str) -> int:
    """Simulated token count of ``text``: one token per 4 characters, at least 1."""
    return max(1, (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN)


def simulated_latency_s(request: LLMRequest, settings: Settings, *,
                        answers_goal: bool = False) -> float:
    """Latency (seconds) for ``request``: the profile's mean for its purpose, spread by
    a deterministic jitter derived from the prompt, times ``sim_latency_scale``.

    The default means follow the LLMCompiler paper (Kim et al., ICML 2024): about 1.9 s
    to plan and 1.6 s for the final answer. A ReAct turn takes ``sim_react_latency_s``
    when it chooses an action and, when ``answers_goal``, the final answer's mean.
    """
    mean = {
        "plan": settings.sim_plan_latency_s,
        "synthesize": settings.sim_synthesize_latency_s,
        "validate": settings.sim_validate_latency_s,
        "react": (settings.sim_synthesize_latency_s if answers_goal
                  else settings.sim_react_latency_s),
        "summarize": settings.sim_synthesize_latency_s,
    }[request.purpose]
    digest = hashlib.sha256(render(request).user.encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    jitter = (2 * unit - 1) * settings.sim_latency_jitter
    return max(0.0, mean * (1 + jitter) * settings.sim_latency_scale)


class SimProvider:
    """Deterministic simulated LLM (no network, no key)."""

    name = "sim"
    default_model = "sim-planner-1"

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings or get_settings()

    def generate(self, request: LLMRequest) -> LLMResult:
        """Answer ``request`` from its data.

        Returns:
            ``plan``: Plan JSON. ``validate``: ``{"ok", "reason"}``. ``synthesize``:
            ``{"answer"}``. ``react``: ``{"thought", "tool", "args"}`` or
            ``{"thought", "answer"}``. ``summarize``: ``{"summary"}``. Each also has
            ``"simulated": true``.
        """
        started = time.monotonic()
        payload = request.data
        if request.purpose == "plan" and payload.get("replan"):
            data = replanning.replan(payload["goal"], payload["replan"])
            data["rationale"] = f"{SIMULATED_MARK} {data['rationale']}"
        elif request.purpose == "plan":
            data = heuristics.plan_for_goal(followups.resolve(payload["goal"],
                                                              payload.get("session")))
            data["rationale"] = f"{SIMULATED_MARK} {data.get('rationale') or 'sim plan'}"
        elif request.purpose == "react":
            data = react.next_turn(payload)
            data["thought"] = f"{SIMULATED_MARK} {data['thought']}"
            if "answer" in data:
                data["answer"] = f"{SIMULATED_MARK} {data['answer']}"
        elif request.purpose == "validate":
            data = heuristics.validate_output(payload)
            data["reason"] = f"{SIMULATED_MARK} {data.get('reason', '')}".strip()
        elif request.purpose == "summarize":
            data = {"summary": f"{SIMULATED_MARK} {followups.summarize(payload)}"}
        else:
            answer = heuristics.synthesize_answer(payload)
            data = {"answer": f"{SIMULATED_MARK} {answer}"}
        data["simulated"] = True
        usage = Usage(
            input_tokens=simulated_tokens("".join(render(request))),
            output_tokens=simulated_tokens(json.dumps(data)),
        )
        delay = simulated_latency_s(request, self._settings,
                                    answers_goal="answer" in data)
        remaining = delay - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
        return LLMResult(
            data=data, usage=usage, latency_s=time.monotonic() - started, simulated=True
        )
