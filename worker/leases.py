"""Lease renewal: a running step keeps its lease alive until it ends or hits its limit.

A claimed step's lease lasts ``STEP_LEASE_S``. While the step runs, a heartbeat thread
renews it every third of that, so a step may run as long as its time limit allows while
a dead worker is noticed within one lease: it stops renewing, the lease expires, and the
reconciler hands the step to another worker. At the step's hard time limit the keeper
stops renewing too, which is how the limit holds under the threads pool, where Celery
cannot interrupt a task.
"""

from __future__ import annotations

import logging
import threading
import time

from shared.persistence import retry as db_retry
from shared.persistence import steps as step_store

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Context manager renewing ``claim``'s lease in a daemon thread.

    Args:
        claim: The claimed step.
        worker: The lease owner name.
        lease_s: Lease length (seconds); renewed every ``lease_s / 3``.
        time_limit_s: Stop renewing after this many seconds (the hard limit).

    Attributes:
        lost: Set when a renewal found the lease taken over (the result will be refused
            at commit; the step's run is then recorded as ``lease_lost``).
    """

    def __init__(self, claim: step_store.ClaimedStep, *, worker: str, lease_s: float,
                 time_limit_s: float) -> None:
        self._claim = claim
        self._worker = worker
        self._lease_s = lease_s
        self._deadline = time.monotonic() + time_limit_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lease-{claim.goal_id}-{claim.step_id}", daemon=True
        )
        self.lost = threading.Event()

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _renew(self) -> bool:
        return db_retry.run(
            lambda c: step_store.renew_lease(
                c, claim=self._claim, worker=self._worker, lease_s=self._lease_s),
            transactional=False,
        )

    def _run(self) -> None:
        interval = self._lease_s / 3
        while not self._stop.wait(interval):
            if time.monotonic() >= self._deadline:
                log.warning("step %s/%s passed its time limit; its lease will lapse",
                            self._claim.goal_id, self._claim.step_id)
                return
            try:
                if not self._renew():
                    self.lost.set()
                    return
            except Exception:
                log.exception("renewing the lease of step %s/%s failed",
                              self._claim.goal_id, self._claim.step_id)
