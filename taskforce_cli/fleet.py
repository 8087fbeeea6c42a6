"""A local fleet for the CLI and the tests: servers (embedded or configured), the schema,
and worker processes, started together and stopped together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shared import celery_app
from shared.errors import ConfigurationError, ServiceUnavailableError
from shared.persistence.db import dispose_engine, get_engine, migrate
from shared.persistence.documents import insert_documents, read_documents
from shared.settings import child_environment, get_settings, override_settings, reset_settings
from taskforce_cli.embedded import EmbeddedServices

SAMPLE_CORPUS = Path(__file__).resolve().with_name("corpus")
WORKER_READY_TIMEOUT_S = 60.0


@dataclass
class WorkerProcess:
    """One ``taskforce worker`` child process and its log file."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of its log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, *, kill: bool = False, timeout: float = 15.0) -> None:
        """Warm shutdown (SIGTERM), or SIGKILL with ``kill``; waits for the exit."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_worker(
    name: str,
    *,
    log_dir: Path,
    concurrency: int | None = None,
    queues: str | None = None,
    pool: str | None = None,
    env: dict[str, str] | None = None,
) -> WorkerProcess:
    """Start ``taskforce worker`` as a child process named ``name`` (logs under log_dir).

    The child's environment is this process's, with its settings overrides (see
    ``shared.settings.child_environment``) and then ``env`` on top.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    command = [sys.executable, "-m", "taskforce_cli.main", "worker", "--name", name]
    if concurrency:
        command += ["--concurrency", str(concurrency)]
    if queues:
        command += ["--queues", queues]
    if pool:
        command += ["--pool", pool]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=child_environment(env),
            start_new_session=True,
        )
    return WorkerProcess(name=name, process=process, log_path=log_path)


def wait_for_workers(workers: list[WorkerProcess], timeout: float = WORKER_READY_TIMEOUT_S) -> None:
    """Block until every worker answers a Celery ping.

    Raises:
        ServiceUnavailableError: A worker exited, or not all answered within ``timeout``
            seconds; the message carries the end of the worker's log.
    """
    wanted = {w.name for w in workers}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            if worker.process.poll() is not None:
                raise ServiceUnavailableError(
                    f"worker {worker.name} exited with code {worker.process.returncode}:\n"
                    f"{worker.log_tail()}"
                )
        replies = celery_app.app.control.ping(timeout=0.5)
        answered = {name.split("@", 1)[0] for reply in replies for name in reply}
        if wanted <= answered:
            return
    missing = sorted(wanted - answered)
    raise ServiceUnavailableError(f"workers {missing} did not answer within {timeout} s")


def load_sample_corpus() -> int:
    """Ingest the bundled sample documents (idempotent). Returns how many were new."""
    if not SAMPLE_CORPUS.exists():
        return 0
    with get_engine().begin() as connection:
        return insert_documents(connection, read_documents(SAMPLE_CORPUS))


@dataclass
class Fleet:
    """What :func:`local_fleet` started.

    Attributes:
        embedded: The embedded servers, or None when configured ones are used.
        workers: Worker processes started for this fleet.
        env: Environment pointing at the servers (``REDIS_URL``, ``DATABASE_URL``).
    """

    embedded: EmbeddedServices | None
    workers: list[WorkerProcess] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def use_environment(env: dict[str, str]) -> None:
    """Override this process's settings with ``env`` (variable names such as
    ``REDIS_URL``), without touching ``os.environ``; the engine and the Celery app follow,
    and workers started afterwards receive the same values.

    Raises:
        TypeError: A name is not a Taskforce setting.
    """
    override_settings(**env)


@contextmanager
def servers(data_dir: Path | None = None) -> Iterator[EmbeddedServices | None]:
    """The configured servers, or embedded ones when neither URL is set; the schema is
    migrated either way. Yields the embedded servers (None when configured ones are used).

    Raises:
        ConfigurationError: Only one of ``REDIS_URL`` and ``DATABASE_URL`` is set.
    """
    settings = get_settings()
    embedded = None
    if not settings.redis_url and not settings.database_url:
        embedded = EmbeddedServices((data_dir or settings.data_dir).resolve() / "embedded")
        use_environment(embedded.start())
    elif not (settings.redis_url and settings.database_url):
        raise ConfigurationError(
            "set both REDIS_URL and DATABASE_URL, or neither to use the embedded default"
        )
    try:
        migrate()
        if embedded is not None:
            load_sample_corpus()
        yield embedded
    finally:
        dispose_engine()
        if embedded is not None:
            embedded.stop()
            reset_settings("REDIS_URL", "DATABASE_URL")


@contextmanager
def local_fleet(
    *, workers: int | None = None, concurrency: int | None = None, data_dir: Path | None = None
) -> Iterator[Fleet]:
    """Servers plus ``workers`` worker processes (default: 2 with the embedded servers,
    none with configured ones, where a fleet is assumed to be running already)."""
    with servers(data_dir) as embedded:
        fleet = Fleet(embedded=embedded, env={
            "REDIS_URL": get_settings().redis_url or "",
            "DATABASE_URL": get_settings().database_url or "",
        })
        count = workers if workers is not None else (2 if embedded else 0)
        log_dir = (data_dir or get_settings().data_dir).resolve() / "logs"
        try:
            for index in range(count):
                fleet.workers.append(
                    start_worker(f"worker{index + 1}-{os.getpid()}", log_dir=log_dir,
                                 concurrency=concurrency)
                )
            if fleet.workers:
                wait_for_workers(fleet.workers)
            yield fleet
        finally:
            for worker in fleet.workers:
                worker.process.send_signal(signal.SIGTERM)
            for worker in fleet.workers:
                worker.stop()
