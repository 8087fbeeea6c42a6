"""The ``sim`` model's plans for goals that plainly ask to remember or recall something.

* "Remember that X" (also "Please remember: X", "Note that X for later"): one
  ``remember`` step storing X, then the answer saying it was stored.
* "What do you remember about X?" (also "Recall X", "What did I tell you about X?"):
  a ``recall`` step and a ``search`` step for X, in parallel (neither depends on the
  other), then an answer from both.

Only goals that begin with these phrases are read this way, so goals that merely contain
the word ("Remember the Titans") keep their usual plans. Nothing here reads reference
answers.
"""

from __future__ import annotations

import re
from typing import Any

MAX_FACT_CHARS = 1_000
_REFERENCE_LIKE = re.compile(r"\$(?=\{?\d)")  # "$5" would read as a step reference

_REMEMBER = re.compile(
    r"^\s*(?:please\s+)?(?:remember|memorize|memorise|note)\s*(?:that\b|:)\s*(?P<fact>.+?)"
    r"(?:\s+for\s+later)?\s*$", re.IGNORECASE | re.DOTALL)
_RECALL = re.compile(
    r"^\s*(?:what\s+do\s+you\s+(?:remember|recall|know)\s+about|recall|"
    r"what\s+did\s+i\s+tell\s+you\s+about)\s+(?P<topic>.+?)\s*\??\s*$",
    re.IGNORECASE | re.DOTALL)


def remembered_fact(goal: str) -> str | None:
    """The fact a "remember that ..." goal asks to store, or None."""
    match = _REMEMBER.match(goal)
    if match is None:
        return None
    fact = _REFERENCE_LIKE.sub("USD ", match.group("fact").strip())
    return fact[:MAX_FACT_CHARS] if fact else None


def recall_topic(goal: str) -> str | None:
    """What a "what do you remember about ..." goal asks for, or None."""
    match = _RECALL.match(goal)
    if match is None:
        return None
    return _REFERENCE_LIKE.sub("USD ", match.group("topic").strip())[:200] or None


def memory_plan(goal: str, builder: Any) -> dict[str, Any] | None:
    """A plan for a remember or recall goal, built with ``builder`` (the heuristics'
    plan builder), or None when the goal asks neither."""
    fact = remembered_fact(goal)
    if fact is not None:
        ref = builder.add("tool", {"content": fact}, "Store the fact in long-term memory",
                          "remember")
        return builder.synthesize({"task": "remember", "instruction": goal, "inputs": [ref]},
                                  "Confirm what was remembered", "one remember step.")
    topic = recall_topic(goal)
    if topic is not None:
        memory = builder.add("tool", {"query": topic}, "Recall from long-term memory",
                             "recall")
        found = builder.search(topic, f"Look up {topic}")
        return builder.synthesize(
            {"task": "summary", "instruction": goal, "inputs": [memory, found],
             "labels": ["memory", topic]},
            "Answer from memory and the lookup",
            "recall and one lookup in parallel, then answer.")
    return None


def remember_answer(goal: str, args: dict[str, Any]) -> str:
    """The answer of a remember goal: what was stored, or that it was there already."""
    outputs = args.get("inputs") if isinstance(args.get("inputs"), list) else []
    stored = next((o for o in outputs if isinstance(o, dict) and "created" in o), None)
    if stored is None:
        return "Nothing was remembered."
    verb = "Remembered" if stored.get("created") else "Already remembered"
    return f"{verb}: {stored.get('content', '')}"
