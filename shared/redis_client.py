"""Redis clients for Taskforce's own keys (Celery manages its own connections)."""

from __future__ import annotations

import os
import threading

import redis

from shared.config import get_settings

_local = threading.local()


def bench_counter() -> redis.Redis:
    """A Redis client for this thread and process (created on first use, never at import)."""
    client = getattr(_local, "client", None)
    if client is None or getattr(_local, "pid", None) != os.getpid():
        client = redis.Redis.from_url(get_settings().redis_url or "")
        _local.client, _local.pid = client, os.getpid()
    return client
