"""Alembic environment: runs migrations on the connection ``shared.persistence.db.migrate``
hands over (or on ``sqlalchemy.url`` when invoked from the alembic CLI)."""

from alembic import context
from sqlalchemy import create_engine

from shared.persistence import memory_tables, session_tables  # noqa: F401  (tables join metadata)
from shared.persistence.tables import metadata

target_metadata = metadata
config = context.config


def run_migrations_online() -> None:
    """Run the migrations on the handed-over connection, or on ``sqlalchemy.url``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
