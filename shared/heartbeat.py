"""The worker's heartbeat file: touched by a running worker, read by its liveness probe.

Kubernetes' exec probe runs ``taskforce worker-health --max-age 60`` in the worker's
container: a local file's age, no broker round trip (``celery inspect ping`` would
broadcast to every worker of the fleet on each probe of each pod). The worker touches
the file from Celery's event heartbeat timer, which runs on the worker's event loop:
a worker whose loop is stuck, or that lost its broker connection, stops touching it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def touch(path: Path) -> None:
    """Set ``path``'s modification time to now, creating it (and its folder) if needed.

    Raises:
        OSError: The file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(exist_ok=True)
    os.utime(path)


def age_s(path: Path, now: float | None = None) -> float | None:
    """Seconds since ``path`` was last touched, or None if it does not exist.

    Args:
        path: The heartbeat file.
        now: The current time (seconds since the epoch; default ``time.time()``).
    """
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        return None
    return (time.time() if now is None else now) - modified
