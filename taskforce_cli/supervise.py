"""How ``taskforce worker`` runs Celery: in a child process that is restarted when it fails.

A worker that hits an error Celery cannot recover from in-process stops; left alone, a
deployment would be left with no workers. ``taskforce worker`` therefore runs the Celery
worker as a child (``taskforce worker --no-supervise``), forwards SIGTERM and SIGINT to
it to shut it down (bounded in time: see below), and starts it again with capped
exponential backoff and jitter when it exits with a non-zero status or is killed by a
signal it was not asked to stop by. A child that exits with status 0 shut down on
purpose and is not restarted.

Three upstream details this module exists for:

* Celery 5.7 discards the worker's exit status: ``Celery.start`` runs the ``celery``
  click command with ``standalone_mode=False``, in which click *returns* the status
  given to ``ctx.exit`` instead of raising it, and ``Celery.start`` (so
  ``Celery.worker_main``) drops that return value. A worker that stopped on an
  ``Unrecoverable error`` therefore exited with status 0 and looked like a clean
  shutdown to any supervisor. :func:`run_celery_worker` returns it.
* Celery's SIGTERM is a warm shutdown, which waits for every running task however long
  it runs. Its soft shutdown (Celery 5.5+: wait ``worker_soft_shutdown_timeout``, then
  cancel the tasks still running and stop) starts on SIGQUIT, but cancelling needs a
  pool that can kill a job: with Celery 5.7 the threads pool raises
  ``NotImplementedError(... does not implement kill_job)``, the worker logs
  ``Unrecoverable error`` and took about 50 s more to exit (tests/faults/
  test_scale_down.py found it). So ``taskforce worker`` passes SIGTERM on as SIGQUIT
  (``translate``) for the prefork pool only; for every pool the supervisor bounds the
  shutdown itself (``stop_timeout_s``): a child still running that long after the stop
  signal is killed, and the steps it had not committed go back to the queue when their
  leases lapse (the reconciler dispatches them again).
* The child gets SIGKILL when the supervisor dies (Linux ``PR_SET_PDEATHSIG``), so
  killing ``taskforce worker`` never leaves an orphaned Celery process consuming.
"""

from __future__ import annotations

import ctypes
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
STOP_POLL_S = 0.2  # how soon a stop signal starts the stop timeout (seconds)


def run_celery_worker(app: Any, argv: Sequence[str]) -> int:
    """Run ``celery worker`` for ``app`` in this process; return its exit status.

    Args:
        app: The Celery app.
        argv: Arguments of the ``celery`` command, starting with ``"worker"``.

    Returns:
        0 after a requested shutdown; Celery's non-zero status (1 after an
        ``Unrecoverable error``) otherwise.
    """
    from celery.bin.celery import celery as celery_command

    # What Celery.start does, keeping the status it drops.
    celery_command.params[0].default = app
    try:
        code = celery_command.main(args=list(argv), standalone_mode=False)
    finally:
        celery_command.params[0].default = None
    return code if isinstance(code, int) else 0


@dataclass
class Backoff:
    """Capped exponential backoff with jitter between restarts.

    The n-th consecutive restart waits ``min(cap_s, base_s * 2**n)`` seconds, half of it
    fixed and half drawn uniformly (so restarted workers do not reconnect in lockstep).
    A child that ran for ``stable_s`` seconds or more counts as healthy: the next
    restart starts the sequence again.

    Attributes:
        base_s: First delay's upper bound, seconds.
        cap_s: Longest delay, seconds.
        stable_s: Run time after which the sequence resets, seconds.
    """

    base_s: float = 1.0
    cap_s: float = 30.0
    stable_s: float = 60.0
    attempt: int = 0

    def next_delay(self, ran_s: float, rand: Callable[[], float] = random.random) -> float:
        """The delay before the next start, for a child that ran ``ran_s`` seconds."""
        if ran_s >= self.stable_s:
            self.attempt = 0
        ceiling = min(self.cap_s, self.base_s * 2 ** self.attempt)
        self.attempt += 1
        return ceiling / 2 + rand() * ceiling / 2


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGKILL it when the supervisor dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return  # not Linux: an orphan is possible, as with any other supervisor


def _status(returncode: int) -> int:
    """A shell-style exit status: 128 + N for a child killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def supervise(
    command: Sequence[str],
    *,
    backoff: Backoff | None = None,
    log: Callable[[str], None] | None = None,
    translate: Mapping[int, int] | None = None,
    stop_timeout_s: float | None = None,
) -> int:
    """Run ``command`` until it exits cleanly or this process is told to stop.

    Must be called from the main thread (it installs SIGTERM and SIGINT handlers, and
    restores the previous ones on return).

    Args:
        command: The child's argv (a worker that runs Celery in-process).
        backoff: Delays between restarts (default :class:`Backoff`).
        log: Where to report restarts (default: standard error).
        translate: Signals passed on as another, e.g. ``{SIGTERM: SIGQUIT}`` for
            Celery's soft shutdown; any other forwarded signal is passed on as it is.
        stop_timeout_s: After a stop signal, how long the child may take to exit
            (seconds) before it is killed; None waits as long as it takes.

    Returns:
        The child's last exit status (128 + N when killed by signal N); 0 when it
        exited cleanly, when stopped by a signal during a backoff wait, or when killed
        after ``stop_timeout_s`` as asked.
    """
    backoff = backoff or Backoff()
    log = log or (lambda line: print(f"taskforce worker: {line}", file=sys.stderr,
                                     flush=True))
    stopping = threading.Event()
    child: subprocess.Popen | None = None

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping.set()
        if child is not None and child.poll() is None:
            child.send_signal((translate or {}).get(signum, signum))

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        while True:
            started = time.monotonic()
            child = subprocess.Popen(list(command), preexec_fn=_die_with_parent)
            returncode = _wait(child, stopping, stop_timeout_s, log)
            ran_s = time.monotonic() - started
            if returncode is None:
                return 0  # killed after stop_timeout_s, as the stop asked
            if stopping.is_set() or returncode == 0:
                return _status(returncode)
            delay = backoff.next_delay(ran_s)
            log(f"Celery worker (pid {child.pid}) exited with status {_status(returncode)} "
                f"after {ran_s:.1f} s; restarting in {delay:.1f} s")
            if stopping.wait(delay):
                return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait(child: subprocess.Popen, stopping: threading.Event,
          stop_timeout_s: float | None, log: Callable[[str], None]) -> int | None:
    """Wait for ``child`` to exit; return its return code, or None if it outlived
    ``stop_timeout_s`` after a stop signal and was killed."""
    while not stopping.is_set() or stop_timeout_s is None:
        try:
            return child.wait(timeout=STOP_POLL_S if stop_timeout_s is not None else None)
        except subprocess.TimeoutExpired:
            continue
    try:
        return child.wait(timeout=stop_timeout_s)
    except subprocess.TimeoutExpired:
        log(f"Celery worker (pid {child.pid}) still running {stop_timeout_s:.0f} s after "
            "the stop signal: killing it; the steps it had not committed go back to the "
            "queue when their leases lapse")
        child.kill()
        child.wait()
        return None


def worker_command(module: str, options: Sequence[str]) -> list[str]:
    """The argv of a supervised child: ``python -m MODULE worker --no-supervise ...``."""
    return [sys.executable, "-m", module, "worker", "--no-supervise", *options]
