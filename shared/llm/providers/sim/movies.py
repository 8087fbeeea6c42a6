"""Parsing movie requests for the ``sim`` planner: "Find a movie similar to A, B, C, D"
followed by an optional "Options:" block, one option per line."""

from __future__ import annotations

import re

_MOVIE_GOAL = re.compile(
    r"(?is)\b(?:movies?|films?)\b[^\n]*?\b(?:similar to|like)\s+(?P<list>[^\n]+)"
)
_OPTION_PREFIX = re.compile(r"^\s*(?:\([A-Za-z0-9]\)|[-*•])\s*")
_NAME_SUFFIXES = frozenset(
    "inc inc. ltd ltd. co co. corp corp. llc jr jr. sr sr. ii iii iv".split()
)


def _merge_score(left: str, right: str) -> int:
    """How strongly "left, right" looks like one title split at its comma."""
    score = 0
    if right.lower() in _NAME_SUFFIXES:
        score += 3  # "Monsters, Inc"
    if re.search(r"(?:^|\s)(?:&|and)(?:\s|$)", right):
        score += 1  # "Lock, Stock & Two Smoking Barrels": a serial list inside a title
    if len(left.split()) == 1:
        score += 1
    if len(right.split()) == 1:
        score += 1
    if right[:1].islower():
        score += 2
    if re.match(r"(?i)(?:the|a|an)\s", right):
        score -= 1
    return score


def split_title_list(text: str, expected: int = 4) -> list[str]:
    """Split a comma-separated list of titles, re-joining titles that hold a comma.

    While there are more than ``expected`` pieces, the adjacent pair that looks most
    like one title ("Monsters, Inc") is merged, if the evidence is strong enough.

    Args:
        text: "A, B, C, D" (an "and" before the last item is allowed).
        expected: How many titles the list is expected to hold.

    Returns:
        The titles.
    """
    parts = [p.strip() for p in text.strip().rstrip(".?!").split(",") if p.strip()]
    if parts and len(parts) < expected and re.search(r"\sand\s", parts[-1]):
        head, _, last = parts[-1].rpartition(" and ")
        parts[-1:] = [p for p in (head.strip(), last.strip()) if p]
    while len(parts) > expected:
        scores = [_merge_score(parts[i], parts[i + 1]) for i in range(len(parts) - 1)]
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        if scores[best] < 2:
            break
        parts[best : best + 2] = [f"{parts[best]}, {parts[best + 1]}"]
    return parts


def movie_request(goal: str) -> tuple[list[str], list[str]] | None:
    """Parse "Find a movie similar to A, B, C, D" plus an optional "Options:" block.

    Args:
        goal: The goal text.

    Returns:
        ``(liked_titles, options)``, or None when the goal is not a movie request.
    """
    match = _MOVIE_GOAL.search(goal)
    if not match:
        return None
    options: list[str] = []
    block = re.split(r"(?im)^\s*options?\s*:\s*$", goal, maxsplit=1)
    if len(block) == 2:
        for line in block[1].splitlines():
            line = _OPTION_PREFIX.sub("", line).strip()
            if line:
                options.append(line)
    liked = split_title_list(match.group("list"))
    liked = [t for t in liked if t][:16]
    return (liked, options) if liked else None
