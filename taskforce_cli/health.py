"""``taskforce worker-health``: the exec liveness probe of a worker container."""

from __future__ import annotations

from typing import Annotated

import typer

from shared import heartbeat
from shared.settings import get_settings
from taskforce_cli.console import err, out


def worker_health(
    max_age: Annotated[float, typer.Option(
        "--max-age", min=1.0,
        help="Oldest heartbeat accepted (seconds; the worker touches it every 2 s).")] = 60.0,
) -> None:
    """Exit 0 if this host's worker touched its heartbeat file (WORKER_HEARTBEAT_FILE)
    within --max-age seconds, else 1. Reads one local file: cheap enough to run as a
    Kubernetes exec probe every few seconds, and it asks the broker nothing."""
    path = get_settings().worker_heartbeat_path
    age = heartbeat.age_s(path)
    if age is None:
        err.print(f"no worker heartbeat at {path}")
        raise typer.Exit(code=1)
    if age > max_age:
        err.print(f"worker heartbeat at {path} is {age:.0f} s old (more than {max_age:.0f} s)")
        raise typer.Exit(code=1)
    out.print(f"worker heartbeat {age:.1f} s old")
