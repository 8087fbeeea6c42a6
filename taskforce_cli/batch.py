"""Running many goals: read a goals file, submit, follow, write results, summarise."""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shared import goals
from shared.domain.models import GoalRequest, GoalStatus
from shared.errors import ConfigurationError
from shared.results import batch_result, not_submitted
from shared.settings import get_settings

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
    """Read a JSONL goals file (``{"id", "goal", ...}`` per line, as in examples/goals;
    a line's optional ``"mode"``, ``"dag"`` or ``"react"``, is its goal's execution mode).

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
                    **({"mode": row["mode"]} if "mode" in row else {}),
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


def run_batch(
    items: list[BatchItem],
    *,
    output: Path,
    timeout_s: float,
    max_in_flight: int = 16,
    advance: Callable[[str], None] = lambda status: None,
) -> list[dict[str, Any]]:
    """Run every item with at most ``max_in_flight`` goals at once, and write one result
    object per goal to ``output``.

    Admission is the batch's backpressure: a new goal is submitted only when one ends,
    so goals do not queue behind each other inside the fleet, each goal's parallel steps
    find free workers together, and ``latency_s`` measures the goal, not the queue.
    Each result is written (and flushed) as its goal ends, so an interrupted batch keeps
    what finished. At the timeout, goals still running are written with their current
    status and goals never submitted with status ``not_submitted``.

    Returns:
        The result objects: ``run --json``'s fields with ``goal_id`` for the goal's
        UUID, ``id`` for the input's id and ``latency_s`` from submission to the end
        (seconds, from the goal's stored timestamps).
    """
    output.parent.mkdir(parents=True, exist_ok=True)
    waiting = deque(items)
    in_flight: dict[uuid.UUID, BatchItem] = {}
    results: list[dict[str, Any]] = []
    interval = get_settings().result_poll_interval_s
    deadline = time.monotonic() + timeout_s

    with output.open("w", encoding="utf-8") as handle:
        def record(result: dict[str, Any]) -> None:
            results.append(result)
            handle.write(json.dumps(result) + "\n")
            handle.flush()
            advance(result["status"])

        def write(goal_id: uuid.UUID) -> None:
            record(batch_result(goals.get_goal(goal_id), in_flight.pop(goal_id).input_id))

        while (waiting or in_flight) and time.monotonic() < deadline:
            while waiting and len(in_flight) < max_in_flight:
                item = waiting.popleft()
                in_flight[goals.submit_goal(item.request)] = item
            for goal_id, status in goals.goal_statuses(list(in_flight)).items():
                if GoalStatus(status).is_final:
                    write(goal_id)
            if in_flight:
                time.sleep(interval)
        for goal_id in list(in_flight):
            write(goal_id)
        for item in waiting:
            record(not_submitted(item.input_id, "batch timed out before submission"))
    return results
