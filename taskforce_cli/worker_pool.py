"""Which Celery pool a worker runs, and the patches it needs (``docs/architecture.md``,
"Choosing a pool").

* ``threads`` (default): one OS thread per step in flight (``WORKER_CONCURRENCY``,
  default 32). Nothing to patch.
* ``gevent``: one greenlet per step in flight (``--concurrency 1000``); sockets,
  ``select``, locks and sleeps are monkey-patched so that a step waiting on an LLM, a
  remote tool, Redis or Postgres yields to the others. The patches must precede the
  import of the libraries that capture blocking primitives (psycopg's wait function),
  which :mod:`taskforce_cli.worker_child` guarantees for a supervised worker.
"""

from __future__ import annotations

import sys

from shared.errors import ConfigurationError

GEVENT = "gevent"


def gevent_patched() -> bool:
    """True when gevent has patched ``select`` in this process (so psycopg cooperates)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("select"))


def ensure_patched(pool: str) -> None:
    """Make sure this process can run ``pool``; patch now if it is still possible.

    Args:
        pool: The Celery pool name (``threads``, ``gevent``, ``prefork``, ``solo``).

    Raises:
        ConfigurationError: ``gevent`` was asked for after psycopg was imported
            unpatched: its database waits would block every greenlet.
    """
    if pool != GEVENT or gevent_patched():
        return
    if "psycopg" in sys.modules:
        raise ConfigurationError(
            "the gevent pool needs its patches before psycopg is imported; start the "
            "worker with `taskforce worker --pool gevent` (supervised) or "
            "`python -m taskforce_cli.worker_child worker --no-supervise --pool gevent`")
    from celery import maybe_patch_concurrency

    maybe_patch_concurrency(["worker", f"--pool={pool}"])
