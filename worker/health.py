"""The worker's side of its liveness probe: touch the heartbeat file (see
:mod:`shared.heartbeat`) when the worker is ready and on every Celery event heartbeat
(every 2 s while task events are on, as ``taskforce worker`` runs them). A starting
worker first removes the file a previous process left (a restarted container keeps
its pod's volumes), so the startup probe waits for this process's first heartbeat."""

from __future__ import annotations

import logging

from celery.signals import heartbeat_sent, worker_init, worker_ready

from shared import heartbeat
from shared.settings import get_settings

log = logging.getLogger(__name__)


@worker_ready.connect
@heartbeat_sent.connect
def beat(**_: object) -> None:
    """Touch ``WORKER_HEARTBEAT_FILE``; a failure is logged, never raised into Celery."""
    try:
        heartbeat.touch(get_settings().worker_heartbeat_path)
    except OSError as exc:
        log.warning("cannot touch the worker heartbeat file: %s", exc)


@worker_init.connect
def forget(**_: object) -> None:
    """Remove a heartbeat file left by an earlier worker process."""
    try:
        get_settings().worker_heartbeat_path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot remove the old worker heartbeat file: %s", exc)
