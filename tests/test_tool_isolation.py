"""Isolated (CPU-bound) tools run in a child process whose time limit is enforced."""

from __future__ import annotations

import os
import threading
import time

import pytest

from shared.errors import ToolError
from shared.settings import get_settings
from shared.tools import isolation
from shared.tools.base import ToolContext
from tests.support.cpu_tools import SPIN

CTX = ToolContext(goal_id="g", step_id=1, attempt=1)


@pytest.fixture()
def one_second_limit(monkeypatch):
    monkeypatch.setenv("TOOL_CPU_TIME_LIMIT_S", "1")
    get_settings.cache_clear()
    yield
    isolation.shutdown()
    monkeypatch.delenv("TOOL_CPU_TIME_LIMIT_S")
    get_settings.cache_clear()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a killed child not yet reaped is a zombie: count it as dead
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_runaway_tool_is_killed_at_its_limit_without_stalling_other_threads(
        one_second_limit) -> None:
    first = SPIN.call({}, CTX)
    assert first["pid"] != os.getpid() and first["goal"] == "g"
    ticks = []
    stop = threading.Event()

    def heartbeat() -> None:  # stands in for the lease keeper and the other steps
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.05)

    beat = threading.Thread(target=heartbeat)
    beat.start()
    started = time.monotonic()
    try:
        with pytest.raises(ToolError, match="time limit exceeded"):
            SPIN.call({"forever": True}, CTX)
    finally:
        stop.set()
        beat.join()
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 4.0
    # The heartbeat thread never waited long while the runaway computed.
    during = [t for t in ticks if started <= t <= started + elapsed]
    assert len(during) >= 10
    assert max(b - a for a, b in zip(during, during[1:])) < 0.5
    deadline = time.monotonic() + 5
    while _alive(first["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(first["pid"]), "the runaway child is still running"
    # A new pool serves the next call.
    assert SPIN.call({}, CTX)["pid"] != first["pid"]


def test_errors_of_an_isolated_tool_come_back_as_tool_errors(one_second_limit) -> None:
    with pytest.raises(ToolError, match="^no good$"):
        SPIN.call({"fail": "no good"}, CTX)


def test_a_call_queued_behind_a_runaway_runs_once_it_is_killed(one_second_limit) -> None:
    SPIN.call({}, CTX)  # start the pool
    outcome: dict[str, object] = {}

    def runaway() -> None:
        try:
            SPIN.call({"forever": True}, CTX)
        except ToolError as exc:
            outcome["runaway"] = str(exc)

    thread = threading.Thread(target=runaway)
    thread.start()
    deadline = time.monotonic() + 10
    while isolation._slots._value > 0:  # noqa: SLF001 (the runaway holds the only child)
        assert time.monotonic() < deadline, "the runaway never started"
        time.sleep(0.01)
    started = time.monotonic()
    queued = SPIN.call({}, CTX)
    waited = time.monotonic() - started
    thread.join(timeout=30)
    assert "time limit exceeded" in str(outcome.get("runaway"))
    assert queued["goal"] == "g"
    assert waited >= 0.5  # it ran after the runaway's child was killed, in a new pool
