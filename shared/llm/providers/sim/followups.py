"""How the ``sim`` planner reads a goal that continues a session: "Double that number",
"What is the previous answer times 3?", "What about the population of the previous
answer?".

The referring phrase is replaced by the latest earlier answer of the session, taken
from the ``session`` field of the request's data section (what a real model is given),
never from anywhere else; the rewritten goal is then planned like any other. Pure
functions, deterministic.
"""

from __future__ import annotations

import re
from typing import Any

from shared.llm.providers.sim.answers import fmt, number_in
from shared.names import SIMULATED_MARK

_NOUN = r"(?:number|result|answer|value|amount|figure|total)"
_REFERENCE = re.compile(
    rf"\b(?:that|this|the\s+(?:previous|last|earlier|same))\s+{_NOUN}\b", re.IGNORECASE)
_VERB = re.compile(r"^\s*(double|triple|halve|square)\s+(?:it|{})\b".format(
    _REFERENCE.pattern), re.IGNORECASE)
_VERB_EXPRESSIONS = {"double": "{} * 2", "triple": "{} * 3", "halve": "{} / 2",
                     "square": "{} ** 2"}
MAX_ANSWER_CHARS = 120  # longest earlier answer written into a goal as a name


def latest_answer(session: Any) -> str | None:
    """The newest answer of a succeeded earlier goal in ``session`` (the data
    section's ``session`` field), without the simulated mark; None when there is none."""
    if not isinstance(session, dict):
        return None
    for item in reversed(session.get("recent") or []):
        if isinstance(item, dict) and item.get("status") == "succeeded" and isinstance(
                item.get("answer"), str):
            answer = item["answer"].replace(SIMULATED_MARK, "").strip()
            if answer:
                return answer
    return None


def resolve(goal: str, session: Any) -> str:
    """``goal`` with its reference to the session's previous answer written out.

    Args:
        goal: The goal text.
        session: The ``session`` field of the planning request's data, or None.

    Returns:
        The goal unchanged when it refers to nothing or the session has no answer;
        otherwise "What is N * 2?" for "Double that number" (also triple, halve,
        square), or the goal with the phrase replaced by the answer's number (when the
        phrase names a number, or the answer is one) or by the answer itself.
    """
    answer = latest_answer(session)
    if answer is None or not _REFERENCE.search(goal) and not _VERB.match(goal):
        return goal
    number = number_in(answer)
    verb = _VERB.match(goal)
    if verb and number is not None:
        return f"What is {_VERB_EXPRESSIONS[verb.group(1).lower()].format(fmt(number))}?"
    only_number = number is not None and re.fullmatch(r"[-\d.,\s]+", answer) is not None

    def written(match: re.Match[str]) -> str:
        if number is not None and (only_number or not match.group(0).lower().endswith(
                "answer")):
            return fmt(number)
        return answer[:MAX_ANSWER_CHARS]

    return _REFERENCE.sub(written, goal)


def summarize(payload: dict[str, Any]) -> str:
    """The ``sim`` summarizer: the summary so far, then each goal as "goal -> answer",
    cut to ``max_chars`` (keeping the newest goals)."""
    parts = []
    if payload.get("summary"):
        parts.append(str(payload["summary"]).replace(SIMULATED_MARK, "").strip())
    for item in payload.get("goals") or []:
        if not isinstance(item, dict):
            continue
        outcome = item.get("answer") or item.get("error") or item.get("status")
        outcome = str(outcome or "").replace(SIMULATED_MARK, "").strip()
        parts.append(f"{item.get('goal', '')} -> {outcome}")
    text = " | ".join(p for p in parts if p)
    limit = payload.get("max_chars") if isinstance(payload.get("max_chars"), int) else 2_000
    limit = max(20, limit - len(SIMULATED_MARK) - 1)
    return text[-limit:] if len(text) > limit else text
