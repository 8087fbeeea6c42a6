"""Per-process state of a worker: its tools and its name as a lease owner."""

from __future__ import annotations

import os
import socket
import threading
from functools import lru_cache

from shared.tools.registry import ToolRegistry, default_registry


@lru_cache(maxsize=1)
def registry() -> ToolRegistry:
    """The tools of this worker process (built-ins plus ``TOOL_MODULES``), built once."""
    return default_registry()


def worker_identity() -> str:
    """Lease owner name for the current thread: ``host/pid/thread``."""
    return f"{socket.gethostname()}/{os.getpid()}/{threading.get_ident()}"
