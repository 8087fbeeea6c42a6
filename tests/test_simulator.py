"""The wire-level LLM simulator: formats, faults, limits, admin endpoints and the CLI.

Plain HTTP against simulators started in this process on loopback (and one started
through ``taskforce sim-llm``); no Postgres, Redis or worker is needed.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from shared.errors import ConfigurationError
from shared.llm import roles
from shared.llm.base import render
from shared.llm.providers import get_provider
from shared.settings import get_settings
from shared.tools.registry import default_registry
from taskforce_cli.vendor_sim.config import SimulatorConfig, parse_latencies
from taskforce_cli.vendor_sim.faults import FaultInjector, parse_rates, parse_sequence
from taskforce_cli.vendor_sim.limits import RateLimiter
from taskforce_cli.vendor_sim.server import RunningSimulator, running

GOAL = "What is 17 * 23?"
AUTH = {"authorization": "Bearer sim"}


PLAN = render(roles.plan_request(GOAL, model="m", registry=default_registry()))


def chat_body(**extra: object) -> dict:
    return {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": PLAN.system},
        {"role": "user", "content": [{"type": "text", "text": PLAN.user}]}]} | extra


def messages_body(**extra: object) -> dict:
    return {"model": "claude-haiku-4-5", "max_tokens": 512, "system": PLAN.system,
            "messages": [{"role": "user", "content": PLAN.user}],
            "tools": [{"name": "submit_plan", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "submit_plan"}} | extra


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with running(SimulatorConfig(latency_s={}, retry_after_s=2.0, timeout_sleep_s=5.0)) as s:
        yield s


@pytest.fixture()
def client(sim: RunningSimulator) -> Iterator[httpx.Client]:
    sim.simulator.reset()
    sim.simulator.faults.script([])
    with httpx.Client(base_url=sim.base_url, timeout=5) as http:
        yield http


def test_chat_completions_answers_in_openai_format_marked_simulated(client: httpx.Client,
                                                                   ) -> None:
    response = client.post("/v1/chat/completions", json=chat_body(max_tokens=300), headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["system_fingerprint"] == "taskforce-sim"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    plan = json.loads(choice["message"]["content"])
    assert plan["simulated"] is True and plan["steps"][0]["tool"] == "calculator"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == -(-len(choice["message"]["content"]) // 4)


def test_messages_answers_with_a_tool_use_block(client: httpx.Client) -> None:
    response = client.post("/v1/messages", json=messages_body(),
                           headers={"x-api-key": "sim", "anthropic-version": "2023-06-01"})
    body = response.json()
    assert response.status_code == 200 and body["id"].startswith("msg_sim_")
    assert body["stop_reason"] == "tool_use"
    (block,) = body["content"]
    assert block["type"] == "tool_use" and block["name"] == "submit_plan"
    assert block["input"]["steps"][-1]["kind"] == "synthesize"
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0


def test_models_are_listed_in_either_format(client: httpx.Client) -> None:
    openai_models = client.get("/v1/models").json()
    assert openai_models["object"] == "list" and openai_models["data"][0]["object"] == "model"
    anthropic_models = client.get("/v1/models", headers={"anthropic-version": "2023-06-01"})
    assert anthropic_models.json()["data"][0]["type"] == "model"


def test_requests_without_a_key_a_role_or_a_data_section_are_refused(
        client: httpx.Client) -> None:
    assert client.post("/v1/chat/completions", json=chat_body()).status_code == 401
    missing = client.post("/v1/messages", json=messages_body(messages=[
        {"role": "user", "content": "hello"}]), headers=AUTH)
    assert missing.status_code == 400
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert "<data>" in missing.json()["error"]["message"]
    stranger = client.post("/v1/messages", json=messages_body(system="You plan."), headers=AUTH)
    assert stranger.status_code == 400 and "system prompt" in stranger.text
    assert client.post("/v1/chat/completions", content=b"{", headers=AUTH).status_code == 400


@pytest.mark.parametrize(("fault", "status"), [("500", 500), ("529", 529), ("429", 429),
                                               ("malformed-json", 200), ("truncated", 200)])
def test_the_fault_header_injects_one_fault(client: httpx.Client, fault: str,
                                            status: int) -> None:
    response = client.post("/v1/chat/completions", json=chat_body(),
                           headers=AUTH | {"x-sim-fault": fault})
    assert response.status_code == status
    if status == 429:
        assert response.headers["retry-after"] == "2"
        assert response.headers["retry-after-ms"] == "2000"
    if status == 200:
        choice = response.json()["choices"][0]
        with pytest.raises(json.JSONDecodeError):
            json.loads(choice["message"]["content"])
        assert choice["finish_reason"] == ("length" if fault == "truncated" else "stop")
    stats = client.get("/_stats").json()
    assert stats["faults"] == {fault: 1} and stats["responses"] == {str(status): 1}


def test_an_unknown_fault_header_is_a_bad_request(client: httpx.Client) -> None:
    response = client.post("/v1/messages", json=messages_body(),
                           headers=AUTH | {"x-sim-fault": "gremlins"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_a_timeout_fault_ends_when_the_client_gives_up(client: httpx.Client) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/v1/chat/completions", json=chat_body(),
                    headers=AUTH | {"x-sim-fault": "timeout"}, timeout=0.3)
    assert client.get("/_stats").json()["faults"] == {"timeout": 1}
    assert time.monotonic() - started < 2


def test_a_scripted_sequence_is_played_then_rates_apply(client: httpx.Client) -> None:
    assert client.post("/_faults", json={"sequence": ["503", "ok", "429"]}).json() == {"ok": True}
    codes = [client.post("/v1/chat/completions", json=chat_body(), headers=AUTH).status_code
             for _ in range(4)]
    assert codes == [503, 200, 429, 200]
    assert client.post("/_faults", json={"sequence": ["nope"]}).status_code == 400
    assert client.post("/_reset").json()["requests"] == 0


def test_seeded_fault_rates_repeat() -> None:
    rates = parse_rates(["500=0.2,timeout=0.1", "malformed-json=0.1"])
    injectors = [FaultInjector(rates, [], random.Random(7)) for _ in range(2)]
    draws = [[injector.choose(None) for _ in range(300)] for injector in injectors]
    assert draws[0] == draws[1]
    assert 30 <= draws[0].count("500") <= 90 and draws[0].count("ok") > 120


@pytest.mark.parametrize("bad", ["500", "500=2", "boom=0.1", "500=0.7,429=0.7"])
def test_bad_fault_rates_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_rates([bad])


def test_fault_sequences_and_latencies_parse() -> None:
    assert parse_sequence(["500, ok", "timeout"]) == ["500", "ok", "timeout"]
    assert parse_latencies(["plan=0.5"], {"plan": 1.9, "validate": 0.8}) == {
        "plan": 0.5, "validate": 0.8}
    with pytest.raises(ValueError):
        parse_latencies(["think=1"], {})


def test_the_rate_limiter_counts_requests_and_tokens_in_its_window() -> None:
    now = [0.0]
    limiter = RateLimiter(rpm=2, tpm=1_000, window_s=60.0, clock=lambda: now[0])
    assert limiter.admit(100)[0] is None
    now[0] = 10.0
    wait, ticket = limiter.admit(100)
    assert wait is None
    limiter.add_tokens(ticket, 700)
    assert limiter.admit(1)[0] == pytest.approx(50.0)  # third request: until the first expires
    now[0] = 61.0
    assert limiter.admit(300)[0] == pytest.approx(9.0)  # 800 + 300 tokens: until the second
    assert limiter.admit(5_000)[0] == 60.0  # larger than the limit itself
    headers = limiter.headers()
    assert headers["x-ratelimit-remaining-requests"] == "1"
    assert headers["x-ratelimit-remaining-tokens"] == "200"


def test_requests_past_the_limit_get_429_with_retry_after_and_headers() -> None:
    with running(SimulatorConfig(latency_s={}, rpm=2, window_s=1.5)) as server, \
            httpx.Client(base_url=server.base_url) as http:
        codes = [http.post("/v1/chat/completions", json=chat_body(), headers=AUTH)
                 for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        refused = codes[2]
        assert refused.headers["retry-after"] == "2"
        assert 1000 <= int(refused.headers["retry-after-ms"]) <= 1500
        assert refused.headers["x-ratelimit-limit-requests"] == "2"
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert server.simulator.stats()["rate_limited"] == 1


def test_a_provider_waits_out_the_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    with running(SimulatorConfig(latency_s={}, rpm=1, window_s=1.0)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sim")
        get_settings.cache_clear()
        try:
            provider = get_provider("openai")
            request = roles.plan_request(GOAL, model="gpt-4o-mini", registry=default_registry())
            provider.generate(request)
            started = time.monotonic()
            assert provider.generate(request).data["steps"]
            assert time.monotonic() - started >= 0.5
            stats = server.simulator.stats()
            assert stats["rate_limited"] == 1 and stats["responses"] == {"200": 2, "429": 1}
        finally:
            get_settings.cache_clear()


def test_latency_follows_the_configured_mean() -> None:
    config = SimulatorConfig(latency_s={"plan": 0.3}, latency_jitter=0.0)
    with running(config) as server, httpx.Client(base_url=server.base_url) as http:
        started = time.monotonic()
        assert http.post("/v1/chat/completions", json=chat_body(), headers=AUTH).is_success
        assert time.monotonic() - started >= 0.3


def test_the_simulator_binds_loopback_only() -> None:
    with pytest.raises(ConfigurationError, match="loopback"), running(host="0.0.0.0"):
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_cli_serves_the_simulator() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "taskforce_cli.main", "sim-llm", "--port", str(port),
         "--latency", "plan=0,validate=0,synthesize=0", "--fault-sequence", "500,ok",
         "--loglevel", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/v1/models", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.1)
        codes = [httpx.post(f"{base}/v1/chat/completions", json=chat_body(), headers=AUTH,
                            timeout=5).status_code for _ in range(2)]
        assert codes == [500, 200]
        assert httpx.get(f"{base}/_stats").json()["faults"] == {"500": 1}
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_cli_refuses_a_public_address() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "taskforce_cli.main", "sim-llm", "--host", "0.0.0.0"],
        check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "loopback" in result.stderr
