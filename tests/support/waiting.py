"""Waiting on conditions in tests: poll with a deadline, and fail loudly when it passes.

The semantics of ``wait_until`` in ``tests/faults/conftest.py`` (poll ``predicate()``
every ``interval`` seconds until it is true or ``timeout`` seconds pass), except that a
timeout raises ``AssertionError`` with what was being waited for and the last value
observed, instead of returning False for the caller to assert on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(
    observe: Callable[[], T], accept: Callable[[T], Any] = bool, *, timeout: float = 30.0,
    interval: float = 0.05, message: str = "condition",
) -> T:
    """Poll ``observe()`` until ``accept(value)`` is true; return that value.

    Args:
        observe: Reads the current state (a row, a count, a status...).
        accept: Whether that state is the awaited one (default: the value is truthy).
        timeout: Seconds to wait in all.
        interval: Seconds between polls.
        message: What is awaited, for the failure message.

    Raises:
        AssertionError: ``timeout`` passed; the message names the last observed value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = observe()
        if accept(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message}: still not so after {timeout:g} s "
                                 f"(last observed: {value!r})")
        time.sleep(interval)


def wait_until(predicate: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05,
               message: str = "condition") -> T:
    """Poll ``predicate()`` until it returns a truthy value, and return that value.

    Raises:
        AssertionError: ``timeout`` seconds passed first (with the last value returned).
    """
    return wait_for(predicate, timeout=timeout, interval=interval, message=message)


def log_count(paths: list[Path], needle: str) -> int:
    """Lines containing ``needle`` in the files ``paths`` (missing files count 0): a way
    to count events that processes log, such as a worker finishing a task."""
    return sum(
        line.count(needle) > 0
        for path in paths if path.exists()
        for line in path.read_text(errors="replace").splitlines()
    )
