"""The settings of the ReAct execution mode (``GoalRequest.mode = "react"``).

A base class of :class:`shared.settings.Settings` (read through
:func:`shared.settings.get_settings`, never on its own). Every field is an environment
variable of the same name in upper case.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class ReactSettings(BaseSettings):
    """Bounds of a ReAct goal and the ``sim`` model's latency for its turns.

    Attributes:
        react_max_turns: Most LLM turns a ReAct goal may take (each turn chooses one
            action or gives the answer); a goal with no answer after this many ends
            ``failed`` with ``react_turns_exhausted``. Bounds the prompt too: each turn
            sends every earlier action with its observation, each observation cut to
            ``LLM_UNTRUSTED_MAX_CHARS`` characters.
        sim_react_latency_s: Mean simulated latency (seconds) of a ReAct turn of the
            ``sim`` model that chooses an action. Our choice, not a measurement: the
            same as a planning call (``SIM_PLAN_LATENCY_S``, 1.9 s), since both read the
            goal, the tools and what is known so far and write one structured decision.
            A turn that gives the answer takes ``SIM_SYNTHESIZE_LATENCY_S``, like the
            DAG's final answer. Both are scaled by ``SIM_LATENCY_SCALE``.
    """

    react_max_turns: int = Field(default=24, ge=1, le=100)
    sim_react_latency_s: float = Field(default=1.9, ge=0.0)
