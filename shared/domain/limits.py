"""Limits on untrusted JSON: depth, size, NUL characters, lone surrogates, NaN and infinity.

One set of checks for everything that crosses a trust boundary as JSON: request bodies at
the gateway (on the raw bytes, before pydantic sees them), goal metadata, step arguments,
and plans, whether a client or an LLM wrote them. Postgres ``jsonb`` and ``text`` refuse
NUL characters and lone surrogates, ``numeric`` columns have a range, and deep nesting
makes serializers recurse; a document that passes here can be stored and shown again.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from shared.errors import RequestError

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a JSON string literal
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# JSON text can only hold a NUL or a lone surrogate as an escape (raw ones are invalid
# JSON or invalid UTF-8): without one of these, no string needs to be walked.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


class InputLimitError(RequestError, ValueError):
    """A JSON document or value breaks an input limit (HTTP 422 at the gateway).

    A ValueError too, so that pydantic validators raising it report a validation error.
    """


def _refuse_constant(name: str) -> Any:
    raise InputLimitError(f"{name} is not a valid JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise InputLimitError(f"number {text[:40]} is out of range")
    return value


def _check(value: Any, max_depth: int, where: str) -> None:
    """Walk ``value`` iteratively (no recursion): depth, strings and numbers."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise InputLimitError(f"{where} is nested deeper than {max_depth} levels")
            children = item.items() if isinstance(item, dict) else ((None, v) for v in item)
            for key, child in children:
                if key is not None:
                    _check_string(key, where)
                stack.append((child, depth + 1))
        elif isinstance(item, str):
            _check_string(item, where)
        elif isinstance(item, float) and not math.isfinite(item):
            raise InputLimitError(f"{where} holds a number that is NaN or infinite")


def _check_string(text: Any, where: str) -> None:
    if not isinstance(text, str):
        return
    if "\x00" in text:
        raise InputLimitError(f"{where} holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputLimitError(f"{where} holds a lone surrogate (not valid UTF-8)") from None


def check_json_document(raw: bytes | str, max_depth: int, *, where: str = "body") -> Any:
    """Parse untrusted JSON text and check it; returns the parsed value.

    Nesting is measured on the text before parsing (so a deep document costs no
    recursion); ``NaN``, ``Infinity`` and numbers that overflow a float (``1e400``) are
    refused while parsing; if the text holds a ``\\u0000`` or surrogate escape, the
    parsed value is walked: every string (keys included) must be encodable as UTF-8 and
    hold no NUL character.

    Args:
        raw: The document, as bytes (UTF-8) or text.
        max_depth: Most levels of objects and arrays allowed (``{}`` is 1).
        where: What the document is, for the error message (``body``, ``plan``).

    Returns:
        The parsed JSON value.

    Raises:
        InputLimitError: The document is not JSON or breaks a limit.
    """
    try:
        text = raw.decode("utf-8", errors="strict") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise InputLimitError(f"{where} is not valid UTF-8") from None
    _check_raw_depth(text, max_depth, where)
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except InputLimitError:
        raise
    except (ValueError, RecursionError) as exc:
        raise InputLimitError(f"{where} is not valid JSON: {type(exc).__name__}") from None
    if _SUSPECT_ESCAPE.search(text):
        _check(value, max_depth, where)
    return value


def _check_raw_depth(text: str, max_depth: int, where: str) -> None:
    """Most nesting of ``[`` and ``{`` outside strings: string literals are cut out and
    the brackets left are summed as +1/-1 (regular expressions and ``accumulate`` run in
    C, so a megabyte costs milliseconds, not a Python loop per character)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return
    deepest = max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)))
    if deepest > max_depth:
        raise InputLimitError(f"{where} is nested deeper than {max_depth} levels")


def check_json_value(value: Any, *, max_depth: int, max_bytes: int | None = None,
                     where: str = "value") -> Any:
    """Check an already parsed JSON value (metadata, step arguments, an LLM's plan).

    Args:
        value: JSON-shaped data (dicts, lists, strings, numbers, booleans, None).
        max_depth: Most levels of objects and arrays allowed (``{}`` is 1).
        max_bytes: Most bytes of its compact JSON serialization (UTF-8), or None.
        where: What the value is, for the error message.

    Returns:
        ``value`` unchanged.

    Raises:
        InputLimitError: The value breaks a limit.
    """
    _check(value, max_depth, where)
    if max_bytes is not None:
        try:
            size = len(json.dumps(value, separators=(",", ":"), allow_nan=False,
                                  ensure_ascii=False).encode("utf-8"))
        except (TypeError, ValueError) as exc:
            raise InputLimitError(f"{where} is not JSON: {type(exc).__name__}") from None
        if size > max_bytes:
            raise InputLimitError(f"{where} is {size} bytes, more than {max_bytes}")
    return value
