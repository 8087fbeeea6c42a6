"""One trace per goal: started at submission, carried by Celery message headers from
task to task, and resumed from the goal row where no message carries it.

The Celery instrumentation puts the W3C ``traceparent`` of the publishing span in every
message and continues it in the task that runs it, so ``plan_goal``, each ``run_step``,
a replan and each dependent a step dispatches all join the goal's trace, on whichever
worker. Two publishers act outside that chain: the reconciler (a beat-driven task of its
own) and an approval decided through the gateway or the CLI. Both resume the goal's trace
from the ``traceparent`` stored on its row at submission (:func:`resumed`), linking the
span they act in.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.telemetry.setup import tracer, tracing_enabled

GOAL_ID = "taskforce.goal.id"
STEP_ID = "taskforce.step.id"
_propagator = TraceContextTextMapPropagator()
# Traces already given to a goal in this process: a second goal submitted within the same
# request (a batch) gets a trace of its own, linked to the request's.
_claimed_traces: OrderedDict[int, None] = OrderedDict()
_claimed_lock = threading.Lock()
_CLAIMED_MAX = 4_096


@dataclass(frozen=True)
class GoalTrace:
    """The trace a goal was submitted in.

    Attributes:
        trace_id: 32 lowercase hex digits, or None when tracing is off.
        traceparent: W3C ``traceparent`` of the submission span, stored on the goal row.
    """

    trace_id: str | None = None
    traceparent: str | None = None

    def record_goal(self, goal_id: uuid.UUID) -> None:
        """Name the goal on the submission span (once its id is known)."""
        trace.get_current_span().set_attribute(GOAL_ID, str(goal_id))


def _claim(trace_id: int) -> bool:
    """True the first time this process gives ``trace_id`` to a goal."""
    with _claimed_lock:
        if trace_id in _claimed_traces:
            return False
        _claimed_traces[trace_id] = None
        if len(_claimed_traces) > _CLAIMED_MAX:
            _claimed_traces.popitem(last=False)
        return True


@contextlib.contextmanager
def submission() -> Iterator[GoalTrace]:
    """The span a goal's submission runs in, and the trace the goal will carry.

    It continues the current trace (the gateway's request span: ``POST /v1/goals`` and
    the goal share a trace) unless that trace already holds another goal, in which case
    it starts a new trace linked to the current span. Publishing ``plan_goal`` inside it
    carries the trace to the worker. With tracing off it yields an empty
    :class:`GoalTrace` and costs nothing.
    """
    if not tracing_enabled():
        yield GoalTrace()
        return
    current = trace.get_current_span().get_span_context()
    fresh = current.is_valid and not _claim(current.trace_id)
    options: dict[str, Any] = {}
    if fresh:
        options = {"context": trace.set_span_in_context(trace.INVALID_SPAN),
                   "links": [trace.Link(current)]}
    with tracer().start_as_current_span("submit goal", **options) as span:
        context = span.get_span_context()
        if not context.trace_flags.sampled:
            yield GoalTrace()
            return
        if fresh or not current.is_valid:
            _claim(context.trace_id)
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        yield GoalTrace(trace_id=trace.format_trace_id(context.trace_id),
                        traceparent=carrier.get("traceparent"))


@contextlib.contextmanager
def resumed(traceparent: str | None, goal_id: uuid.UUID | str,
            name: str = "resume goal trace") -> Iterator[None]:
    """Run the body (a publish) inside the goal's trace, from its stored ``traceparent``.

    The span it opens is a child of the goal's submission span and links the span the
    caller was in (a reconciler pass, an approval request). Without a stored context,
    or with tracing off, the body runs as it is.
    """
    if traceparent is None or not tracing_enabled():
        yield
        return
    parent = _propagator.extract({"traceparent": traceparent})
    current = trace.get_current_span().get_span_context()
    links = [trace.Link(current)] if current.is_valid else []
    with tracer().start_as_current_span(name, context=parent, links=links,
                                        attributes={GOAL_ID: str(goal_id)}):
        yield


def traceparents(goal_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The stored ``traceparent`` of each goal that has one; nothing is read when tracing
    is off."""
    wanted = list(goal_ids)
    if not wanted or not tracing_enabled():
        return {}
    from shared.persistence import retry as db_retry
    from shared.persistence.telemetry import goal_traceparents

    return db_retry.run(lambda c: goal_traceparents(c, goal_ids=wanted),
                        transactional=False)


def annotate(goal_id: uuid.UUID | str, step_id: int | None = None, **attributes: Any) -> None:
    """Name the goal (and step) on the current span, with any other ``attributes``."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute(GOAL_ID, str(goal_id))
    if step_id is not None:
        span.set_attribute(STEP_ID, step_id)
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(key, value)


def goal_ended(goal_id: uuid.UUID | str, status: str, error: str | None = None) -> None:
    """Mark the goal's end on the current span (an event ``goal ended`` with its status
    and, for a failure, the first 200 characters of its error)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes = {GOAL_ID: str(goal_id), "taskforce.goal.status": str(status)}
    if error:
        attributes["taskforce.goal.error"] = error[:200]
    span.add_event("goal ended", attributes)
