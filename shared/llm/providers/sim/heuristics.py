"""The brain of the ``sim`` provider: plans, final answers and output checks.

Pure functions of their payloads: no I/O, no network, no clock, no randomness (ties
are broken with SHA-256, never ``hash()``). The planner sees only the goal text and
the synthesizer only the goal and the resolved step outputs; neither ever reads
reference answers. Plans follow LLMCompiler (Kim et al., ICML 2024): independent
lookups first, all in parallel, then arithmetic on their outputs, then one
``synthesize`` step.

Goal shapes recognised, in order:

* movie requests ("Find a movie similar to A, B, C, D" + options): one ``search`` per
  movie, then a choice among the options;
* bare arithmetic ("What is 17 * 23?"): one ``calculator`` step;
* quantitative comparisons ("If X were 20% deeper and Y ..., which is deeper?"): one
  ``search`` per entity, a ``calculator`` per modified value, an optional combining
  ``calculator``, then the comparison;
* two-entity questions ("Were A and B of the same nationality?"): two ``search``
  steps, then the comparison;
* anything else: a ``search`` per capitalised name (at most 5) or one for the text.
"""

from __future__ import annotations

import re
from typing import Any

from shared.domain.refs import referenced_steps
from shared.errors import ToolError
from shared.llm.providers.sim import answers, memory_goals
from shared.llm.providers.sim.goal_parsing import compared_pair, lookup_names
from shared.llm.providers.sim.movies import movie_request
from shared.llm.providers.sim.quantities import NumericGoal, parse_numeric_goal
from shared.tools.calculator import evaluate

MAX_QUERY_CHARS = 500
MAX_LOOKUPS = 8
MAX_PAIRS = 8
SEARCH_LIMIT = 3


_REFERENCE_LIKE = re.compile(r"\$(?=\{?\d)")


def _text(value: Any) -> Any:
    """Neutralise "$36"-style text so that it is not read as a step reference."""
    if isinstance(value, str):
        return _REFERENCE_LIKE.sub("USD ", value)
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


class _PlanBuilder:
    """Accumulates steps with consecutive ids. Text from the goal goes through
    :func:`_text`; only the builder writes references."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []

    def add(
        self, kind: str, args: dict[str, Any], description: str, tool: str | None = None
    ) -> str:
        """Append a step numbered after the last one; return its reference (``"$N"``)."""
        step: dict[str, Any] = {"id": len(self.steps) + 1, "kind": kind}
        if tool is not None:
            step["tool"] = tool
        step["args"] = args
        step["description"] = _text(description)
        self.steps.append(step)
        return f"${step['id']}"

    def search(self, query: str, description: str) -> str:
        """Append a ``search`` lookup (query squeezed to one line); return its reference."""
        query = re.sub(r"\s+", " ", _text(query)).strip()[:MAX_QUERY_CHARS] or "information"
        return self.add("tool", {"query": query, "limit": SEARCH_LIMIT}, description, "search")

    def calculate(self, expression: str, description: str) -> str:
        """Append a ``calculator`` step; return its reference."""
        return self.add("tool", {"expression": expression}, description, "calculator")

    def synthesize(self, args: dict[str, Any], description: str, rationale: str) -> dict[str, Any]:
        """Add the final step. Any step that nothing refers to yet is handed to it as
        ``context``, so that every step leads to the synthesize step."""
        for key in ("instruction", "labels", "options"):
            if key in args:
                args[key] = _text(args[key])
        used = set(referenced_steps([step["args"] for step in self.steps]))
        used |= referenced_steps(args)
        loose = [f"${step['id']}" for step in self.steps if step["id"] not in used]
        if loose:
            args["context"] = loose
        self.add("synthesize", args, description)
        return {"steps": self.steps, "rationale": rationale}


# --- shapes ------------------------------------------------------------------------


def _movie_plan(goal: str, liked: list[str], options: list[str]) -> dict[str, Any]:
    plan = _PlanBuilder()
    refs = [plan.search(title, f"Look up the movie {title}") for title in liked]
    args = {
        "task": "choose_option",
        "instruction": "Pick the option most similar to the liked movies.",
        "inputs": refs,
        "labels": liked,
        "options": options,
    }
    return plan.synthesize(
        args,
        "Choose the most similar option",
        f"Look up the {len(liked)} liked movies in parallel, then compare the options.",
    )


_WORD_OPS = (
    (r"\bmultiplied\s+by\b", "*"),
    (r"\bdivided\s+by\b", "/"),
    (r"\bto\s+the\s+power\s+of\b", "**"),
    (r"\bplus\b", "+"),
    (r"\bminus\b", "-"),
    (r"(?<=\d)\s*(?:times|x|×)\s*(?=[\d(])", " * "),
    (r"÷", "/"),
    (r"\^", "**"),
)
_EXPRESSION = re.compile(r"[\d.()+\-*/%\s]+")


def arithmetic_expression(goal: str) -> str | None:
    """The arithmetic a goal asks for ("What is 17 * 23?" -> "17 * 23"), or None.

    Args:
        goal: The goal text.

    Returns:
        An expression the calculator accepts, or None.
    """
    text = re.sub(r"(?<=\d),(?=\d{3})", "", goal)
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%\s*of\s*(\d+(?:\.\d+)?)", r"(\1 / 100 * \2)", text)
    for pattern, symbol in _WORD_OPS:
        text = re.sub(pattern, symbol, text, flags=re.IGNORECASE)
    candidates = sorted((m.group(0).strip() for m in _EXPRESSION.finditer(text)), key=len)
    for candidate in reversed(candidates):
        candidate = candidate.rstrip("%")
        if not re.search(r"\d\s*(?:\*\*|[-+*/%])\s*[-+(]*\d", candidate):
            continue
        try:
            evaluate(candidate)
        except ToolError:  # not something the calculator can do: not arithmetic
            continue
        return candidate
    return None


def _arithmetic_plan(goal: str, expression: str) -> dict[str, Any]:
    plan = _PlanBuilder()
    ref = plan.calculate(expression, f"Compute {expression}")
    return plan.synthesize(
        {"task": "arithmetic", "instruction": goal, "inputs": [ref]},
        "State the result",
        "The goal is arithmetic: one calculator step.",
    )


def _value(ref: str) -> str:
    return f"{ref}.value"


def _combine(reading: NumericGoal, values: list[str]) -> str | None:
    """Calculator expression for the final number of a quantitative goal, or None."""
    op, n = reading.operation, len(values)
    hi, lo = f"max({', '.join(values)})", f"min({', '.join(values)})"
    extremes = reading.scope == "extremes" or n > 2
    if op == "ratio":
        return f"{hi} / {lo}" if extremes else f"{values[0]} / {values[1]}"
    if op == "difference":
        return f"{hi} - {lo}" if extremes else f"abs({values[0]} - {values[1]})"
    if op == "average":
        if reading.scope == "extremes":
            return f"({hi} + {lo}) / 2"
        return f"({' + '.join(values)}) / {n}"
    if op == "sum":
        return f"{hi} + {lo}" if reading.scope == "extremes" else " + ".join(values)
    if op == "stack":
        num = [values[i] for i in reading.numerator] or values
        den = [values[i] for i in reading.denominator if i not in reading.numerator] or values
        top = num[0] if len(num) == 1 else f"max({', '.join(num)})"
        bottom = den[0] if len(den) == 1 else f"min({', '.join(den)})"
        return f"{top} / {bottom}"
    return None


def _numeric_plan(goal: str, reading: NumericGoal) -> dict[str, Any]:
    plan = _PlanBuilder()
    density = reading.density
    lookups: list[str] = []
    for name, attribute in zip(reading.entities, reading.attributes):
        lookups.append(plan.search(f"{name} {attribute}", f"Look up the {attribute} of {name}"))
    area_refs: list[str] = []
    if density:
        for name in reading.entities:
            area_refs.append(plan.search(f"{name} area", f"Look up the area of {name}"))
    values: list[str] = []
    for i, name in enumerate(reading.entities):
        ref = lookups[i]
        if density:
            ref = plan.calculate(
                f"{_value(ref)} / {_value(area_refs[i])}", f"Population density of {name}"
            )
        modifier = reading.modifiers[i]
        if modifier is not None:
            ref = plan.calculate(modifier.expression(_value(ref)), f"Apply the change to {name}")
        values.append(ref)
    args: dict[str, Any] = {"task": "numeric", "instruction": goal}
    if reading.pairs:
        refs, labels = [], []
        for a, b in reading.pairs[:MAX_PAIRS]:
            va, vb = _value(values[a]), _value(values[b])
            expression = {
                "ratio": f"{va} / {vb}",
                "difference": f"abs({va} - {vb})",
                "average": f"({va} + {vb}) / 2",
            }[reading.operation]
            pair_label = f"{reading.entities[a]} vs {reading.entities[b]}"
            refs.append(plan.calculate(expression, f"{reading.operation.title()} of {pair_label}"))
            labels.append(pair_label)
        args.update(inputs=refs, labels=labels, comparison=reading.choose, pairwise=True)
    else:
        args.update(inputs=values, labels=list(reading.entities))
        operation = reading.operation
        expression = _combine(reading, [_value(v) for v in values])
        if expression is not None:
            args["result"] = plan.calculate(expression, f"Compute the {operation}")
            args["comparison"] = "value"
        else:
            args["comparison"] = reading.choose
        args["operation"] = operation
    args["attribute"] = "population density" if density else reading.attributes[0]
    return plan.synthesize(
        args,
        "Compare the values and answer",
        f"Look up {len(lookups) + len(area_refs)} values in parallel, adjust them with the "
        "calculator, then compare.",
    )


def _lookup_plan(goal: str, names: list[str], task: str) -> dict[str, Any]:
    plan = _PlanBuilder()
    if names:
        refs = [plan.search(name, f"Look up {name}") for name in names]
    else:
        refs = [plan.search(goal, "Search for the goal text")]
    args = {"task": task, "instruction": goal, "inputs": refs, "labels": names or [goal[:80]]}
    what = f"{len(refs)} lookups in parallel" if len(refs) > 1 else "one lookup"
    return plan.synthesize(args, "Answer from the lookups", f"{what}, then answer.")


# --- public API --------------------------------------------------------------------


def plan_for_goal(goal: str) -> dict[str, Any]:
    """Plan a goal as a DAG of steps ending in one ``synthesize`` step.

    Args:
        goal: The goal text (any text; blank text gets a one-lookup plan).

    Returns:
        Plan JSON: ``{"steps": [{"id": int, "kind": "tool" | "synthesize",
        "tool": str (tool steps only), "args": dict, "description": str}, ...],
        "rationale": str}``. Step ids are 1, 2, ...; arguments refer to earlier
        outputs as ``"$N"`` or ``"$N.value"``. The synthesize step's args hold
        ``task``, ``instruction``, ``inputs`` (references) and task-specific keys
        (``labels``, ``options``, ``comparison``, ``result``).
    """
    text = goal if isinstance(goal, str) else str(goal)
    remembered = memory_goals.memory_plan(text, _PlanBuilder())
    if remembered is not None:
        return remembered
    movie = movie_request(text)
    if movie is not None:
        liked, options = movie
        return _movie_plan(text, liked[: MAX_LOOKUPS * 2], options)
    expression = arithmetic_expression(text)
    if expression is not None and not lookup_names(text):
        return _arithmetic_plan(text, expression)
    reading = parse_numeric_goal(text, max_entities=MAX_LOOKUPS)
    if reading is not None:
        return _numeric_plan(text, reading)
    pair = compared_pair(text)
    if pair is not None:
        return _lookup_plan(text, pair, "compare")
    names = lookup_names(text)
    return _lookup_plan(text, names, "compare" if len(names) == 2 else "summary")


def synthesize_answer(payload: dict[str, Any]) -> str:
    """Write the final answer from the goal and the resolved synthesize arguments.

    Args:
        payload: ``{"goal": str, "args": dict}``: the synthesize step's args with every
            reference replaced by the referenced output (``inputs`` becomes a list of
            search outputs ``{"query", "hits": [...], "value"}`` or calculator outputs
            ``{"expression", "value"}``; ``result`` likewise).

    Returns:
        A short answer: the chosen option for movie goals, the name or number for
        quantitative goals (with the values used), "yes"/"no" or a name for
        two-entity questions, otherwise a summary of the lookups.
    """
    return answers.answer(payload)


_NUMBER_CRITERIA = re.compile(
    r"\b(?:number|numeric|numerical|value|amount|figure|quantity|how many|how much|count)\b",
    re.IGNORECASE,
)


def validate_output(payload: dict[str, Any]) -> dict[str, Any]:
    """Check a step's output against plain-language criteria.

    Args:
        payload: ``{"goal": str, "criteria": str, "target": <resolved output>}``.

    Returns:
        ``{"ok": bool, "reason": str}``: not ok when the target is missing or empty, a
        search returned no hits, or the criteria ask for a number and the target has
        none.
    """
    target = payload.get("target")
    criteria = str(payload.get("criteria") or "")
    if target is None or target == "" or target == [] or target == {}:
        return {"ok": False, "reason": "the output is empty"}
    if isinstance(target, dict) and "hits" in target and not target.get("hits"):
        return {"ok": False, "reason": "the search returned no hits"}
    if _NUMBER_CRITERIA.search(criteria) and answers.number_in(target) is None:
        return {"ok": False, "reason": "the criteria ask for a number and the output has none"}
    return {"ok": True, "reason": "the output is present and fits the criteria"}
