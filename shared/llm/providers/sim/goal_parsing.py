"""Entity extraction for the ``sim`` planner: names and compared pairs.

Everything here is a general linguistic heuristic over the goal text (capitalisation,
connector words, list punctuation). Nothing reads files or knows any data set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Capitalised words that open a sentence or a question without naming anything.
SENTENCE_STARTERS = frozenset(
    """
    if given with take considering consider suppose supposing assuming assume after before
    upon factoring identify compute calculate determine find answer then in on at by for
    from to of among between what which who whom whose when where why how is are was were
    be do does did has have had can could would will should shall may might must both
    either neither q a an and or but so also let please tell give show list name compare
    imagine say now this that these those it its there here hello hi hey yes no i we you
    they he she my our your their his her options note not the while whereas although
    though since because as assuming say explain describe estimate using use based
    """.split()
)
# Words that are never part of a name, wherever they stand.
ALWAYS_STOP = frozenset("which who whom whose what when where why how q options answer".split())

# Lowercase words allowed inside a name ("Statue of Unity", "South Dakota v. Dole").
NAME_CONNECTORS = frozenset(
    "of the de la le les du des del della da di do dos das van von der den y e v. vs. vs & "
    "al el bin ibn".split()
)
# Looser set for titles of works ("The Strongest Man in the World").
TITLE_CONNECTORS = NAME_CONNECTORS | frozenset("a an in on at for to from with et il".split())

# Single capitalised adjectives that describe rather than name.
DEMONYMS = frozenset(
    """
    american english british french german italian spanish canadian australian japanese
    chinese indian russian irish scottish welsh mexican brazilian korean dutch swedish
    norwegian danish polish european african asian greek turkish persian israeli
    argentine argentinian portuguese swiss austrian belgian finnish egyptian
    """.split()
)

_TOKEN = re.compile(r"(?P<word>[^\W_][\w'’\-–\.&/#]*)|(?P<punct>[^\w\s])")
_ENUMERATOR = re.compile(r"^\d+\.$")


@dataclass(frozen=True)
class Token:
    """One word or punctuation mark of a goal.

    Attributes:
        text: The token as written.
        start: Offset of its first character in the goal.
        end: Offset just past its last character.
        is_word: False for punctuation.
        sentence_start: True for the first word of a sentence.
    """

    text: str
    start: int
    end: int
    is_word: bool
    sentence_start: bool = False

    @property
    def lower(self) -> str:
        """The token in lower case."""
        return self.text.lower()

    @property
    def is_capitalised(self) -> bool:
        """True for words that may start or continue a name (``Everest``, ``K2``)."""
        if not self.is_word:
            return False
        first = self.text[0]
        return first.isupper() or (first.isdigit() and any(c.isupper() for c in self.text))

    @property
    def is_number(self) -> bool:
        """True for a bare integer such as ``282``."""
        return self.is_word and self.text.isdigit()


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into words and punctuation, marking sentence starts.

    A trailing period is split off a word longer than three letters (``Everest.``) but
    kept on abbreviations and initials (``St.``, ``v.``, ``J.``). Enumerators such as
    ``1.`` count as punctuation that opens a sentence.

    Args:
        text: Any text.

    Returns:
        The tokens in order.
    """
    raw: list[tuple[str, int, int, bool]] = []
    for match in _TOKEN.finditer(text):
        word = match.group("word")
        start, end = match.span()
        if word is None:
            raw.append((match.group(0), start, end, match.group(0) == "&"))
            continue
        core = word.rstrip(".")
        if word.endswith(".") and (_ENUMERATOR.match(word) or (len(core) > 3 and "." not in core)):
            if core and not _ENUMERATOR.match(word):
                raw.append((core, start, start + len(core), True))
            raw.append((".", end - 1, end, False))
        else:
            raw.append((word, start, end, True))
    tokens: list[Token] = []
    at_start = True
    for text_, start, end, is_word in raw:
        tokens.append(Token(text_, start, end, is_word, is_word and at_start))
        if is_word:
            at_start = False
        if text_ in {".", "?", "!", ":", "\n"} or text_ == ";":
            at_start = True
    return tokens


def _is_stop(token: Token) -> bool:
    low = re.sub(r"['’](?:s|re|ll|d|ve)$", "", token.lower)
    return low in ALWAYS_STOP or (token.sentence_start and low in SENTENCE_STARTERS)


def _name_part(token: Token) -> bool:
    return token.is_capitalised and not _is_stop(token)


def clean_name(text: str, *, drop_article: bool = False) -> str:
    """Tidy an extracted name: possessive and stray punctuation off, spaces collapsed.

    Args:
        text: The raw name.
        drop_article: Also drop a leading "The".

    Returns:
        The cleaned name (possibly empty).
    """
    name = re.sub(r"\s+", " ", text).strip(" ,;:.?!\"'")
    name = re.sub(r"(?:'s|’s|')$", "", name)
    if drop_article:
        name = re.sub(r"^(?:the|a|an)\s+", "", name, flags=re.IGNORECASE)
    return name.strip()


def _trim(run: list[Token], connectors: frozenset[str]) -> list[Token]:
    """Drop connectors (written in lower case) from both ends of a run."""
    while run and run[0].text in connectors:
        run = run[1:]
    while run and run[-1].text in connectors:
        run = run[:-1]
    return run


def _text_of(goal: str, run: list[Token]) -> str:
    return goal[run[0].start : run[-1].end] if run else ""


@dataclass(frozen=True)
class Mention:
    """A name found in a goal, with where it stands."""

    name: str
    start: int
    end: int


def name_mentions(goal: str, *, drop_article: bool = True) -> list[Mention]:
    """Every capitalised name in ``goal``, in order (repeats included).

    A name is a run of capitalised words, possibly joined by connectors such as "of"
    and "the" ("Statue of Unity", "Christ the Redeemer"); a bare number may close it
    ("Local 282"). Sentence-opening function words ("If", "Which") are skipped.

    Args:
        goal: The goal text.
        drop_article: Drop a leading "The" from each name.

    Returns:
        The mentions with their offsets.
    """
    tokens = tokenize(goal)
    mentions: list[Mention] = []
    i = 0
    while i < len(tokens):
        if not _name_part(tokens[i]):
            i += 1
            continue
        run = [tokens[i]]
        j = i + 1
        while j < len(tokens):
            tok = tokens[j]
            if _name_part(tok):
                run.append(tok)
                j += 1
                continue
            if tok.is_number and run[-1].is_capitalised:
                nxt = tokens[j + 1] if j + 1 < len(tokens) else None
                if nxt is None or nxt.text not in {"%", "."}:
                    run.append(tok)
                    j += 1
                break
            if tok.lower in NAME_CONNECTORS or tok.text == "&":
                k = j
                while k < len(tokens) and (
                    tokens[k].lower in NAME_CONNECTORS or tokens[k].text == "&"
                ):
                    k += 1
                if k < len(tokens) and _name_part(tokens[k]):
                    run.extend(tokens[j:k])
                    j = k
                    continue
            break
        run = _trim(run, NAME_CONNECTORS)
        name = clean_name(_text_of(goal, run), drop_article=drop_article)
        if name and not (len(run) == 1 and name.lower() in DEMONYMS):
            mentions.append(Mention(name, run[0].start, run[-1].end))
        i = j
    return mentions


def unique_names(mentions: list[Mention]) -> list[str]:
    """Distinct names in order of first mention (case-insensitive)."""
    seen: dict[str, str] = {}
    for mention in mentions:
        seen.setdefault(mention.name.lower(), mention.name)
    return list(seen.values())


_SKIPPABLE = frozenset(',!.:"')
_PREPOSITIONS = frozenset("from in of at to for by with near on".split())
_QUOTED = re.compile(r"[\"“]([^\"“”]{2,80})[\"”]")


def _walk(tokens: list[Token], index: int, step: int, connectors: frozenset[str]) -> list[Token]:
    """Collect a name from ``tokens[index]`` outwards (step -1: leftwards, +1: rightwards).

    Punctuation right next to the conjunction is skipped ("Steven Tyler, or ..."); an
    article after it too ("or the McIntyre Mines"). Leftwards, one lower-case word may
    end the name when a capitalised word precedes it ("Water dropwort and Costus").
    """
    i = index
    while 0 <= i < len(tokens) and tokens[i].text in _SKIPPABLE:
        i += step
    if step > 0:
        while i < len(tokens) and tokens[i].text in {"the", "a", "an"}:
            i += 1
    run: list[Token] = []
    if (
        step < 0
        and i >= 1
        and tokens[i].is_word
        and tokens[i].text.islower()
        and tokens[i].text not in connectors
        and _name_part(tokens[i - 1])
    ):
        run.append(tokens[i])
        i -= 1
    while 0 <= i < len(tokens):
        tok = tokens[i]
        if _is_stop(tok):
            break
        if not (tok.is_capitalised or tok.is_number or tok.text in connectors or tok.text == "&"):
            break
        run.append(tok)
        i += step
    if step < 0:
        run.reverse()
    return _trim(run, connectors)


def _segment_before(text: str, tokens: list[Token], index: int) -> str:
    """The words between the last comma or colon and ``tokens[index]`` (at most 5)."""
    i = index - 1
    while i >= 0 and tokens[i].text not in {",", ":", ";", "?", "."}:
        i -= 1
    words = tokens[i + 1 : index]
    if not words or len(words) > 5 or not words[0].is_capitalised:
        return ""
    return clean_name(text[words[0].start : words[-1].end])


def _is_real_name(name: str) -> bool:
    """True if ``name`` holds a capitalised word that is not a nationality adjective."""
    return any(
        w[:1].isupper() or w[:1].isdigit()
        for w in name.split()
        if w.lower().strip(".,") not in DEMONYMS
    )


def quoted_titles(goal: str) -> list[str]:
    """Titles written in double quotes, in order ("Bambi" or "Underdog")."""
    return [t for t in (clean_name(m) for m in _QUOTED.findall(goal)) if t]


def compared_pair(goal: str) -> list[str] | None:
    """The two things a comparison question is about.

    Tried in order: two quoted titles; "X or Y"; "X and Y"; "X ... than Y". For
    example "Which writer was from England, Henry Roth or Robert Erskine Childers?"
    gives ``["Henry Roth", "Robert Erskine Childers"]`` and "Were Scott Derrickson and
    Ed Wood of the same nationality?" gives ``["Scott Derrickson", "Ed Wood"]``.

    Args:
        goal: The question.

    Returns:
        Two names, or None when no pair is found.
    """
    quoted = quoted_titles(goal)
    if len(quoted) == 2 and quoted[0].lower() != quoted[1].lower():
        return quoted
    text = re.sub(r",(?=\S)", ", ", goal)
    tokens = tokenize(text)
    for word, connectors in (("or", TITLE_CONNECTORS | {"and"}), ("and", TITLE_CONNECTORS)):
        for i, tok in enumerate(tokens):
            if tok.text != word:
                continue
            left_run = _walk(tokens, i - 1, -1, connectors)
            right_run = _walk(tokens, i + 1, 1, connectors)
            left = clean_name(_text_of(text, left_run))
            right = clean_name(_text_of(text, right_run))
            if word == "or" and right and not left:
                left = _segment_before(text, tokens, i)
            names = [left, right]
            if all(names) and all(map(_is_real_name, names)) and left.lower() != right.lower():
                return names
    for i, tok in enumerate(tokens):
        if tok.text == "than":
            right = clean_name(_text_of(text, _walk(tokens, i + 1, 1, NAME_CONNECTORS)))
            before = name_mentions(text[: tok.start], drop_article=False)
            if right and before and _is_real_name(right) and before[0].name != right:
                return [before[0].name, right]
    return None


def lookup_names(goal: str, limit: int = 5) -> list[str]:
    """Names worth looking up for a free-form question (at most ``limit``).

    Quoted titles first; otherwise capitalised names. When there are more than two,
    names right after a preposition ("from Canada") are taken as details and dropped,
    as long as two names remain.

    Args:
        goal: The question.
        limit: Cap on the number of names.

    Returns:
        Distinct names in order of first mention (possibly empty).
    """
    quoted = quoted_titles(goal)
    if len(quoted) >= 2:
        return list(dict.fromkeys(quoted))[:limit]
    mentions = name_mentions(goal)
    names = unique_names(mentions)
    if len(names) > 2:
        kept = [
            m
            for m in mentions
            if (goal[: m.start].split() or [""])[-1].lower() not in _PREPOSITIONS
        ]
        if len(unique_names(kept)) >= 2:
            names = unique_names(kept)
    return names[:limit]
