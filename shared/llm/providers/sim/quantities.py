"""Reading quantitative comparison goals for the ``sim`` planner.

"If Mariana Trench was 20% shallower and the Puerto Rico Trench was 20% deeper, which
one would be shallower?" is read as: two entities, the attribute each needs (depth),
a modifier per entity (x0.8, x1.2) and what to compute at the end (the minimum).
Only general wording is used: percentages, "N times", comparatives and superlatives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shared.llm.providers.sim.goal_parsing import Mention, compared_pair, name_mentions
from shared.llm.providers.sim.modifiers import (
    PERCENT,
    Modifier,
    direction,
    fmt,
    modifier_in,
)

# --- clauses -------------------------------------------------------------------

_PUNCT_SPLIT = re.compile(r"\s*[,;:]\s*|(?<=[a-z%)])\.\s+|\?\s*|\n+")
_WORD_SPLIT = re.compile(r"\s+(?:and|while|whereas|but|then)\s+", re.IGNORECASE)
_QUESTION_CUE = re.compile(
    r"\b(?:which|what|how|compute|calculate|determine|identify|find)\b", re.IGNORECASE
)

# --- entities and attributes -----------------------------------------------------

_ANIMAL = re.compile(
    r"\b(?:a|an)\s+([a-z]+(?:\s+[a-z]+)??)\s+(?=(?:that|which|who|with|flying|running|"
    r"runs|swimming|sprinting|galloping)\b)"
)
_HEAD_ATTRIBUTES = (
    (re.compile(r"\b(?:trench|abyss|deep)\b", re.IGNORECASE), "depth"),
    (re.compile(r"\b(?:river|canal)\b", re.IGNORECASE), "length"),
    (re.compile(r"\b(?:ocean|sea|desert|forest|rainforest|lake|island)\b", re.IGNORECASE), "area"),
    (
        re.compile(
            r"\b(?:mount|mt\.?|mountain|peak|volcano|tower|building|skyscraper|statue|"
            r"monument|spire|pyramid|waterfall|falls)\b",
            re.IGNORECASE,
        ),
        "height",
    ),
)
_TEXT_ATTRIBUTES = (
    (re.compile(r"\bpopulat\w*|\bpeople\b", re.IGNORECASE), "population"),
    (
        re.compile(r"\b(?:speed\w*|fast\w*|velocity|slow\w*|quick\w*|run\w*)\b", re.IGNORECASE),
        "top speed",
    ),
    (re.compile(r"\b(?:depth\w*|deep\w*|shallow\w*)\b", re.IGNORECASE), "depth"),
    (re.compile(r"\b(?:height\w*|tall\w*|high\w*|stack\w*|elevation)\b", re.IGNORECASE), "height"),
    (re.compile(r"\b(?:length\w*|long\w*|short\w*)\b", re.IGNORECASE), "length"),
    (re.compile(r"\b(?:area|size|covers?|ground|square|km\^?2|km²|land)\b", re.IGNORECASE), "area"),
)
_QUANT_CUES = re.compile(
    r"\b(?:ratio|difference|average|mean|combined|total|sum|how many times|how much|"
    r"larger|largest|smaller|smallest|taller|tallest|longer|longest|shorter|shortest|"
    r"deeper|deepest|faster|fastest|greater|greatest|bigger|biggest|more populous)\b",
    re.IGNORECASE,
)


def _one_letter_typo(a: str, b: str) -> bool:
    """True if ``a`` and ``b`` (8+ characters) differ in exactly one letter."""
    if len(a) != len(b) or len(a) < 8:
        return False
    diffs = [(x, y) for x, y in zip(a, b) if x != y]
    return len(diffs) == 1 and diffs[0][0].isalpha() and diffs[0][1].isalpha()


def _canonical(names: list[str], name: str) -> str:
    """Map a mention to an earlier name that is the same up to a one-letter typo
    ("Ushiku Faibutsu" and "Ushiku Daibutsu")."""
    for known in names:
        a, b = known.lower(), name.lower()
        if a == b or _one_letter_typo(a, b):
            return known
    return name


def _entity_mentions(goal: str) -> list[Mention]:
    mentions = name_mentions(goal)
    for match in _ANIMAL.finditer(goal):
        mentions.append(Mention(match.group(1), match.start(1), match.end(1)))
    return sorted(mentions, key=lambda m: m.start)


_EXPLICIT_ATTRIBUTE = re.compile(
    r"\b(?:depths?|heights?|lengths?|areas?|sizes?|population\w*|speeds?|elevations?|"
    r"velocity|density)\b",
    re.IGNORECASE,
)


def head_attribute(name: str) -> str | None:
    """The attribute a name's head noun implies ("Mariana Trench" -> depth), or None."""
    for pattern, attribute in _HEAD_ATTRIBUTES:
        if pattern.search(name):
            return attribute
    return None


def attribute_for(name: str, goal: str) -> str:
    """The measurable attribute a lookup of ``name`` needs (depth, length, area, ...)."""
    if _TEXT_ATTRIBUTES[0][0].search(goal) or re.search(r"\bdensity\b", goal, re.IGNORECASE):
        return "population"
    head = head_attribute(name)
    if head is not None:
        return head
    for pattern, attribute in _TEXT_ATTRIBUTES:
        if pattern.search(goal):
            return attribute
    return "facts"


# --- the question ----------------------------------------------------------------

_MIN_WORDS = re.compile(
    r"\b(?:shallow(?:er|est)|short(?:er|est)|small(?:er|est)|least|low(?:er|est)|"
    r"slow(?:er|est)|less|few(?:er|est)|minimum|min|narrow(?:er|est)|lesser)\b",
    re.IGNORECASE,
)
_MAX_WORDS = re.compile(
    r"\b(?:deep(?:er|est)|fast(?:er|est)|speediest|quick(?:er|est)|larg(?:er|est)|"
    r"long(?:er|est)|tall(?:er|est)|high(?:er|est)|bigg(?:er|est)|great(?:er|est)|most|more|"
    r"maximum|max|surpass\w*|wid(?:er|est)|heav(?:ier|iest))\b",
    re.IGNORECASE,
)
_EXTREMES = re.compile(
    r"\b(?:larg|long|tall|deep|bigg|great|high)est\b.{0,40}?\b(?:small|short|shallow|low)est\b"
    r"|\b(?:small|short|shallow|low)est\b.{0,40}?\b(?:larg|long|tall|deep|bigg|great|high)est\b"
    r"|\bsmallest\b.{0,30}\blargest\b|\bleast\b.{0,30}\bmost\b",
    re.IGNORECASE,
)


def _operation(question: str) -> str:
    """What the question computes: stack, ratio, difference, average, sum, or pick."""
    q = question.lower()
    if re.search(r"how many times|\bstack", q):
        return "stack"
    if "ratio" in q:
        return "ratio"
    if re.search(
        r"\bdifferences?\b|how much (?:deeper|taller|longer|higher|larger|bigger|more|"
        r"shorter|shallower|smaller|faster)",
        q,
    ):
        return "difference"
    if re.search(r"\baverages?\b|\bmean\b", q):
        return "average"
    if re.search(r"\bcombined\b|\btotal\b|\bsum\b|\baltogether\b", q):
        return "sum"
    return "pick"


def _pick(question: str) -> str:
    """``min`` or ``max``, from the first comparative or superlative in the question."""
    low = _MIN_WORDS.search(question)
    high = _MAX_WORDS.search(question)
    if low and (not high or low.start() < high.start()):
        return "min"
    return "max"


@dataclass
class NumericGoal:
    """What a quantitative comparison goal asks.

    Attributes:
        entities: Distinct entity names, in order of first mention.
        attributes: The attribute to look up for each entity.
        modifiers: The change applied to each entity (None when unchanged).
        operation: ``pick`` (name the max/min), ``ratio``, ``difference``, ``average``,
            ``sum`` or ``stack`` (how many of one fit into another).
        choose: ``max`` or ``min``: which entity ``pick`` names, or which pair value
            pairwise questions report.
        scope: ``all`` entities, or the ``extremes`` (largest and smallest).
        density: Compare population densities (population / area) instead.
        pairs: For pairwise questions, index pairs into ``entities``.
        numerator: For ``stack``: entity indices of the height to reach (empty: max).
        denominator: For ``stack``: entity indices of what is stacked (empty: min).
    """

    entities: list[str]
    attributes: list[str]
    modifiers: list[Modifier | None]
    operation: str
    choose: str
    scope: str = "all"
    density: bool = False
    pairs: list[tuple[int, int]] = field(default_factory=list)
    numerator: list[int] = field(default_factory=list)
    denominator: list[int] = field(default_factory=list)


def _split(pattern: re.Pattern[str], text: str, offset: int) -> list[tuple[int, int]]:
    spans, start = [], 0
    for match in pattern.finditer(text):
        if match.start() > start:
            spans.append((offset + start, offset + match.start()))
        start = match.end()
    if start < len(text):
        spans.append((offset + start, offset + len(text)))
    return spans


def _clauses(goal: str) -> list[tuple[int, int]]:
    """Clause spans: split at punctuation, then at conjunctions ("and", "while"),
    except in a clause that pairs lists up "respectively"."""
    spans: list[tuple[int, int]] = []
    for start, end in _split(_PUNCT_SPLIT, goal, 0):
        piece = goal[start:end]
        if "respectively" in piece.lower():
            spans.append((start, end))
        else:
            spans.extend(_split(_WORD_SPLIT, piece, start))
    return spans


def _assign_modifiers(
    goal: str, mentions: list[tuple[int, Mention]], count: int
) -> tuple[list[Modifier | None], int]:
    """Give each entity the change stated in its clause.

    A clause with an amount but no entity ("subtract 10% of its height") applies to the
    entity named just before; "X and Y increase by 30% and 10% respectively" pairs the
    lists up.

    Returns:
        The modifier of each entity (None when unchanged) and the offset where the
        last clause stating a change ends.
    """
    modifiers: list[Modifier | None] = [None] * count
    last_amount: tuple[float, str] | None = None
    last_sign: int | None = None
    last_entity: int | None = None
    last_end = 0
    for start, end in _clauses(goal):
        clause = goal[start:end]
        inside = [idx for idx, m in mentions if start <= m.start < end]
        if "respectively" in clause.lower() and len(inside) > 1:
            amounts = PERCENT.findall(clause)
            sign = direction(clause, 0) or last_sign or 1
            for idx, amount in zip(inside, amounts):
                fraction = float(amount) / 100
                text = f"(1 {'+' if sign > 0 else '-'} {fmt(fraction)})"
                modifiers[idx] = Modifier("*", 1 + sign * fraction, text)
            continue
        modifier, amount, sign = modifier_in(clause, last_amount, last_sign)
        if sign is not None:
            last_sign = sign
        if modifier is None:
            if inside:
                last_entity = inside[-1]
            continue
        last_amount = amount
        last_end = max(last_end, end)
        target = next((i for i in inside if modifiers[i] is None), None)
        if target is None and not inside and last_entity is not None:
            target = last_entity if modifiers[last_entity] is None else None
        if target is not None:
            modifiers[target] = modifier
        if inside:
            last_entity = inside[-1]
    return modifiers, last_end


def parse_numeric_goal(goal: str, max_entities: int = 8) -> NumericGoal | None:
    """Read a quantitative comparison goal.

    Args:
        goal: The goal text.
        max_entities: Cap on the entities kept.

    Returns:
        The reading, or None when the goal does not look quantitative (no modifiers,
        and not an attribute comparison between at least two named entities).
    """
    raw = _entity_mentions(goal)
    names: list[str] = []
    indexed: list[tuple[int, Mention]] = []
    for mention in raw:
        name = _canonical(names, mention.name)
        if name not in names:
            names.append(name)
        indexed.append((names.index(name), mention))
    modifiers, last_end = _assign_modifiers(goal, indexed, len(names))
    has_modifier = any(modifiers)
    attributes = [attribute_for(name, goal) for name in names]
    if len(names) < 2:
        return None
    if not has_modifier and not (
        _QUANT_CUES.search(goal)
        and (_EXPLICIT_ATTRIBUTE.search(goal) or any(map(head_attribute, names)))
    ):
        return None
    question = goal
    if has_modifier:
        cue = _QUESTION_CUE.search(goal)
        question = goal[cue.start() :] if cue else goal[last_end:] or goal
    operation = _operation(question)
    reading = NumericGoal(
        entities=names,
        attributes=attributes,
        modifiers=modifiers,
        operation=operation,
        choose=_pick(question),
        scope="extremes" if _EXTREMES.search(question) else "all",
        density=bool(re.search(r"\bdensity\b", goal, re.IGNORECASE)),
    )
    order = [idx for idx, _ in indexed]
    if (
        not has_modifier
        and operation in {"ratio", "difference", "average"}
        and len(order) >= 4
        and len(order) % 2 == 0
    ):
        reading.pairs = [(order[i], order[i + 1]) for i in range(0, len(order), 2)]
    elif not has_modifier and operation == "pick":
        pair = compared_pair(goal)
        if pair:
            reading.entities = pair
            reading.attributes = [attribute_for(name, goal) for name in pair]
            reading.modifiers = [None, None]
    if operation == "stack":
        _stack_roles(goal, indexed, reading)
    _cap(reading, max_entities)
    return reading


def _stack_roles(goal: str, indexed: list[tuple[int, Mention]], reading: NumericGoal) -> None:
    """Split entities into what is stacked and the height to reach."""
    match = re.search(
        r"\bstack\b(?P<what>.*?)\bto\s+(?:match|reach|equal)\b(?P<goal>.*)",
        goal,
        re.IGNORECASE | re.DOTALL,
    )
    if not match:
        return
    what = [i for i, m in indexed if match.start("what") <= m.start < match.end("what")]
    target = [i for i, m in indexed if match.start("goal") <= m.start]
    reading.denominator = list(dict.fromkeys(what))
    if re.search(
        r"\b(?:tallest|largest|highest|longest|biggest)\b", match.group("goal"), re.IGNORECASE
    ):
        reading.numerator = []
    elif target:
        reading.numerator = list(dict.fromkeys(target))
    else:
        reading.numerator = [i for i in range(len(reading.entities)) if i not in what][:1]


def _cap(reading: NumericGoal, limit: int) -> None:
    if len(reading.entities) <= limit:
        return
    reading.entities = reading.entities[:limit]
    reading.attributes = reading.attributes[:limit]
    reading.modifiers = reading.modifiers[:limit]
    reading.pairs = [(a, b) for a, b in reading.pairs if a < limit and b < limit]
    reading.numerator = [i for i in reading.numerator if i < limit]
    reading.denominator = [i for i in reading.denominator if i < limit]
