"""Goal templates: a goal's text with its entities replaced by placeholders, and the
substitution that carries an earlier plan over to a goal of the same template.

Entities are quoted strings (``"..."`` or ``“...”``), numbers (``20``, ``3.5``,
``1,000``) and capitalised names (runs of capitalised words, joined by ``of``, ``the``,
``de`` ...; a leading sentence word such as ``What`` or ``The`` is not part of a name).
Two goals with the same template differ only in their entities, so the plan of one can
serve the other once each earlier entity is replaced by the new one wherever it occurs
in the plan's arguments. :func:`carry_over` also refuses the cases where that is unsafe:
a plan holding numbers or names that are not entities of its goal (they may be derived
from them, "20% deeper" -> ``* 1.2``), unless those entities did not change.

Pure functions: no I/O. Used by the worker's planner (reuse) and by the episode index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.domain.refs import REF_PATTERN

NAME, NUMBER, QUOTED = "E", "N", "Q"

_QUOTED = re.compile(r'"([^"\n]{1,2000})"|“([^”\n]{1,2000})”')
_NUMBER = re.compile(r"(?<![\w.$])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])"
                     r"|(?<![\w.$])-?\d+(?:\.\d+)?(?![\w])")
_JOINERS = r"(?:of|the|de|la|le|du|del|da|von|van|der|y)"
_NAME = re.compile(rf"\b[A-Z][\w-]*(?:(?:[ \t]+{_JOINERS})*[ \t]+[A-Z][\w-]*)*")
_STARTERS = frozenset("""
    What Which Who Whom Whose When Where Why How If Is Are Was Were Do Does Did Find Give
    List Name Tell The A An In On Of At Compare Double Triple Halve Calculate Compute
    Please Both Between Given Considering With Take Options And Or But For From By To It
    Its That This These Those There Then Than Also Can Could Would Should Will May Might
    Must Has Have Had Not Yes No Look Search Add Multiply Divide Subtract Imagine Suppose
    Assuming After Before Now Show Explain Describe Summarize Answer
""".split())
_WORD = re.compile(r"[A-Za-z]{2,}")
_CAPITALISED = re.compile(r"\b[A-Z][\w-]*")
_PLACEHOLDER = re.compile(r"<[ENQ]\d+>")


@dataclass(frozen=True)
class Template:
    """A goal's template and its entities.

    Attributes:
        text: Lower-cased goal text, whitespace squeezed, each entity replaced by a
            placeholder ``<E1>`` (names), ``<N1>`` (numbers), ``<Q1>`` (quoted); the same
            value twice gets the same placeholder.
        entities: Placeholder -> the entity's text as written in the goal.
        words: Words of the template outside placeholders (how much text it fixes).
    """

    text: str
    entities: dict[str, str]
    words: int


def _names(goal: str, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans = []
    for match in _NAME.finditer(goal):
        start, end = match.span()
        words = match.group(0).split()
        while words and words[0].capitalize() in _STARTERS:  # "What Paris", "BOTH Paris"
            start = goal.index(words[0], start) + len(words[0])
            words = words[1:]
            while start < end and goal[start].isspace():
                start += 1
        if words and not any(s < end and start < e for s, e in taken):
            spans.append((start, end))
    return spans


def template_of(goal: str) -> Template:
    """The template of ``goal`` (any text; at most its first 4,000 characters are read).

    Returns:
        The :class:`Template`; a goal without entities is its own template.
    """
    goal = goal[:4_000]
    found: list[tuple[int, int, str, str]] = []  # start, end, kind, value
    for match in _QUOTED.finditer(goal):
        found.append((*match.span(), QUOTED, match.group(1) or match.group(2)))
    taken = [(s, e) for s, e, _, _ in found]
    for match in _NUMBER.finditer(goal):
        if not any(s < match.end() and match.start() < e for s, e in taken):
            found.append((*match.span(), NUMBER, match.group(0)))
    taken = [(s, e) for s, e, _, _ in found]
    for start, end in _names(goal, taken):
        found.append((start, end, NAME, goal[start:end]))
    found.sort()
    placeholders: dict[tuple[str, str], str] = {}
    counts = {NAME: 0, NUMBER: 0, QUOTED: 0}
    parts, cursor = [], 0
    for start, end, kind, value in found:
        key = (kind, value)
        if key not in placeholders:
            counts[kind] += 1
            placeholders[key] = f"<{kind}{counts[kind]}>"
        parts.append(goal[cursor:start].lower())
        parts.append(placeholders[key])
        cursor = end
    parts.append(goal[cursor:].lower())
    text = " ".join("".join(parts).split())
    words = len(_WORD.findall(_PLACEHOLDER.sub(" ", text)))
    return Template(text=text, entities={p: v for (_, v), p in placeholders.items()},
                    words=words)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _json_numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _json_numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _json_numbers(v)]
    return []


def _pattern(values: list[str]) -> re.Pattern[str] | None:
    if not values:
        return None
    alternatives = "|".join(re.escape(v) for v in sorted(set(values), key=len, reverse=True))
    return re.compile(rf"(?<![\w.${{])(?:{alternatives})(?![\w]|\.\d)")


def _replace(value: Any, pattern: re.Pattern[str] | None, mapping: dict[str, str]) -> Any:
    if pattern is None:
        return value
    if isinstance(value, str):
        return pattern.sub(lambda m: mapping[m.group(0)], value)
    if isinstance(value, dict):
        return {k: _replace(v, pattern, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, pattern, mapping) for v in value]
    return value


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def carry_over(source: Template, source_goal: str, target: Template,
               plan: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The plan of ``source`` rewritten for ``target``, or None with the reason why not.

    Each entity of the source goal is replaced by the target's entity of the same
    placeholder in every string of the steps' ``args`` and ``description`` (whole
    words only, never inside a step reference such as ``$1.value``). The result still
    has to pass plan validation before it may run. The checks below read the
    arguments only: a description is prose that never runs.

    Refused (None) when the templates differ; when a target entity holds ``$`` (it could
    read as a step reference); when, after taking the source's entities out, the plan's
    strings still hold a number (or a capitalised word absent from the source goal) and
    the numbers (names) of the two goals differ, since such a literal may have been
    derived from an entity ("20% deeper" -> ``* 1.2``); or when a JSON number in the
    arguments equals a numeric entity that changed.

    Args:
        source: Template of the goal whose plan succeeded.
        source_goal: That goal's text.
        target: Template of the goal to plan.
        plan: The source's plan JSON (``{"steps": [...], "rationale": ...}``).

    Returns:
        ``(plan JSON, "")`` or ``(None, reason)``.
    """
    if source.text != target.text or source.entities.keys() != target.entities.keys():
        return None, "templates differ"
    if any("$" in v for v in target.entities.values()):
        return None, "an entity holds '$'"
    changed = {p[1] for p, v in source.entities.items() if target.entities[p] != v}
    steps = plan.get("steps") or []
    texts = _strings([s.get("args") for s in steps])  # descriptions do not run
    mask = _pattern(list(source.entities.values()))
    blank = {v: " " for v in source.entities.values()}
    residue = " ".join(REF_PATTERN.sub(" ", _replace(t, mask, blank)) for t in texts)
    if NUMBER in changed:
        if _NUMBER.search(residue):
            return None, "the plan holds numbers not in its goal"
        numbers = {_number(v) for p, v in source.entities.items() if p[1] == NUMBER}
        if numbers & set(_json_numbers([s.get("args") for s in steps])):
            return None, "a JSON number in the plan equals a number of its goal"
    if NAME in changed:
        known = set(_CAPITALISED.findall(source_goal))
        if any(w not in known for w in _CAPITALISED.findall(residue)):
            return None, "the plan holds names not in its goal"
    mapping = {v: target.entities[p] for p, v in source.entities.items()}
    new_steps = [s | {"args": _replace(s.get("args", {}), mask, mapping),
                      **({"description": _replace(s["description"], mask, mapping)}
                         if isinstance(s.get("description"), str) else {})}
                 for s in steps]
    return {"steps": new_steps, "rationale": plan.get("rationale")}, ""
