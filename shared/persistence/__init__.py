"""Postgres, the system of record: tables, engine, migrations and queries."""
