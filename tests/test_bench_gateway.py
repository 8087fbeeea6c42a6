"""``taskforce bench gateway``: its figures and its hook for further checks (the
measurement itself runs real gateways and is recorded in docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from shared.errors import ConfigurationError
from taskforce_cli.bench import BENCHMARKS
from taskforce_cli.bench.gateway import CHECKS, _summary, gateway, gateway_latency


def test_p50_and_p99_of_the_round_trips() -> None:
    figures = _summary([float(ms) for ms in range(1, 101)])
    assert figures == {"p50_ms": 50.5, "p99_ms": 99.99}


def test_only_known_checks_can_be_turned_on() -> None:
    assert CHECKS["auth"] == ({"AUTH_ENABLED": "true"}, {"AUTH_ENABLED": "false"})
    assert CHECKS["quotas"][1] == {"TENANT_QUOTAS_ENABLED": "false"}
    with pytest.raises(ConfigurationError, match="rate-limits"):
        gateway_latency(checks=("auth", "rate-limits"))


def test_it_is_registered() -> None:
    assert BENCHMARKS["gateway"] is gateway
