"""Batches of goals over HTTP: parse a JSON array or JSONL body, submit every item
through :func:`shared.goals.submit` (the same checks and quotas as ``POST /v1/goals``),
report progress and cost, and stream the results.

Every item is validated before anything is stored: one invalid item refuses the whole
batch (422 naming the item), so a client fixes its file and sends it again. Items that
are valid but refused at submission (a quota, a model not allowed, a broker blip) are
recorded with their status code and reason; resending them with the same
``idempotency_key`` later submits only what is missing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from shared import goals
from shared.domain.limits import InputLimitError, check_json_document
from shared.domain.models import GoalRequest, GoalStatus
from shared.errors import BatchNotFoundError, GoalNotFoundError, RequestError, TransientError
from shared.persistence import batches as batch_store
from shared.persistence import views
from shared.persistence.db import get_engine
from shared.results import batch_result, not_submitted
from shared.settings import get_settings

JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines",
               "application/jsonlines")
RESULTS_CHUNK = 50  # goals read per connection while streaming results


class BatchItem(GoalRequest):
    """One goal of a batch: a goal request plus the client's ``id`` for it (kept with
    its result) and an optional ``idempotency_key`` (as the header of ``POST
    /v1/goals``)."""

    id: str | int | None = Field(default=None, union_mode="left_to_right")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=255)

    def request(self) -> GoalRequest:
        """The goal request alone (what an idempotency key fingerprints)."""
        return GoalRequest.model_validate(
            self.model_dump(exclude={"id", "idempotency_key"}, exclude_unset=True))


class _IdLimit(BaseModel):
    id: str = Field(max_length=256)


@dataclass(frozen=True)
class BatchAccepted:
    """Outcome of a submission: the batch id and each item's outcome (``index``,
    ``id``, ``goal_id``, ``status_code``, ``error``)."""

    batch_id: uuid.UUID
    items: list[dict[str, Any]]

    @property
    def accepted(self) -> int:
        """Items that became (or replayed) a goal."""
        return sum(1 for item in self.items if item["goal_id"])


def parse_items(body: bytes, content_type: str) -> list[BatchItem]:
    """The items of a batch body: a JSON array, or one JSON object per line.

    Raises:
        RequestError: Not JSON, empty, more than ``BATCH_MAX_GOALS`` items, or an item
            that is not a valid goal (the message names it by position, from 0).
    """
    settings = get_settings()
    media = content_type.split(";")[0].strip().lower()
    try:
        if media in JSONL_TYPES:
            lines = [line for line in body.split(b"\n") if line.strip()]
            if len(lines) > settings.batch_max_goals:
                raise RequestError(f"a batch holds at most {settings.batch_max_goals} goals")
            raw = [check_json_document(line, settings.max_json_depth, where=f"line {n + 1}")
                   for n, line in enumerate(lines)]
        elif media == "application/json":
            raw = check_json_document(body, settings.max_json_depth)
            if not isinstance(raw, list):
                raise RequestError("a JSON batch is an array of goals")
        else:
            raise RequestError("send application/json (an array) or application/x-ndjson")
    except InputLimitError as exc:
        raise RequestError(str(exc)) from None
    if not raw:
        raise RequestError("a batch holds at least one goal")
    if len(raw) > settings.batch_max_goals:
        raise RequestError(f"a batch holds at most {settings.batch_max_goals} goals")
    items = []
    for index, value in enumerate(raw):
        try:
            item = BatchItem.model_validate(value)
            if isinstance(item.id, str):
                _IdLimit(id=item.id)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "item"
            raise RequestError(f"item {index}: {where}: {first['msg']}") from None
        items.append(item)
    return items


def submit_batch(items: list[BatchItem], *, tenant_id: uuid.UUID) -> BatchAccepted:
    """Store a batch and submit each item as a goal of it, in order.

    Each item goes through :func:`shared.goals.submit` with the tenant's quotas; an
    item refused there is recorded with its status code and reason and the next one is
    tried. What was submitted is recorded even if the loop is cut short.

    Raises:
        Whatever stops the loop early (a database outage); items submitted until then
        keep their goals and their record.
    """
    with get_engine().begin() as connection:
        batch_id = batch_store.create_batch(connection, tenant_id=tenant_id, total=len(items))
    outcomes: list[dict[str, Any]] = []
    try:
        for index, item in enumerate(items):
            outcome = {"index": index, "id": _input_id(item, index), "goal_id": None,
                       "status_code": 202, "error": None}
            try:
                submitted = goals.submit(item.request(), idempotency_key=item.idempotency_key,
                                         tenant_id=tenant_id, batch_id=batch_id)
                outcome["goal_id"] = str(submitted.goal_id)
                if not submitted.created:
                    outcome["status_code"] = 200  # replayed by its idempotency key
            except RequestError as exc:
                outcome.update(status_code=exc.http_status, error=exc.detail())
            except TransientError as exc:
                outcome.update(status_code=503, error=str(exc))
            outcomes.append(outcome)
    finally:
        with get_engine().begin() as connection:
            batch_store.record_items(connection, batch_id=batch_id, items=outcomes)
    return BatchAccepted(batch_id=batch_id, items=outcomes)


def _input_id(item: BatchItem, index: int) -> str:
    return str(item.id) if item.id is not None else str(index)


def _goal_ids(row: dict[str, Any]) -> list[uuid.UUID]:
    return [uuid.UUID(item["goal_id"]) for item in row["items"] if item.get("goal_id")]


def _load(batch_id: uuid.UUID, tenant_id: uuid.UUID) -> dict[str, Any]:
    with get_engine().connect() as connection:
        row = batch_store.get_batch(connection, batch_id=batch_id, tenant_id=tenant_id)
    if row is None:
        raise BatchNotFoundError(f"no batch with id {batch_id}")
    return row


def batch_status(batch_id: uuid.UUID, *, tenant_id: uuid.UUID) -> dict[str, Any]:
    """Progress of a batch: ``id``, ``created_at``, ``total``, ``accepted``,
    ``rejected``, ``counts`` (goals by status), ``done`` (every goal ended),
    ``input_tokens``, ``output_tokens``, ``cost_usd`` (USD so far) and ``rejections``
    (the refused items: ``index``, ``id``, ``status_code``, ``error``).

    Raises:
        BatchNotFoundError: No such batch for this tenant (404).
    """
    row = _load(batch_id, tenant_id)
    with get_engine().connect() as connection:
        totals = batch_store.batch_totals(connection, batch_id=batch_id,
                                          goal_ids=_goal_ids(row))
    counts = totals["counts"]
    ended = sum(n for status, n in counts.items() if GoalStatus(status).is_final)
    return {
        "id": row["id"], "created_at": row["created_at"], "total": row["total"],
        "accepted": row["accepted"], "rejected": len(row["items"]) - row["accepted"],
        "counts": counts, "done": ended == sum(counts.values()),
        "input_tokens": totals["input_tokens"], "output_tokens": totals["output_tokens"],
        "cost_usd": totals["cost_usd"],
        "rejections": [{k: item[k] for k in ("index", "id", "status_code", "error")}
                       for item in row["items"] if not item.get("goal_id")],
    }


def batch_items(batch_id: uuid.UUID, *, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """Each item's outcome, in order (raises BatchNotFoundError like :func:`batch_status`)."""
    return list(_load(batch_id, tenant_id)["items"])


def batch_results(batch_id: uuid.UUID, *, tenant_id: uuid.UUID) -> Iterator[str]:
    """The batch's results as JSONL lines (each ending in a newline), in item order:
    the line ``taskforce batch`` writes for a goal (its current status while it runs),
    or ``status: not_submitted`` with the reason for a refused item (``deleted`` for a
    goal removed by retention since).

    Raises:
        BatchNotFoundError: No such batch for this tenant (404), before any line.
    """
    items = batch_items(batch_id, tenant_id=tenant_id)

    def lines() -> Iterator[str]:
        for start in range(0, len(items), RESULTS_CHUNK):
            chunk = items[start:start + RESULTS_CHUNK]
            with get_engine().connect() as connection:
                for item in chunk:
                    if not item.get("goal_id"):
                        line = not_submitted(item["id"], item.get("error") or "not submitted")
                    else:
                        try:
                            view = views.get_goal_view(connection,
                                                       goal_id=uuid.UUID(item["goal_id"]))
                            line = batch_result(view, item["id"])
                        except GoalNotFoundError:  # deleted after MEMORY_RETENTION_DAYS
                            line = {**not_submitted(item["id"], "goal deleted by retention"),
                                    "goal_id": item["goal_id"], "status": "deleted"}
                    yield json.dumps(line) + "\n"

    return lines()
