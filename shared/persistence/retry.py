"""Units of database work retried through transient failures (a Postgres restart).

Workers never give up on a commit because Postgres blinked: the unit of work is retried
with exponential backoff and jitter until ``DB_RETRY_MAX_S`` has passed. Each retry
gets a fresh pooled connection (the pool discards broken ones). Work passed here must be
safe to run again after an ambiguous failure, which every step-protocol statement is:
they are conditional on the state they change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from shared.persistence.db import autocommit, get_engine
from shared.settings import get_settings

T = TypeVar("T")
log = logging.getLogger(__name__)


# SQLSTATE classes and codes a later attempt may not meet (PostgreSQL Appendix A):
# connection exceptions, too many connections or out of resources, a server shutting
# down or starting up, serialization failures and deadlocks.
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "53", "57P", "40001", "40P01", "55P03")


def is_transient(exc: BaseException) -> bool:
    """True for failures that a new connection may not see: lost or refused connections,
    a server shutting down or starting up, serialization failures and deadlocks.

    Never for data errors (an invalid byte sequence, a number out of range), integrity
    errors or program limits such as a too deeply nested value: those fail the same way
    every time, so retrying them only repeats (and re-bills) the work around them.
    """
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    # No SQLSTATE: the client library itself failed to connect or lost the connection.
    return sqlstate is None or sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)


def run(work: Callable[[Connection], T], *, transactional: bool = True) -> T:
    """Run ``work(connection)`` in a transaction (or in autocommit mode), retrying it
    through transient failures for up to ``DB_RETRY_MAX_S`` seconds.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: A non-transient failure, or the last transient
            one once the time is up.
    """
    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential_jitter(multiplier=0.1, max=5.0, jitter=0.1),
        stop=stop_after_delay(get_settings().db_retry_max_s),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            if transactional:
                with get_engine().begin() as connection:
                    return work(connection)
            with autocommit() as connection:
                return work(connection)
    raise AssertionError("unreachable: tenacity either returns or raises")
