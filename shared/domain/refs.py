"""References from one step's arguments to earlier steps' outputs.

A plan's steps are numbered 1, 2, 3, ... . An argument refers to step N's output in
the style of LLMCompiler (Kim et al., ICML 2024): ``"$N"`` or ``"${N}"``, optionally
followed by a dotted path into a JSON object output, ``"$N.value"`` or
``"${N.hits}"``. Two rules decide what a reference becomes when the step runs:

* An argument string that is exactly one reference (``"$3"``, ``"$3.value"``) is
  replaced by the referenced value itself, whatever its JSON type.
* A reference inside a longer string (``"$1.value * 0.8"``) is replaced by the value's
  text: numbers and strings as they are, anything else as compact JSON.

References can sit anywhere inside an argument: in nested lists and objects too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from shared.errors import ReferenceError_

# "$" then a step number, then optional ".field" parts; or the same inside "${...}".
REF_PATTERN = re.compile(
    r"\$\{(?P<bid>\d+)(?P<bpath>(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}"
    r"|\$(?P<id>\d+)(?P<path>(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
)


def _match_parts(match: re.Match[str]) -> tuple[int, tuple[str, ...]]:
    step = match.group("bid") or match.group("id")
    path = match.group("bpath") if match.group("bid") else match.group("path")
    return int(step), tuple(p for p in (path or "").split(".") if p)


def iter_references(value: Any) -> Iterator[tuple[int, tuple[str, ...]]]:
    """Yield every ``(step_id, path)`` referenced anywhere inside ``value``.

    Args:
        value: Any JSON-shaped value (str, number, list, dict, None).

    Yields:
        Pairs of the referenced step id and the dotted path into its output
        (an empty tuple for the whole output).
    """
    if isinstance(value, str):
        for match in REF_PATTERN.finditer(value):
            yield _match_parts(match)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from iter_references(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_references(item)


def referenced_steps(value: Any) -> set[int]:
    """Return the ids of every step that ``value`` refers to."""
    return {step for step, _ in iter_references(value)}


def is_whole_reference(value: Any) -> bool:
    """Tell whether ``value`` is a string made of exactly one reference."""
    return isinstance(value, str) and REF_PATTERN.fullmatch(value) is not None


def _lookup(outputs: Mapping[int, Any], step: int, path: tuple[str, ...], text: str) -> Any:
    if step not in outputs:
        raise ReferenceError_(f"{text!r} refers to step {step}, whose output is not available")
    current = outputs[step]
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            raise ReferenceError_(f"{text!r}: output of step {step} has no field {part!r}")
        current = current[part]
    return current


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def resolve(value: Any, outputs: Mapping[int, Any]) -> Any:
    """Replace every reference inside ``value`` with the output it names.

    Args:
        value: A step's arguments (any JSON-shaped value).
        outputs: Map from step id to that step's committed output.

    Returns:
        A new value of the same shape with references substituted (see module rules).

    Raises:
        ReferenceError_: A reference names a step missing from ``outputs`` or a field
            its output lacks, or a reference inside text is null.
    """
    if isinstance(value, str):
        whole = REF_PATTERN.fullmatch(value)
        if whole:
            step, path = _match_parts(whole)
            return _lookup(outputs, step, path, value)

        def substitute(match: re.Match[str]) -> str:
            step, path = _match_parts(match)
            found = _lookup(outputs, step, path, match.group(0))
            if found is None:
                raise ReferenceError_(
                    f"{match.group(0)!r} is null: step {step} produced no value to use in "
                    f"{value!r}"
                )
            return _as_text(found)

        return REF_PATTERN.sub(substitute, value)
    if isinstance(value, Mapping):
        return {key: resolve(item, outputs) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(item, outputs) for item in value]
    return value
