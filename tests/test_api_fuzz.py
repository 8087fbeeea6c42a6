"""Property-based fuzz of the gateway's OpenAPI schema (schemathesis), through the real
app on real Redis, Postgres and workers, with authentication on and a key holding every
scope: no answer is a 5xx, every answer's status code is declared for its operation, and
every body fits the schema declared for that status.

Bounded (``MAX_EXAMPLES`` cases per operation, positive and negative) so the module
finishes in about a minute on a loaded two-core machine. Goals it submits are cancelled
as soon as they are accepted, so they do not keep the shared workers busy.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from api_gateway.app import create_app
from shared import auth, goals, quotas
from shared.errors import TaskforceError
from shared.settings import get_settings, overridden_settings

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
SUBMITTED: list[uuid.UUID] = []


@pytest.fixture(scope="module")
def api_key(workers) -> str:
    """A key with every scope, for a tenant of its own."""
    return auth.create_key(tenant=f"fuzz-{uuid.uuid4().hex[:8]}", scopes=auth.ALL_SCOPES).key


@pytest.fixture(scope="module")
def gateway(workers) -> Iterator[FastAPI]:
    """The real gateway app (called over ASGI), with authentication on."""
    with overridden_settings(AUTH_ENABLED=True):
        # The first submission of a process imports the vendors' SDKs (the default model
        # of each provider): tens of seconds on a loaded machine, past the fuzz's 10 s
        # request timeout. Import them before the first case.
        quotas.default_model_patterns(get_settings())
        yield create_app()


def _cancel(goal_id: uuid.UUID) -> None:
    try:
        goals.cancel_goal(goal_id)
    except TaskforceError:
        pass  # it ended already


@schemathesis.serializer("application/x-ndjson")
def _jsonl(_context, value):
    """``POST /v1/batches`` declares its JSONL body as text: send the text as it is."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")


# The schema the app serves; building it reads no settings and opens no connection.
# (Loaded directly: schemathesis.pytest.from_fixture needs a pytest internal that
# pytest 9 removed.)
schema = schemathesis.openapi.from_dict(create_app().openapi())


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
def test_every_operation_answers_as_its_schema_says(case, gateway, api_key) -> None:
    # Negative cases may drop the Authorization header (a required security parameter):
    # their 401 must be declared too.
    response = case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"},
                                      checks=CHECKS, app=gateway)
    if response.status_code == 202 and case.path == "/v1/goals":
        goal_id = uuid.UUID(response.json()["id"])
        SUBMITTED.append(goal_id)
        _cancel(goal_id)  # a fuzzed goal need not run: keep the shared workers free
    if response.status_code == 202 and case.path == "/v1/batches":
        for item in response.json()["items"]:
            if item["goal_id"]:
                _cancel(uuid.UUID(item["goal_id"]))


def test_the_fuzz_reached_past_authentication(api_key) -> None:
    """Runs after the fuzz (file order): its key is valid and goals were accepted, so
    the cases were not all answered 401 at the door."""
    assert set(auth.ALL_SCOPES) <= set(auth.verify_key(api_key).scopes)
    assert SUBMITTED, "no fuzzed POST /v1/goals was accepted"
