"""The entry point of a worker's Celery process: the pool's monkey patches come first.

``taskforce worker`` runs Celery in a supervised child, ``python -m
taskforce_cli.worker_child worker --no-supervise --pool=POOL ...``. Under the ``gevent``
pool every blocking primitive (sockets, ``select``, ``threading``, ``time.sleep``) must
be patched before any library captures the unpatched one. psycopg 3 is the case that
matters most: it chooses its wait function when ``psycopg.waiting`` is imported, the C
one (``wait_c``) when ``select`` is not patched, which blocks the whole process, every
greenlet with it, for each database round trip; with ``select`` patched it picks
``wait_poll`` over gevent's cooperative ``poll`` (see ``_is_select_patched`` in
``psycopg/waiting.py``). This module therefore patches (Celery's own
``maybe_patch_concurrency``, what ``celery -P gevent`` does) before it imports anything
of Taskforce, then runs the ``taskforce`` command.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    """Apply the monkey patches the ``--pool`` in ``argv`` needs, then run ``taskforce``."""
    from celery import maybe_patch_concurrency

    maybe_patch_concurrency(argv or sys.argv)
    from taskforce_cli.main import app

    app()


if __name__ == "__main__":
    main()
