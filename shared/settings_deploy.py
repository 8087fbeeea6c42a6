"""The settings of a worker's life in an orchestrator (Kubernetes, compose, a Procfile
runner): how it shuts down when told to stop, and the heartbeat file its liveness probe
reads.

A base class of :class:`shared.settings.Settings` (read through
:func:`shared.settings.get_settings`, never on its own). Every field is an environment
variable of the same name in upper case.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings


class DeploySettings(BaseSettings):
    """Graceful shutdown and liveness of worker processes.

    Attributes:
        worker_soft_shutdown_timeout_s: How long a worker told to stop (SIGTERM, as
            Kubernetes, compose and systemd send) lets its running steps finish
            (seconds); the steps still running then are handed back and the worker
            exits. The prefork pool does it with Celery's soft shutdown (Celery 5.5+
            ``worker_soft_shutdown_timeout``: it cancels them and requeues their
            messages); the threads and gevent pools, which Celery cannot cancel a step
            in, with a warm shutdown that ``taskforce worker`` ends by killing the
            Celery process, after which the steps' leases lapse and the reconciler
            dispatches them again (see taskforce_cli/supervise.py). ``0``: a warm
            shutdown that waits for every running step, up to the longest step time
            limit (300 s by default). The orchestrator's grace period must exceed it:
            see deploy/k8s/README.md for the arithmetic.
        worker_enable_soft_shutdown_on_idle: Celery's
            ``worker_enable_soft_shutdown_on_idle`` (prefork pool): wait the soft
            shutdown timeout even when no step runs, which gives messages held with a
            countdown (rate-limit retries) time to be restored to the queue. Off by
            default: the reconciler re-publishes any queued step whose message is lost,
            and an idle worker then stops at once, which makes scale-down fast.
        worker_heartbeat_file: File the worker touches on each Celery event heartbeat
            (every 2 s) and ``taskforce worker-health`` reads; ``None`` means
            ``DATA_DIR/worker.heartbeat``.
    """

    worker_soft_shutdown_timeout_s: float = Field(default=60.0, ge=0, le=3600)
    worker_enable_soft_shutdown_on_idle: bool = False
    worker_heartbeat_file: Path | None = None

    @property
    def worker_heartbeat_path(self) -> Path:
        """Where the worker's heartbeat file is: ``WORKER_HEARTBEAT_FILE``, else
        ``DATA_DIR/worker.heartbeat``."""
        if self.worker_heartbeat_file is not None:
            return self.worker_heartbeat_file
        return Path(getattr(self, "data_dir", ".taskforce")) / "worker.heartbeat"
