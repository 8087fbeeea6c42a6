"""Scratch databases: a fresh, migrated database on the configured server, dropped after.

For benchmarks that load large data sets (``taskforce bench memory``) without touching
the deployment's own database. Raw SQL: ``CREATE DATABASE`` and ``DROP DATABASE`` are
not expressible in SQLAlchemy Core, and the name is generated here (never user input).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.persistence.db import database_url, migrate


@contextmanager
def scratch_database(prefix: str = "taskforce_scratch") -> Iterator[str]:
    """Create a database next to the configured one, migrate it, yield its URL, drop it.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: The server refused (no CREATEDB privilege).
    """
    server = make_url(database_url())
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)
        try:
            migrate(url)
            yield url
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
