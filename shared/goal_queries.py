"""Reading goals for the v1 API and the console: pages of a tenant's goals with filters,
a goal's full record (steps, attempts, LLM calls), its step changes for the event
stream, and costs by day, provider and model.

Pages are keyset pages on ``(created_at, id)``, newest first; the cursor is opaque to
clients (URL-safe base64 of the last row's key), so a page never skips nor repeats a
goal when new goals arrive meanwhile. Another tenant's goal is reported exactly like an
unknown one.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.models import Episode
from shared.errors import GoalNotFoundError, RequestError
from shared.persistence import events as event_store
from shared.persistence import goals as goal_store
from shared.persistence import keys as key_store
from shared.persistence import listing, views
from shared.persistence.db import get_engine
from shared.settings import get_settings

MAX_METADATA_FILTERS = 5  # most metadata key:value filters in one listing
MAX_FILTER_CHARS = 256  # longest filter value (characters)
MAX_CURSOR_CHARS = 200  # longest cursor accepted (characters)
MAX_COST_DAYS = 366  # longest cost report (days)


@dataclass(frozen=True)
class GoalPage:
    """One page of a listing: goal rows (see :func:`listing.list_goals`) and the cursor
    of the next page (None on the last one)."""

    goals: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class ListQuery:
    """A listing's filters as clients give them (validated by :func:`list_goals`)."""

    statuses: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    metadata: tuple[str, ...] = field(default=())  # "key:value" each
    provider: str | None = None
    model: str | None = None
    batch_id: uuid.UUID | None = None
    session_id: str | None = None


def encode_cursor(created_at: datetime, goal_id: uuid.UUID) -> str:
    """The opaque cursor that starts a page after this goal."""
    raw = json.dumps([created_at.isoformat(), str(goal_id)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """``(created_at, id)`` of a cursor from :func:`encode_cursor`.

    Raises:
        RequestError: The cursor is not one this gateway made (422).
    """
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, goal_id = json.loads(raw)
        return datetime.fromisoformat(stamp), uuid.UUID(goal_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise RequestError("cursor: not a cursor from a previous page") from None


def _utc(moment: datetime | None) -> datetime | None:
    """A naive instant is taken as UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _metadata_pairs(raw: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    if len(raw) > MAX_METADATA_FILTERS:
        raise RequestError(f"metadata: at most {MAX_METADATA_FILTERS} filters")
    pairs = []
    for item in raw:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise RequestError("metadata: each filter reads key:value")
        if len(item) > MAX_FILTER_CHARS or "\x00" in item:
            raise RequestError(f"metadata: at most {MAX_FILTER_CHARS} characters, no NUL")
        pairs.append((key, value))
    return tuple(pairs)


def list_goals(query: ListQuery, *, tenant_id: uuid.UUID, limit: int = 50,
               cursor: str | None = None) -> GoalPage:
    """One page of the tenant's goals, newest first, filtered.

    Args:
        query: The filters.
        tenant_id: Whose goals (the ``default`` tenant also sees goals with no owner).
        limit: Most goals on the page (1 to ``LIST_MAX_LIMIT``).
        cursor: ``next_cursor`` of the previous page; None for the first.

    Raises:
        RequestError: A filter, the limit or the cursor is invalid (422).
    """
    maximum = get_settings().list_max_limit
    if not 1 <= limit <= maximum:
        raise RequestError(f"limit: from 1 to {maximum}")
    after, before = _utc(query.created_after), _utc(query.created_before)
    if after is not None and before is not None and after >= before:
        raise RequestError("created_after must be earlier than created_before")
    for name, value in (("provider", query.provider), ("model", query.model)):
        if value is not None and (len(value) > MAX_FILTER_CHARS or "\x00" in value):
            raise RequestError(f"{name}: at most {MAX_FILTER_CHARS} characters, no NUL")
    filters = listing.GoalFilters(
        tenant_id=tenant_id, include_unowned=tenant_id == key_store.DEFAULT_TENANT_ID,
        statuses=tuple(query.statuses), created_after=after, created_before=before,
        metadata=_metadata_pairs(tuple(query.metadata)), provider=query.provider,
        model=query.model, batch_id=query.batch_id, session_id=query.session_id,
    )
    start = decode_cursor(cursor) if cursor else None
    with get_engine().connect() as connection:
        rows = listing.list_goals(connection, filters=filters, limit=limit + 1, after=start)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None
    return GoalPage(goals=rows, next_cursor=next_cursor)


def check_owner(goal_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
    """Raises GoalNotFoundError unless ``tenant_id`` owns the goal (unknown and foreign
    goals alike)."""
    with get_engine().connect() as connection:
        if not goal_store.owned_by(connection, goal_id=goal_id, tenant_id=tenant_id,
                                   legacy_owner=key_store.DEFAULT_TENANT_ID):
            raise GoalNotFoundError(f"no goal with id {goal_id}")


def goal_record(goal_id: uuid.UUID, *, tenant_id: uuid.UUID) -> Episode:
    """Everything about a goal so far: its view, every attempt of every step (worker,
    outcome) and every LLM call (tokens, USD), in the shape of its episode.

    Raises:
        GoalNotFoundError: Unknown goal, or another tenant's.
    """
    check_owner(goal_id, tenant_id)
    with get_engine().connect() as connection:
        return views.build_episode(connection, goal_id=goal_id)


def read_changes(goal_id: uuid.UUID, *, after_seq: int
                 ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The goal's state and its steps changed after ``after_seq`` (change order), read
    in that order. The caller has checked ownership with :func:`check_owner`.

    The goal is read first: a goal that has ended ended in the same transaction that
    settled its steps, so the step read after it sees every last change.
    """
    with get_engine().connect() as connection:
        state = event_store.goal_state(connection, goal_id=goal_id)
        changes = event_store.step_changes(connection, goal_id=goal_id, after_seq=after_seq)
    return state, changes


def costs(*, tenant_id: uuid.UUID, fleet_wide: bool, days: int = 30) -> list[dict[str, Any]]:
    """Costs by UTC day, provider and model over the last ``days`` days: the beat's
    rollups of every tenant when ``fleet_wide`` (an operator's key), else summed from
    this tenant's own LLM calls.

    Raises:
        RequestError: ``days`` is not between 1 and 366.
    """
    if not 1 <= days <= MAX_COST_DAYS:
        raise RequestError(f"days: from 1 to {MAX_COST_DAYS}")
    since = datetime.now(UTC).date() - timedelta(days=days - 1)
    with get_engine().connect() as connection:
        if fleet_wide:
            return event_store.costs_from_rollups(connection, since=since)
        return event_store.costs_of_tenant(
            connection, tenant_id=tenant_id, since=since,
            include_unowned=tenant_id == key_store.DEFAULT_TENANT_ID)
