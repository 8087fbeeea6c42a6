"""Running many goals: read a goals file, submit, follow, write results, summarise."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared import service
from shared.cli.results import result_object
from shared.config import get_settings
from shared.domain.models import GoalRequest, GoalStatus
from shared.errors import ConfigurationError

# Fields of a goals file that are passed on to the goal's metadata. Reference answers
# are deliberately not among them: nothing that runs a goal ever sees them.
METADATA_FIELDS = ("id", "benchmark", "parallel_width")


@dataclass(frozen=True)
class BatchItem:
    """One line of a goals file: its id and the request built from it."""

    input_id: str
    request: GoalRequest


def read_goals(
    path: Path, *, limit: int | None = None, provider: str | None = None,
    model: str | None = None,
) -> list[BatchItem]:
    """Read a JSONL goals file (``{"id", "goal", ...}`` per line, as in examples/goals).

    Raises:
        ConfigurationError: The file is missing or a line is not a valid goal (the
            message names the line).
    """
    if not path.exists():
        raise ConfigurationError(f"{path} does not exist")
    items: list[BatchItem] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if limit is not None and len(items) >= limit:
                break
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                request = GoalRequest(
                    goal=row["goal"], provider=provider, model=model,
                    metadata={k: row[k] for k in METADATA_FIELDS if k in row},
                )
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"{path}:{number}: not JSON: {exc.msg}") from None
            except (KeyError, TypeError):
                raise ConfigurationError(f"{path}:{number}: no 'goal' field") from None
            except ValidationError as exc:
                msg = exc.errors(include_url=False)[0]["msg"]
                raise ConfigurationError(f"{path}:{number}: {msg}") from None
            items.append(BatchItem(input_id=str(row.get("id", number)), request=request))
    return items


def wait_for_goals(
    goal_ids: list[uuid.UUID],
    *,
    timeout_s: float,
    on_final: Callable[[uuid.UUID, str], None],
    on_poll: Callable[[dict[uuid.UUID, str]], None] | None = None,
) -> set[uuid.UUID]:
    """Poll until every goal is final or ``timeout_s`` passes; returns the unfinished ids.

    ``on_final(goal_id, status)`` is called once per goal as it ends.
    """
    interval = get_settings().result_poll_interval_s
    pending = set(goal_ids)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        statuses = service.goal_statuses(pending)
        if on_poll:
            on_poll(statuses)
        for goal_id, status in statuses.items():
            if GoalStatus(status).is_final:
                pending.discard(goal_id)
                on_final(goal_id, status)
        if pending:
            time.sleep(interval)
    return pending


def run_batch(
    items: list[BatchItem],
    *,
    output: Path,
    timeout_s: float,
    advance: Callable[[str], None] = lambda status: None,
) -> list[dict[str, Any]]:
    """Submit every item, wait, and write one result object per goal to ``output``.

    Each result is written (and flushed) as its goal ends, so an interrupted batch keeps
    what finished. A goal still running at the timeout is written with its current
    status.

    Returns:
        The result objects: ``run --json``'s fields with ``goal_id`` for the goal's
        UUID, ``id`` for the input's id and ``latency_s`` from submission to the end
        (seconds, from the goal's stored timestamps).
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    submitted: dict[uuid.UUID, BatchItem] = {}
    for item in items:
        submitted[service.submit_goal(item.request)] = item

    results: list[dict[str, Any]] = []
    with output.open("w", encoding="utf-8") as handle:
        def write(goal_id: uuid.UUID) -> None:
            view = service.get_goal(goal_id)
            result = result_object(view)
            result["goal_id"] = result.pop("id")
            latency = (
                (view.finished_at - view.created_at).total_seconds() if view.finished_at else None
            )
            result = {"id": submitted[goal_id].input_id, **result, "latency_s": latency}
            results.append(result)
            handle.write(json.dumps(result) + "\n")
            handle.flush()
            advance(view.status.value)

        unfinished = wait_for_goals(
            list(submitted), timeout_s=timeout_s, on_final=lambda goal_id, _: write(goal_id)
        )
        for goal_id in unfinished:
            write(goal_id)
    return results


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
