"""Final answers of the ``sim`` synthesizer, computed from resolved step outputs.

Deterministic and plausible rather than an oracle: choices follow simple evidence
rules (shared words, numbers in the lookups) and remaining ties are broken by
SHA-256 of the goal, so the same input always gives the same answer.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from typing import Any

from shared.llm.providers.sim import memory_goals
from shared.llm.providers.sim.goal_parsing import DEMONYMS
from shared.llm.providers.sim.movies import movie_request

_STOPWORDS = frozenset(
    """
    the a an and or of in on at to for from by with as is are was were be been being it
    its this that these those which who whom whose what when where why how do does did
    has have had not no yes both same than then there their they he she his her them one
    two also more most less least into out over under about after before between other
    such only very can could would should will may might must shall known based
    """.split()
)
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")


def stable_index(key: str, count: int) -> int:
    """A deterministic index in ``range(count)`` derived from ``key`` (SHA-256)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % max(1, count)


def words(text: str) -> list[str]:
    """Lower-case content words of ``text`` (stopwords and 1-2 letter words dropped)."""
    return [w for w in re.findall(r"[^\W_]+", text.lower()) if len(w) > 2 and w not in _STOPWORDS]


def number_in(target: Any) -> float | None:
    """The numeric value carried by an output: ``value`` of a dict, a number, or the
    first number written in a string; None when there is none."""
    if isinstance(target, bool):
        return None
    if isinstance(target, int | float):
        return float(target) if math.isfinite(target) else None
    if isinstance(target, dict):
        return number_in(target.get("value"))
    if isinstance(target, str):
        match = _NUMBER.search(target)
        return float(match.group(0).replace(",", "")) if match else None
    return None


def fmt(number: float) -> str:
    """Format a number briefly: integers plainly, others with up to 3 decimals."""
    if abs(number - round(number)) < 1e-9:
        return str(round(number))
    digits = 3 if abs(number) < 10 else 2
    return f"{number:.{digits}f}".rstrip("0").rstrip(".")


def _hits(output: Any) -> list[dict[str, Any]]:
    if isinstance(output, dict) and isinstance(output.get("hits"), list):
        return [h for h in output["hits"] if isinstance(h, dict)]
    return []


def _stem(word: str) -> str:
    """Crude plural folding so that "magazines" matches "magazine"."""
    for suffix in ("ies", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def stems(text: str) -> set[str]:
    """Folded content words of ``text``."""
    return {_stem(w) for w in words(text)}


def _evidence(output: Any, name: str = "") -> str:
    """Text of the hits that plausibly concern ``name`` (all hits when no name): those
    that contain at least 60% of the name's content words."""
    name_words = stems(name)
    needed = math.ceil(0.6 * len(name_words))
    parts = []
    for hit in _hits(output):
        text = f"{hit.get('title', '')}. {hit.get('snippet', '')}"
        if not name_words or len(name_words & stems(text)) >= needed:
            parts.append(text)
    if not parts and isinstance(output, str):
        parts.append(output)
    return " ".join(parts)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


# --- movies ------------------------------------------------------------------------


def choose_option(goal: str, args: dict[str, Any]) -> str:
    """The option sharing most words with the liked movies and what their lookups found."""
    parsed = movie_request(goal)
    options = [str(o) for o in _as_list(args.get("options")) if str(o).strip()]
    liked = [str(t) for t in _as_list(args.get("labels"))]
    if parsed:
        options = options or parsed[1]
        liked = liked or parsed[0]
    if not options:
        return "No options were given to choose from."
    bag: Counter[str] = Counter()
    for title in liked:
        bag.update(words(title))
    for output in _as_list(args.get("inputs")):
        for hit in _hits(output):
            bag.update(words(f"{hit.get('title', '')} {hit.get('snippet', '')}"))
    liked_lower = {t.lower() for t in liked}

    def score(option: str) -> tuple[int, int, int, int]:
        own = set(words(option))
        overlap = own & set(bag)
        tiebreak = -stable_index(f"{goal}\n{option}", 1 << 30)
        return (
            int(option.lower() not in liked_lower),
            len(overlap),
            sum(bag[w] for w in overlap),
            tiebreak,
        )

    return max(options, key=score)


# --- quantitative comparisons --------------------------------------------------------


def numeric_answer(goal: str, args: dict[str, Any]) -> str:
    """Name the max/min entity or state the computed number, with the values used."""
    inputs = _as_list(args.get("inputs"))
    labels = [str(x) for x in _as_list(args.get("labels"))]
    labels += [f"value {i + 1}" for i in range(len(labels), len(inputs))]
    values = [number_in(x) for x in inputs]
    missing = [labels[i] for i, v in enumerate(values) if v is None]
    if missing:
        return (
            f"Could not determine the answer: no numeric value was found for {', '.join(missing)}."
        )
    if not values:
        return "Could not determine the answer: the lookups returned no values."
    used = "; ".join(f"{label}: {fmt(v)}" for label, v in zip(labels, values) if v is not None)
    comparison = args.get("comparison") or "max"
    if comparison == "value" or "result" in args:
        result = number_in(args.get("result"))
        if result is None:
            return f"Could not determine the answer: the final calculation gave no value ({used})."
        if re.search(r"\bin millions\b", goal, re.IGNORECASE) and abs(result) >= 1e5:
            return f"{fmt(result / 1e6)} million (values used: {used})"
        return f"{fmt(result)} (values used: {used})"
    pick = min if comparison == "min" else max
    best = pick(range(len(values)), key=lambda i: (values[i], -i))
    if args.get("pairwise"):
        return f"{fmt(values[best])} ({labels[best]}; values used: {used})"
    return f"{labels[best]} (values used: {used})"


# --- two-entity questions -------------------------------------------------------------

_YES_NO = re.compile(
    r"^\s*(?:q:\s*)?(?:are|is|was|were|do|does|did|has|have|had|can|could|will|would|should)\b",
    re.IGNORECASE,
)
_EARLY = re.compile(
    r"\b(?:first|earlier|earliest|older|oldest|before|sooner|prior)\b", re.IGNORECASE
)
_LATE = re.compile(
    r"\b(?:later|latest|recent\w*|younger|youngest|newer|newest|last|second)\b", re.IGNORECASE
)
_MORE = re.compile(
    r"\b(?:more|most|larger|largest|greater|greatest|higher|highest|taller|"
    r"tallest|longer|longest|bigger|biggest)\b",
    re.IGNORECASE,
)
_FEWER = re.compile(
    r"\b(?:fewer|fewest|less|least|smaller|smallest|lower|lowest|shorter)\b", re.IGNORECASE
)


def _first_year(text: str) -> float | None:
    match = _YEAR.search(text)
    return float(match.group(1)) if match else None


def compare_answer(goal: str, args: dict[str, Any]) -> str:
    """Answer a question about two looked-up entities: yes/no, one of them, or a trait."""
    inputs = _as_list(args.get("inputs"))
    labels = [str(x) for x in _as_list(args.get("labels"))][: len(inputs)]
    if len(labels) < 2:
        return summary_answer(goal, args)
    evidence = [_evidence(out, name) for out, name in zip(inputs, labels)]
    name_words = {w for label in labels for w in words(label)}
    key_terms = [w for w in words(goal) if w not in name_words]
    choice = " or " in goal.lower() or re.match(
        r"\s*(?:q:\s*)?(?:which|who)\b", goal, re.IGNORECASE
    )
    if _YES_NO.match(goal) and " or " not in goal.lower():
        return _yes_no(goal, labels, evidence, key_terms)
    if choice or _EARLY.search(goal) or _LATE.search(goal):
        return _choose(goal, labels, evidence, key_terms)
    shared = Counter(w for w in words(evidence[0]) if w not in name_words) & Counter(
        w for w in words(evidence[1]) if w not in name_words
    )
    if shared:
        term = max(sorted(shared), key=lambda w: shared[w])
        return f"{term} (a term the lookups for {labels[0]} and {labels[1]} share)"
    return f"The lookups for {labels[0]} and {labels[1]} do not say; no shared trait was found."


def _yes_no(goal: str, labels: list[str], evidence: list[str], key_terms: list[str]) -> str:
    if not all(evidence):
        verdict = ("yes", "no")[stable_index(goal, 2)]
        return f"{verdict} (the lookups found too little about {' and '.join(labels)} to be sure)"
    sets = [stems(text) for text in evidence]
    nations = [s & DEMONYMS for s in sets]
    if re.search(r"\b(?:same|both|from)\b", goal, re.IGNORECASE) and all(nations):
        shared = sorted(nations[0] & nations[1])
        if shared:
            return f"yes (both lookups say {shared[0]!r})"
        return f"no ({labels[0]}: {min(nations[0])!r}, {labels[1]}: {min(nations[1])!r})"
    key_terms = [_stem(t) for t in key_terms]
    in_both = [t for t in key_terms if all(t in s for s in sets)]
    if key_terms:
        if in_both:
            return f"yes (both lookups mention {in_both[0]!r})"
        return f"no (the lookups do not both mention {key_terms[-1]!r})"
    common = sorted(sets[0] & sets[1])
    return f"yes (both lookups mention {common[0]!r})" if common else "no (nothing in common found)"


def _choose(goal: str, labels: list[str], evidence: list[str], key_terms: list[str]) -> str:
    first, second = labels[0], labels[1]
    years = [_first_year(text) for text in evidence]
    numbers = [number_in(text) if text else None for text in evidence]
    if _EARLY.search(goal) and None not in years and years[0] != years[1]:
        return first if years[0] < years[1] else second
    if _LATE.search(goal) and None not in years and years[0] != years[1]:
        return first if years[0] > years[1] else second
    if _FEWER.search(goal) and None not in numbers and numbers[0] != numbers[1]:
        return first if numbers[0] < numbers[1] else second
    if _MORE.search(goal) and None not in numbers and numbers[0] != numbers[1]:
        return first if numbers[0] > numbers[1] else second
    scores = [
        sum(1 for t in {_stem(k) for k in key_terms} if t in stems(text)) for text in evidence
    ]
    if scores[0] != scores[1]:
        return first if scores[0] > scores[1] else second
    return labels[stable_index(goal, 2)]


# --- everything else ------------------------------------------------------------------


def summary_answer(goal: str, args: dict[str, Any]) -> str:
    """Sum up what the lookups or calculations found."""
    inputs = _as_list(args.get("inputs"))
    labels = [str(x) for x in _as_list(args.get("labels"))]
    parts = []
    for i, output in enumerate(inputs):
        if isinstance(output, dict) and "expression" in output:
            parts.append(f"{output['expression']} = {fmt(number_in(output) or 0.0)}")
            continue
        hits = _hits(output)
        if hits:
            snippet = str(hits[0].get("snippet", "")).split(". ")[0].strip()
            parts.append(f"{hits[0].get('title', '')}: {snippet}".strip(": "))
        elif isinstance(output, str | int | float) and not isinstance(output, bool):
            parts.append(str(output))
        else:
            parts.append(f"nothing found for {labels[i] if i < len(labels) else 'a lookup'}")
    if not parts:
        return "No information was available to answer the goal."
    return "; ".join(parts)


def arithmetic_answer(goal: str, args: dict[str, Any]) -> str:
    """State the calculator's result."""
    inputs = _as_list(args.get("inputs"))
    value = number_in(inputs[0]) if inputs else None
    if value is None:
        return "Could not compute the result."
    return fmt(value)


def answer(payload: dict[str, Any]) -> str:
    """Dispatch on the synthesize args' ``task`` (inferred when absent)."""
    goal = str(payload.get("goal") or "")
    args = payload.get("args") if isinstance(payload.get("args"), dict) else {}
    task = args.get("task")
    if task is None:
        if args.get("options") or movie_request(goal):
            task = "choose_option"
        elif args.get("comparison") or args.get("result") is not None:
            task = "numeric"
        elif len(_as_list(args.get("labels"))) == 2:
            task = "compare"
    handler = {
        "choose_option": choose_option,
        "numeric": numeric_answer,
        "compare": compare_answer,
        "arithmetic": arithmetic_answer,
        "remember": memory_goals.remember_answer,
    }.get(task, summary_answer)
    return handler(goal, args)
