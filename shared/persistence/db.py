"""Engines, created lazily once per process, and schema migrations.

Nothing connects at import time: Celery's prefork pool forks after importing the task
modules, and a connection shared across a fork corrupts both ends. :func:`get_engine`
creates the engine on first use in each process (it notices a fork by the PID).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Connection, Engine

from shared import telemetry
from shared.errors import ConfigurationError
from shared.settings import get_settings, on_settings_change

_lock = threading.Lock()
_engine: Engine | None = None
_engine_pid: int | None = None
_engine_url: str | None = None

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def database_url() -> str:
    """The configured database URL.

    Raises:
        ConfigurationError: ``DATABASE_URL`` is not set.
    """
    url = get_settings().database_url
    if not url:
        raise ConfigurationError(
            "DATABASE_URL is not set (the CLI's run and batch start an embedded Postgres "
            "when it is absent; servers need it)"
        )
    return url


def get_engine() -> Engine:
    """Return this process's engine for the configured database, creating it once.

    The pool keeps ``db_pool_size`` connections and opens as many again under bursts.
    Connections are not pinged on checkout (that would add a round trip to every step
    phase); a connection broken by a Postgres restart fails its statement, is discarded
    by the pool, and the caller's retry gets a fresh one.
    """
    global _engine, _engine_pid, _engine_url
    url = database_url()
    with _lock:
        if _engine is None or _engine_pid != os.getpid() or _engine_url != url:
            if _engine is not None and _engine_pid == os.getpid():
                _engine.dispose()
            size = get_settings().db_pool_size
            _engine = create_engine(
                url,
                pool_size=size,
                max_overflow=size,
                pool_recycle=1800,
            )
            telemetry.instrument_engine(_engine)  # statement spans, when tracing is on
            _engine_pid, _engine_url = os.getpid(), url
        return _engine


@contextmanager
def autocommit() -> Iterator[Connection]:
    """A pooled connection in autocommit mode: each statement is its own transaction.

    For the step protocol's single-statement phases, which then cost one round trip
    instead of three (BEGIN, statement, COMMIT).
    """
    with get_engine().connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


def dispose_engine() -> None:
    """Close this process's pooled connections (after a fork, or at shutdown)."""
    global _engine
    with _lock:
        if _engine is not None:
            if _engine_pid == os.getpid():
                _engine.dispose()
            else:
                _engine.dispose(close=False)
            _engine = None


# A settings override (a new DATABASE_URL, a pool size) takes effect on the next use.
on_settings_change(dispose_engine)


def ping() -> None:
    """One round trip to the database (``SELECT 1``), for health checks.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: The database cannot be reached.
        ConfigurationError: ``DATABASE_URL`` is not set.
    """
    with get_engine().connect() as connection:
        connection.execute(select(1))


def migrate(url: str | None = None) -> None:
    """Bring the schema up to the newest Alembic revision (idempotent).

    Concurrent callers (a gateway and a worker starting together) serialise on a
    Postgres advisory lock, so the migration runs once.

    Args:
        url: Database URL; the configured one when absent.
    """
    from alembic import command
    from alembic.config import Config

    url = url or database_url()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(select(func.pg_advisory_xact_lock(72071)))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
