"""The ``ToolContext.cancelled`` hook a worker gives its tools: has the goal ended?"""

from __future__ import annotations

import threading
import time
import uuid

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from shared.domain.models import GoalStatus
from shared.persistence import goals as goal_store

CHECK_INTERVAL_S = 0.5
"""Least time between two reads of the goal's status (seconds)."""


class GoalCancellationCheck:
    """``check() -> bool``: True once the goal is no longer running.

    Reads the goal's status from Postgres at most every ``interval_s`` seconds and
    answers from the last read in between; once True it stays True. A failed read
    (database unreachable) counts as "not cancelled": the step then runs to its end as
    it would have without the hook.

    Args:
        engine: Engine of the system of record.
        goal_id: The goal whose status to watch.
        interval_s: Least time between two reads (seconds).
    """

    def __init__(self, engine: Engine, goal_id: uuid.UUID | str,
                 interval_s: float = CHECK_INTERVAL_S) -> None:
        self._engine = engine
        self._goal_id = str(goal_id)
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._next_read = 0.0
        self._cancelled = False

    def __call__(self) -> bool:
        with self._lock:
            if self._cancelled or time.monotonic() < self._next_read:
                return self._cancelled
            self._next_read = time.monotonic() + self._interval_s
            try:
                with self._engine.connect() as connection:
                    status = goal_store.goal_statuses(
                        connection, goal_ids=[uuid.UUID(self._goal_id)]).get(
                        uuid.UUID(self._goal_id))
            except SQLAlchemyError:
                return False
            # A goal that no longer exists (removed) is as good as cancelled.
            self._cancelled = status is None or GoalStatus(status).is_final
            return self._cancelled
