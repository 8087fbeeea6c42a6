"""Traces and metrics end to end: a real gateway process and two real worker processes
export over OTLP/HTTP to a loopback receiver this module controls.

While this module runs, any other workers on the test broker (the session's ``workers``)
stop consuming, so that every step of these goals runs on the two traced workers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import text

from shared import auth, names
from shared.celery_app import app as celery_app
from shared.celery_app import send
from shared.domain.models import GoalRequest, Plan
from shared.persistence import goals as goal_store
from shared.persistence.db import get_engine
from shared.settings import child_environment
from taskforce_cli import fleet as fleet_module
from taskforce_cli import otlp_sink
from taskforce_cli.embedded import free_port
from tests.conftest import CANARY_KEY, REPO
from tests.support.waiting import wait_for, wait_until

WORKERS = ("otel1", "otel2")
METRICS_TOKEN = f"metrics-{uuid.uuid4().hex}"
QUEUES = (names.STEPS_QUEUE, names.MAINTENANCE_QUEUE)


def _other_workers() -> list[str]:
    replies = celery_app.control.ping(timeout=1.0)
    return [name for reply in replies for name in reply
            if name.split("@", 1)[0] not in WORKERS]


def _start_gateway(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskforce_cli.main", "gateway", "--host", "127.0.0.1",
             "--port", str(port), "--no-migrate"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=child_environment(env),
            start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout=60, interval=0.2, message="the traced gateway answers")
    return process, url


@pytest.fixture(scope="module")
def traced(services, llm_simulator) -> Iterator[SimpleNamespace]:
    """A gateway and two workers exporting traces and metrics to a loopback receiver."""
    with otlp_sink.running() as sink:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "METRICS_TOKEN": METRICS_TOKEN,
            "AUTH_ENABLED": "true",
            # The reconciler test strands a step; the traced workers repair it at once.
            "RECONCILE_STALE_S": "0.2",
            # A limit far above this test's calls: every call is granted, and timed.
            "LLM_RATE_LIMITS": "openai:*=100000rpm",
        }
        paused = _other_workers()
        for queue in QUEUES:
            if paused:
                celery_app.control.cancel_consumer(queue, destination=paused, reply=True)
        log_dir = Path(tempfile.mkdtemp(prefix="taskforce-otel-"))
        workers = [fleet_module.start_worker(name, log_dir=log_dir, concurrency=1, env=env)
                   for name in WORKERS]
        gateway = None
        try:
            fleet_module.wait_for_workers(workers)
            gateway, url = _start_gateway(env, log_dir / "gateway.log")
            key = auth.create_key(tenant=f"otel-{uuid.uuid4().hex[:8]}",
                                  scopes=[auth.GOALS_SUBMIT, auth.GOALS_READ])
            yield SimpleNamespace(sink=sink, url=url, key=key.key,
                                  headers={"Authorization": f"Bearer {key.key}"})
        finally:
            if gateway is not None:
                gateway.terminate()
                gateway.wait(timeout=15)
            for worker in workers:
                worker.stop()
            for queue in QUEUES:
                if paused:
                    celery_app.control.add_consumer(queue, destination=paused, reply=True)


def _run(traced: SimpleNamespace, body: dict) -> dict:
    # A long timeout: the gateway's first submission imports the vendor SDKs.
    response = httpx.post(f"{traced.url}/v1/goals", json=body, headers=traced.headers,
                          timeout=120)
    assert response.status_code == 202, response.text
    goal_id = response.json()["id"]

    def view() -> dict:
        return httpx.get(f"{traced.url}/v1/goals/{goal_id}", headers=traced.headers,
                         timeout=10).json()

    return wait_for(view, lambda v: v["status"] in ("succeeded", "failed", "cancelled"),
                    timeout=90, interval=0.1, message=f"goal {goal_id} ends")


def _trace(sink: otlp_sink.OtlpSink, trace_id: str, wanted) -> list[otlp_sink.ReceivedSpan]:
    return wait_for(lambda: [s for s in sink.spans() if s.trace_id == trace_id], wanted,
                    timeout=30, interval=0.1, message=f"the spans of trace {trace_id}")


@pytest.fixture(scope="module")
def traced_goal(traced) -> SimpleNamespace:
    """One goal on the openai provider (answered by the vendor simulator, through the
    real SDK) with two lookups that can run at once, and the spans of its trace."""
    goal = _run(traced, {"goal": "Were Scott Derrickson and Ed Wood of the same "
                                 "nationality?", "provider": "openai"})
    assert goal["status"] == "succeeded", goal["error"]
    trace_id = goal["trace_id"]
    assert trace_id and len(trace_id) == 32 and int(trace_id, 16)
    synthesize = next(s["id"] for s in goal["steps"] if s["kind"] == "synthesize")

    def complete(spans: list[otlp_sink.ReceivedSpan]) -> bool:
        names_ = {s.name for s in spans}
        steps = {s.attributes.get("taskforce.step.id") for s in spans
                 if s.name == f"run/{names.RUN_STEP}"}
        return ("submit goal" in names_ and f"run/{names.PLAN_GOAL}" in names_
                and synthesize in steps and any(n.startswith("POST") for n in names_))

    return SimpleNamespace(goal=goal, trace_id=trace_id, spans=_trace(traced.sink, trace_id,
                                                                      complete))


def test_one_trace_holds_the_gateway_planner_steps_and_llm_calls(traced_goal) -> None:
    spans, goal = traced_goal.spans, traced_goal.goal
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == 1 and roots[0].service == "taskforce-gateway", roots
    assert roots[0].name.startswith("POST /v1/goals")
    # Every other span hangs from a span of the same trace: no broken link anywhere.
    assert all(s.parent_span_id in by_id for s in spans if s is not roots[0])
    services = {s.service for s in spans}
    assert {"taskforce-gateway", "taskforce-worker"} <= services
    plan = [s for s in spans if s.name == f"run/{names.PLAN_GOAL}"]
    assert plan and plan[0].attributes["taskforce.goal.id"] == goal["id"]
    runs = [s for s in spans if s.name == f"run/{names.RUN_STEP}"]
    assert {s.attributes["taskforce.step.id"] for s in runs} == {s["id"] for s in goal["steps"]}
    # The steps ran on both worker processes (each has one thread; the lookups overlap).
    assert len({s.instance for s in runs}) == 2, {s.instance for s in runs}
    tools = [s for s in spans if s.name == "execute_tool search"]
    assert len(tools) == 2 and all(s.attributes["gen_ai.tool.name"] == "search" for s in tools)
    chats = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]
    purposes = {s.attributes["taskforce.llm.purpose"] for s in chats}
    assert {"plan", "synthesize"} <= purposes
    for chat in chats:
        assert chat.kind == 3  # SPAN_KIND_CLIENT
        assert chat.name == f"chat {goal['model']}"
        assert chat.attributes["gen_ai.provider.name"] == "openai"
        assert chat.attributes["gen_ai.request.model"] == goal["model"]
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0
        assert chat.attributes["gen_ai.usage.output_tokens"] > 0
        assert "gen_ai.input.messages" not in chat.attributes  # capture is off by default
    assert sum(c.attributes["gen_ai.usage.input_tokens"] + c.attributes[
        "gen_ai.usage.output_tokens"] for c in chats) == goal["tokens"]
    ended = [attrs for s in spans for name, attrs in s.events if name == "goal ended"]
    assert ended == [{"taskforce.goal.id": goal["id"], "taskforce.goal.status": "succeeded"}]
    assert any(s.attributes.get("db.system") == "postgresql"
               or s.attributes.get("db.system.name") == "postgresql" for s in spans)


def test_no_secret_and_no_prompt_reaches_the_exporter(traced, traced_goal) -> None:
    received = b"".join(traced.sink.bodies)
    assert received, "nothing was exported"
    for secret in (CANARY_KEY, traced.key, traced.key.split("_")[-1], "Bearer "):
        assert secret.encode() not in received, secret[:12]
    assert b"Scott Derrickson" not in received  # the goal's text is in the prompts only


def test_worker_metrics_arrive_over_otlp(traced, traced_goal) -> None:
    model = traced_goal.goal["model"]

    def series() -> set[tuple[str, str]]:
        return {(p.metric, p.attributes.get("taskforce.step.kind", "")) for p in
                traced.sink.points()}

    # Each worker exports its own series, every 0.5 s: wait until both workers' are in.
    wanted = {("taskforce.step.duration", "tool"), ("taskforce.step.duration", "synthesize"),
              ("taskforce.step.dispatch_latency", "tool"),
              ("taskforce.step.dispatch_latency", "synthesize"),
              ("gen_ai.client.token.usage", ""), ("gen_ai.client.operation.duration", ""),
              ("taskforce.llm.cost", ""), ("taskforce.llm.rate_limit.wait", "")}
    wait_for(series, lambda got: wanted <= got, timeout=30, interval=0.2,
             message="the workers' metrics")
    points = traced.sink.points()
    tokens = [p for p in points if p.metric == "gen_ai.client.token.usage"
              and p.attributes.get("gen_ai.request.model") == model]
    assert {p.attributes["gen_ai.token.type"] for p in tokens} == {"input", "output"}
    assert all(p.attributes["gen_ai.provider.name"] == "openai" and p.count for p in tokens)
    steps = [p for p in points if p.metric == "taskforce.step.duration"]
    assert {("tool", "search"), ("synthesize", "")} <= {
        (p.attributes["taskforce.step.kind"], p.attributes["taskforce.tool.name"])
        for p in steps}
    assert all(p.total >= 0 and p.count >= 1 for p in steps)
    cost = [p for p in points if p.metric == "taskforce.llm.cost"
            and p.attributes.get("gen_ai.request.model") == model]
    assert cost and max(p.value for p in cost) > 0
    waits = [p for p in points if p.metric == "taskforce.llm.rate_limit.wait"]
    assert {p.attributes["taskforce.rate_limit.outcome"] for p in waits} == {"granted"}
    dispatch = [p for p in points if p.metric == "taskforce.step.dispatch_latency"]
    assert {"tool", "synthesize"} <= {p.attributes["taskforce.step.kind"] for p in dispatch}
    assert all(0 <= p.total / p.count < 30 for p in dispatch if p.count)


def test_metrics_endpoint_needs_the_token_or_the_scope(traced, traced_goal) -> None:
    url = f"{traced.url}/metrics"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=10
                     ).status_code == 401
    assert httpx.get(url, headers=traced.headers, timeout=10).status_code == 403
    reader = auth.create_key(tenant=f"otel-{uuid.uuid4().hex[:8]}", scopes=[auth.METRICS_READ])
    by_scope = httpx.get(url, headers={"Authorization": f"Bearer {reader.key}"}, timeout=10)
    by_token = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                         timeout=10)
    assert by_scope.status_code == by_token.status_code == 200
    body = by_token.text
    assert by_token.headers["content-type"].startswith("text/plain")
    succeeded = [line for line in body.splitlines()
                 if line.startswith("taskforce_goals") and 'status="succeeded"' in line]
    assert succeeded and float(succeeded[0].rsplit(" ", 1)[1]) >= 1, body[:2000]
    assert any(line.startswith("taskforce_steps_queued ") or
               line.startswith("taskforce_steps_queued{") for line in body.splitlines())
    assert "taskforce_steps_queued_oldest_age_seconds" in body
    assert traced_goal.goal["goal"] not in body and CANARY_KEY not in body


def test_a_reconciler_republish_continues_the_goal_s_trace(traced) -> None:
    # A goal submitted in a trace (its context stored on the row) whose root step was
    # committed as queued and never published, as after a crash; the reconciler, a task
    # of its own trace, publishes it again inside the goal's trace.
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    plan = {"steps": [{"id": 1, "kind": "tool", "tool": "echo", "args": {"value": 1}},
                      {"id": 2, "kind": "synthesize", "args": {"inputs": ["$1"]}}]}
    request = GoalRequest(goal="stranded", plan=plan)
    with get_engine().begin() as connection:
        goal_id, _ = goal_store.create_goal(
            connection, text_=request.goal, provider="sim", model="sim-planner-1",
            metadata={}, trace_id=trace_id, traceparent=f"00-{trace_id}-{parent}-01")
        connection.execute(text("UPDATE goals SET status = 'planning' WHERE id = :id"),
                           {"id": goal_id})
        goal_store.start_plan(connection, goal_id=goal_id,
                              plan=Plan.model_validate(request.plan))

    def stranded_step_republished() -> bool:
        # A reconciler pass republishes a step only once it has been queued longer
        # than RECONCILE_STALE_S; a pass that came too soon finds nothing, so ask again.
        send(names.RECONCILE)
        with get_engine().connect() as connection:
            return connection.execute(
                text("SELECT status FROM steps WHERE goal_id = :id AND step_id = 1"),
                {"id": goal_id}).scalar_one() != "queued"

    wait_for(stranded_step_republished, timeout=30, interval=0.5,
             message="the stranded step republished and claimed")
    spans = _trace(traced.sink, trace_id, lambda found: {1, 2} <= {
        s.attributes.get("taskforce.step.id") for s in found
        if s.name == f"run/{names.RUN_STEP}"})
    republish = [s for s in spans if s.name == "reconciler republish"]
    assert republish and republish[0].parent_span_id == parent
    assert republish[0].links, "the reconciler's own span is linked"
    wait_for(lambda: [p for p in traced.sink.points()
                      if p.metric == "taskforce.reconciler.repairs"
                      and p.attributes["taskforce.repair"] == "steps_republished"],
             timeout=30, interval=0.2, message="the reconciler's repairs metric")
    assert os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") is None  # only the children export
