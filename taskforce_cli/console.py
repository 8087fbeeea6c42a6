"""What every ``taskforce`` command shares: the consoles, common options, and how a
command fails (a red ``error:`` line on stderr, exit status 2)."""

from __future__ import annotations

from typing import Annotated, NoReturn, Optional

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)

ConcurrencyOption = Annotated[
    Optional[int],
    typer.Option(help="Threads per started worker process (default: WORKER_CONCURRENCY)."),
]


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with status 2."""
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=2)
