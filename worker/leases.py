"""Lease renewal: running steps keep their leases alive until they end or hit their limit.

A claimed step's lease lasts ``STEP_LEASE_S``. One heartbeat thread per worker process
renews the leases of all the steps the process is running, in one statement every third
of the lease, so a step may run as long as its time limit allows while a dead worker is
noticed within one lease: it stops renewing, the lease expires, and the reconciler hands
the step to another worker. At a step's hard time limit its lease is no longer renewed,
which is how the limit holds under the threads pool, where Celery cannot interrupt a
task. A step that ends before the first renewal costs nothing but two dict operations.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass, field

from shared.persistence import retry as db_retry
from shared.persistence import steps as step_store

log = logging.getLogger(__name__)

@dataclass
class _Held:
    claim: step_store.ClaimedStep
    worker: str
    deadline: float
    lost: threading.Event = field(default_factory=threading.Event)


class LeaseRenewer:
    """The process's heartbeat: renews every registered lease every ``lease_s / 3``."""

    def __init__(self, lease_s: float) -> None:
        self.lease_s = lease_s
        self._held: dict[int, _Held] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="lease-renewer", daemon=True)
        self._thread.start()

    def hold(self, claim: step_store.ClaimedStep, worker: str,
             time_limit_s: float) -> tuple[int, threading.Event]:
        """Start renewing ``claim``'s lease for at most ``time_limit_s`` seconds.

        Returns:
            A handle for :meth:`release`, and an event set if the lease is found lost.
        """
        held = _Held(claim, worker, time.monotonic() + time_limit_s)
        with self._lock:
            handle = next(self._ids)
            self._held[handle] = held
        return handle, held.lost

    def release(self, handle: int) -> None:
        """Stop renewing (the step ended)."""
        with self._lock:
            self._held.pop(handle, None)

    def _renew_all(self) -> None:
        now = time.monotonic()
        with self._lock:
            expired = [h for h, held in self._held.items() if held.deadline <= now]
            for handle in expired:
                held = self._held.pop(handle)
                log.warning("step %s/%s passed its time limit; its lease will lapse",
                            held.claim.goal_id, held.claim.step_id)
            current = dict(self._held)
        if not current:
            return
        renewed = db_retry.run(
            lambda c: step_store.renew_leases(
                c, held=[(h.claim, h.worker) for h in current.values()], lease_s=self.lease_s),
            transactional=False,
        )
        for held in current.values():
            if (held.claim.goal_id, held.claim.step_id) not in renewed:
                held.lost.set()

    def _run(self) -> None:
        while True:
            time.sleep(self.lease_s / 3)
            try:
                self._renew_all()
            except Exception:  # noqa: BLE001 - the heartbeat must outlive any failure
                log.exception("renewing leases failed; retrying at the next beat")


_renewer: LeaseRenewer | None = None
_renewer_pid: int | None = None
_renewer_lock = threading.Lock()


def renewer(lease_s: float) -> LeaseRenewer:
    """This process's renewer, started on first use (and again after a fork)."""
    global _renewer, _renewer_pid
    with _renewer_lock:
        if _renewer is None or _renewer_pid != os.getpid() or _renewer.lease_s != lease_s:
            _renewer, _renewer_pid = LeaseRenewer(lease_s), os.getpid()
        return _renewer


class LeaseKeeper:
    """Context manager holding ``claim``'s lease with this process's renewer.

    Args:
        claim: The claimed step.
        worker: The lease owner name.
        lease_s: Lease length (seconds).
        time_limit_s: Stop renewing after this many seconds (the hard limit).

    Attributes:
        lost: Set when a renewal found the lease taken over (the result will then be
            refused at commit, and the run recorded as ``lease_lost``).
    """

    def __init__(self, claim: step_store.ClaimedStep, *, worker: str, lease_s: float,
                 time_limit_s: float) -> None:
        self._renewer = renewer(lease_s)
        self._args = (claim, worker, time_limit_s)
        self._handle: int | None = None
        self.lost = threading.Event()

    def __enter__(self) -> LeaseKeeper:
        self._handle, self.lost = self._renewer.hold(*self._args)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._renewer.release(self._handle)
