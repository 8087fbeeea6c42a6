"""The simulator's HTTP routes (FastAPI).

``POST /v1/chat/completions`` (OpenAI), ``POST /v1/messages`` (Anthropic),
``POST /v1/embeddings`` (OpenAI's format, :mod:`taskforce_cli.vendor_sim.embeddings`) and
``GET /v1/models`` (either format: Anthropic's when the request has an
``anthropic-version`` header). Admin: ``GET /_stats`` (counters for benchmarks),
``POST /_reset`` (zero the counters and the rate window), ``POST /_faults`` (body
``{"sequence": ["500", "ok"]}`` and/or ``{"rates": {"500": 0.05}}``).

Each completion request goes: authentication (any bearer token or ``x-api-key`` is
accepted, and never logged), rate limits, fault choice, then the answer of the ``sim``
provider's rules for the request's data section (what a real model reads), after a
simulated latency. The last :data:`RECEIVED` requests read are kept in
``Simulator.received`` for tests (system prompt, user text, data, input tokens).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
from collections import Counter, deque
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shared.llm.base import LLMRequest
from shared.llm.providers.sim.provider import SimProvider, simulated_tokens
from shared.settings import Settings
from taskforce_cli.vendor_sim import faults as fault_names
from taskforce_cli.vendor_sim.config import SimulatorConfig
from taskforce_cli.vendor_sim.embeddings import embeddings
from taskforce_cli.vendor_sim.faults import FaultInjector, status_of
from taskforce_cli.vendor_sim.formats import (
    SimCall,
    WireError,
    anthropic_call,
    anthropic_error,
    anthropic_response,
    openai_call,
    openai_error,
    openai_response,
)
from taskforce_cli.vendor_sim.limits import RateLimiter, retry_after_header

RECEIVED = 64
"""How many of the last requests read the simulator keeps (``Simulator.received``)."""


class Simulator:
    """State of one simulator: configuration, RNG, faults, limits and counters."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.faults = FaultInjector(config.fault_rates, config.fault_sequence, self.rng)
        self.limiter = RateLimiter(config.rpm, config.tpm, config.window_s)
        self.brain = SimProvider(Settings(sim_latency_scale=0.0))
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.received: deque[SimCall] = deque(maxlen=RECEIVED)

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to counter ``key``."""
        with self._lock:
            self.counts[key] += n

    def stats(self) -> dict[str, Any]:
        """Counters: requests, responses by status, rate-limited, faults, tokens, auth."""
        with self._lock:
            c = dict(self.counts)
        return {
            "requests": c.get("requests", 0),
            "responses": {k[7:]: v for k, v in c.items() if k.startswith("status:")},
            "rate_limited": c.get("rate_limited", 0),
            "faults": {k[6:]: v for k, v in c.items() if k.startswith("fault:")},
            "input_tokens": c.get("input_tokens", 0),
            "output_tokens": c.get("output_tokens", 0),
            "routes": {k[6:]: v for k, v in c.items() if k.startswith("route:")},
            "auth": {k[5:]: v for k, v in c.items() if k.startswith("auth:")},
        }

    def reset(self) -> None:
        """Zero the counters and empty the rate-limit window."""
        with self._lock:
            self.counts.clear()
        self.limiter.reset()

    def number(self) -> int:
        """The next response number (for ids)."""
        with self._lock:
            return next(self._numbers)

    def latency_s(self, purpose: str) -> float:
        """A latency draw for ``purpose`` (seconds)."""
        mean = self.config.latency_s.get(purpose, 0.0)
        with self._lock:
            unit = self.rng.uniform(-1.0, 1.0)
        return max(0.0, mean * (1 + unit * self.config.latency_jitter))

    def answer(self, call: SimCall) -> dict[str, Any]:
        """The ``sim`` provider's answer to ``call``'s data (no latency)."""
        request = LLMRequest(purpose=call.purpose, model=call.model, system=call.system,
                             instruction="", data=call.data, output_schema={})
        return self.brain.generate(request).data


async def _stall(request: Request, seconds: float) -> None:
    """Wait ``seconds``, or less if the client disconnects first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await request.is_disconnected():
            return
        await asyncio.sleep(min(0.05, max(deadline - loop.time(), 0)))


def _authenticated(sim: Simulator, request: Request) -> bool:
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        sim.count("auth:bearer")
        return True
    if request.headers.get("x-api-key"):
        sim.count("auth:x-api-key")
        return True
    return False


async def _complete(request: Request, *, route: str) -> JSONResponse:
    sim: Simulator = request.app.state.simulator
    anthropic = route == "messages"
    error_body = anthropic_error if anthropic else openai_error
    sim.count("requests")
    sim.count(f"route:{route}")

    def reply(status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
              ) -> JSONResponse:
        sim.count(f"status:{status}")
        return JSONResponse(body, status_code=status,
                            headers=sim.limiter.headers() | (headers or {}))

    if not _authenticated(sim, request):
        return reply(401, error_body(401, "missing API key (simulated)"))
    try:
        body = json.loads(await request.body())
        call = anthropic_call(body) if anthropic else openai_call(
            body, json_schema=sim.config.json_schema)
        fault = sim.faults.choose(request.headers.get("x-sim-fault"))
    except (ValueError, WireError, AttributeError, TypeError) as exc:
        return reply(400, error_body(400, f"{exc} (simulated)"))
    sim.received.append(call)
    wait, ticket = sim.limiter.admit(call.input_tokens)
    if wait is not None:
        sim.count("rate_limited")
        headers = {"retry-after": retry_after_header(wait)}
        if not anthropic:
            headers["retry-after-ms"] = str(int(wait * 1000))
        return reply(429, error_body(429, "rate limit reached (simulated)"), headers)
    if fault != fault_names.OK:
        sim.count(f"fault:{fault}")
    status = status_of(fault)
    if status is not None:
        headers = {}
        if status == 429:
            headers = {"retry-after": retry_after_header(sim.config.retry_after_s)}
            if not anthropic:
                headers["retry-after-ms"] = str(int(sim.config.retry_after_s * 1000))
        return reply(status, error_body(status, f"injected fault {fault} (simulated)"), headers)
    if fault == fault_names.TIMEOUT:
        await _stall(request, sim.config.timeout_sleep_s)
    try:
        data = await run_in_threadpool(sim.answer, call)
    except Exception as exc:
        return reply(400, error_body(400, f"cannot answer this data: "
                                          f"{type(exc).__name__} (simulated)"))
    await asyncio.sleep(sim.latency_s(call.purpose))
    text = json.dumps(data)
    if fault == fault_names.MALFORMED:
        text = repr(data)  # Python literal: single quotes, True, None
    elif fault == fault_names.TRUNCATED:
        text = text[: len(text) // 2]
    output_tokens = simulated_tokens(text)
    sim.limiter.add_tokens(ticket, output_tokens)
    sim.count("input_tokens", call.input_tokens)
    sim.count("output_tokens", output_tokens)
    number = sim.number()
    if anthropic:
        plain = fault in (fault_names.MALFORMED, fault_names.TRUNCATED)
        stop = ("max_tokens" if fault == fault_names.TRUNCATED
                else "end_turn" if plain or not call.tool else "tool_use")
        return reply(200, anthropic_response(call, number=number,
                                             data=None if plain else data, text=text,
                                             output_tokens=output_tokens, stop_reason=stop))
    finish = "length" if fault == fault_names.TRUNCATED else "stop"
    return reply(200, openai_response(call, number=number, content=text,
                                      output_tokens=output_tokens, finish_reason=finish))


def create_app(config: SimulatorConfig | None = None) -> FastAPI:
    """The simulator as an ASGI app; its state is ``app.state.simulator``."""
    app = FastAPI(title="Taskforce LLM simulator", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.simulator = Simulator(config or SimulatorConfig())

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        """OpenAI Chat Completions, answered by the ``sim`` model."""
        return await _complete(request, route="chat.completions")

    @app.post("/v1/messages")
    async def messages(request: Request) -> JSONResponse:
        """Anthropic Messages, answered by the ``sim`` model through a tool_use block."""
        return await _complete(request, route="messages")

    app.add_api_route("/v1/embeddings", embeddings, methods=["POST"])

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        """The simulated models, in OpenAI's or (with ``anthropic-version``) Anthropic's form."""
        ids = app.state.simulator.config.models
        if "anthropic-version" in request.headers:
            data = [{"type": "model", "id": m, "display_name": f"{m} (simulated)",
                     "created_at": "2025-01-01T00:00:00Z"} for m in ids]
            return {"data": data, "has_more": False, "first_id": ids[0], "last_id": ids[-1]}
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                            "owned_by": "taskforce-sim"} for m in ids]}

    @app.get("/_stats")
    async def stats() -> dict[str, Any]:
        """Counters since start or the last reset: requests, successes, 429s, faults."""
        return app.state.simulator.stats()

    @app.post("/_reset")
    async def reset() -> dict[str, Any]:
        """Zero the counters and the rate-limit window."""
        app.state.simulator.reset()
        return app.state.simulator.stats()

    @app.post("/_faults")
    async def set_faults(request: Request) -> JSONResponse:
        """Script faults: ``{"sequence": ["500", "ok"]}`` and/or ``{"rates": {"500": 0.05}}``."""
        sim: Simulator = app.state.simulator
        try:
            body = await request.json()
            if "sequence" in body:
                sim.faults.script(body["sequence"])
            if "rates" in body:
                sim.faults.set_rates(body["rates"])
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True})

    return app
