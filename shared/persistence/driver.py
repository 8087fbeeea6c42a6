"""The step protocol's per-step statements, run on the driver connection itself.

Every step runs two statements (its claim and its commit, see
:mod:`shared.persistence.steps`). Through SQLAlchemy's statement and result layers each
costs about 0.3 to 0.4 ms more client CPU than the same statement on the psycopg
connection beneath it (measured on the claim: 1.03 ms against 0.72 ms per call, one
thread; ``docs/benchmarks.md``, "After the hot-path work"). On a worker that is most of
what a no-op step costs beyond Celery, so these two statements, and only they, skip
those layers: they run on the pooled connection's psycopg connection, inside whatever
transaction (or autocommit mode) the SQLAlchemy connection is in, and their errors are
raised as SQLAlchemy's, exactly as :meth:`Connection.execute` would raise them, so
:mod:`shared.persistence.retry` and the callers see no difference. A connection found
broken is invalidated, so the pool discards it and a retry gets a fresh one.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError


def one_row(connection: Connection, statement: str, params: dict[str, Any]
            ) -> dict[str, Any] | None:
    """Run ``statement`` (psycopg ``%(name)s`` placeholders) and return its first row.

    Args:
        connection: A SQLAlchemy connection on the psycopg driver; its transaction state
            (autocommit, or a transaction the caller commits) applies.
        statement: One SQL statement.
        params: Its parameters by name.

    Returns:
        The first row as a dict by column name, or None when there is none.

    Raises:
        sqlalchemy.exc.DBAPIError: The subclass matching the driver's error (an
            ``OperationalError`` for a lost connection, a ``DataError`` for a value
            Postgres refuses, ...), with ``connection_invalidated`` set when the
            connection broke.
    """
    dbapi_connection = connection.connection.driver_connection
    if not dbapi_connection.autocommit and not connection.in_transaction():
        # What Connection.execute does first (its autobegin): without it the statement
        # would run in a transaction SQLAlchemy does not know of, which its commit()
        # would skip and the pool's reset would roll back.
        connection.begin()
    try:
        with dbapi_connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(statement, params)
            return cursor.fetchone()
    except psycopg.Error as exc:
        broken = connection.dialect.is_disconnect(exc, dbapi_connection, None)
        if broken:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            statement, params, exc, psycopg.Error, connection_invalidated=broken,
            dialect=connection.dialect,
        ) from exc
