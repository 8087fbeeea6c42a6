"""The step protocol's driver path (shared/persistence/driver.py) fails exactly as
SQLAlchemy would: the same exception types, a broken connection invalidated so the pool
discards it, and the retry layer classifying both as before."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DataError, OperationalError

from shared.persistence import driver
from shared.persistence import retry as db_retry


def test_a_value_postgres_refuses_is_a_sqlalchemy_data_error_not_retried(db) -> None:
    with db.connect() as connection:
        with pytest.raises(DataError) as caught:
            driver.one_row(connection, "SELECT CAST(%(v)s AS jsonb) AS v",
                           {"v": '{"a": "\\u0000"}'})
        assert not db_retry.is_transient(caught.value)
        assert not caught.value.connection_invalidated
        connection.rollback()
        # The connection is still usable after the refused value.
        assert driver.one_row(connection, "SELECT 1 AS one", {}) == {"one": 1}


def test_a_connection_killed_under_it_is_invalidated_and_retried(db) -> None:
    with db.connect() as victim:
        pid = driver.one_row(victim, "SELECT pg_backend_pid() AS pid", {})["pid"]
        victim.commit()
        with db.connect() as killer:
            killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killer.commit()
        with pytest.raises(OperationalError) as caught:
            driver.one_row(victim, "SELECT 1 AS one", {})
        assert caught.value.connection_invalidated
        assert victim.invalidated
        assert db_retry.is_transient(caught.value)
    # The pool discarded the dead connection: the next unit of work gets a live one.
    assert db_retry.run(lambda c: driver.one_row(c, "SELECT 1 AS one", {}),
                        transactional=False) == {"one": 1}


def test_rows_come_back_as_dicts_and_none_when_empty(db) -> None:
    with db.connect() as connection:
        assert driver.one_row(connection, "SELECT 1 AS one, 'x' AS two", {}) == {
            "one": 1, "two": "x"}
        assert driver.one_row(connection, "SELECT 1 WHERE false", {}) is None


def test_outside_autocommit_the_write_belongs_to_the_sqlalchemy_transaction(db) -> None:
    with db.connect() as connection:
        connection.execute(text("CREATE TEMP TABLE driver_probe (n int)"))
        connection.commit()
        driver.one_row(connection, "INSERT INTO driver_probe VALUES (1) RETURNING n", {})
        assert connection.in_transaction()
        connection.rollback()
        assert driver.one_row(connection, "SELECT count(*) AS n FROM driver_probe", {}) == {
            "n": 0}
        driver.one_row(connection, "INSERT INTO driver_probe VALUES (2) RETURNING n", {})
        connection.commit()
        assert connection.execute(text("SELECT n FROM driver_probe")).scalars().all() == [2]
