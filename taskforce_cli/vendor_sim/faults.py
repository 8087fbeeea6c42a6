"""Fault injection for the simulator: which fault, if any, a request gets.

Faults (the values of ``--fault-rate``, ``--fault-sequence`` and the ``x-sim-fault``
request header):

* an HTTP status, ``429`` or any 4xx/5xx (``500``, ``503``, ``529``, ``400``...): that
  error response, in the route's wire format; ``429`` carries ``Retry-After``;
* ``timeout``: the response is held back (up to ``timeout_sleep_s``, or until the client
  gives up and disconnects), then sent normally;
* ``malformed-json``: a 200 whose answer is not JSON;
* ``truncated``: a 200 whose answer is cut in half, marked as stopped at the token limit;
* ``ok``: no fault (useful in sequences: ``500,ok``).

Precedence: the request's ``x-sim-fault`` header, then the next entry of the scripted
sequence, then the random rates, drawn from the simulator's seeded RNG (so a run with
the same seed and the same requests in the same order injects the same faults).
"""

from __future__ import annotations

import random
import re
import threading
from collections import deque
from collections.abc import Iterable

OK = "ok"
TIMEOUT = "timeout"
MALFORMED = "malformed-json"
TRUNCATED = "truncated"
NAMED_FAULTS = frozenset({OK, TIMEOUT, MALFORMED, TRUNCATED})
_STATUS = re.compile(r"^[45]\d\d$")


def check_fault(name: str) -> str:
    """``name`` normalised, if it is a known fault.

    Raises:
        ValueError: Not a fault name nor a 4xx/5xx status.
    """
    value = name.strip().lower()
    if value in NAMED_FAULTS or _STATUS.match(value):
        return value
    raise ValueError(f"unknown fault {name!r}: use ok, timeout, malformed-json, truncated "
                     "or an HTTP status from 400 to 599")


def status_of(fault: str) -> int | None:
    """The HTTP status a fault answers with, or None for the named faults."""
    return int(fault) if _STATUS.match(fault) else None


def parse_rates(items: Iterable[str]) -> dict[str, float]:
    """Parse ``["500=0.05", "timeout=0.01"]`` (or one comma-separated string per item).

    Raises:
        ValueError: A malformed item, an unknown fault, or rates summing past 1.
    """
    rates: dict[str, float] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            name, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"fault rate {part!r} is not NAME=PROBABILITY")
            rate = float(value)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate {part!r} is not between 0 and 1")
            rates[check_fault(name)] = rate
    if sum(rates.values()) > 1.0 + 1e-9:
        raise ValueError("fault rates add up to more than 1")
    return rates


def parse_sequence(items: Iterable[str]) -> list[str]:
    """Parse ``["500,ok"]`` or ``["500", "ok"]`` into ``["500", "ok"]``."""
    return [check_fault(p) for item in items for p in item.split(",") if p.strip()]


class FaultInjector:
    """Chooses each request's fault (thread-safe).

    Args:
        rates: Probability of each fault per request (their sum at most 1).
        sequence: Faults for the next requests, in order, before rates apply again.
        rng: The seeded random source.
    """

    def __init__(self, rates: dict[str, float], sequence: Iterable[str],
                 rng: random.Random) -> None:
        self._rates = dict(rates)
        self._sequence: deque[str] = deque(sequence)
        self._rng = rng
        self._lock = threading.Lock()

    def script(self, sequence: Iterable[str]) -> None:
        """Replace the scripted sequence (e.g. ``["500", "ok"]``)."""
        with self._lock:
            self._sequence = deque(check_fault(f) for f in sequence)

    def set_rates(self, rates: dict[str, float]) -> None:
        """Replace the random fault rates."""
        with self._lock:
            self._rates = {check_fault(k): float(v) for k, v in rates.items()}

    def choose(self, header: str | None) -> str:
        """The fault for one request (``ok`` for none).

        Raises:
            ValueError: ``header`` names no fault.
        """
        if header:
            return check_fault(header)
        with self._lock:
            if self._sequence:
                return self._sequence.popleft()
            draw = self._rng.random()
            for name, rate in self._rates.items():
                if draw < rate:
                    return name
                draw -= rate
        return OK
