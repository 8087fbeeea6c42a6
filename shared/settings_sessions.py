"""The settings of session and episodic memory: how much history a prompt holds, when a
session is compacted, how many example episodes the planner sees, and when a plan is
reused.

A base class of :class:`shared.settings.Settings` (read through
:func:`shared.settings.get_settings`, never on its own). Every field is an environment
variable of the same name in upper case.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class SessionSettings(BaseSettings):
    """Session memory, episodic examples and plan reuse (see ``docs/architecture.md``).

    Attributes:
        session_history_goals: Most recent earlier goals of a session (goal, status,
            answer) put in the planner's and the synthesizer's data section; 0 turns
            session history off.
        session_item_max_chars: Most characters of each earlier goal text and answer
            in that history (cut and marked beyond).
        session_summary_max_chars: Most characters of a session's running summary, as
            stored and as put in a prompt.
        session_compact_min_goals: A session is compacted once this many of its
            finished goals are older than the ``session_history_goals`` shown one by
            one and not yet in its summary.
        session_compact_batch: Most sessions one compaction pass summarizes.
        session_compact_interval_s: Seconds between compaction passes (beat).
        session_view_max_goals: Most goals ``GET /v1/sessions/{id}`` lists (newest).
        memory_examples: Most similar successful episodes of the same tenant given to
            the planner as examples; 0 turns them off.
        memory_example_max_chars: Most characters of one example (as compact JSON).
        plan_reuse_enabled: Reuse the plan of an earlier successful goal of the same
            tenant with the same template (entities substituted, re-validated) instead
            of a planning call.
        plan_reuse_min_template_words: Fewest words outside placeholders a template
            needs for its plan to be reused (a template of only entities says nothing).
        plan_reuse_max_age_days: Oldest episode (days) whose plan may be reused.
    """

    session_history_goals: int = Field(default=5, ge=0, le=50)
    session_item_max_chars: int = Field(default=1_000, ge=50, le=20_000)
    session_summary_max_chars: int = Field(default=2_000, ge=100, le=20_000)
    session_compact_min_goals: int = Field(default=4, ge=1, le=1_000)
    session_compact_batch: int = Field(default=20, ge=1, le=1_000)
    session_compact_interval_s: float = Field(default=60.0, gt=0)
    session_view_max_goals: int = Field(default=100, ge=1, le=1_000)
    memory_examples: int = Field(default=3, ge=0, le=10)
    memory_example_max_chars: int = Field(default=1_500, ge=100, le=20_000)
    plan_reuse_enabled: bool = True
    plan_reuse_min_template_words: int = Field(default=2, ge=0, le=100)
    plan_reuse_max_age_days: float = Field(default=30.0, gt=0)
