"""Nothing reads the settings or connects at import time: the server modules import with
settings that do not parse, and the processes fail only when they start."""

from __future__ import annotations

import subprocess
import sys

from shared.settings import child_environment
from tests.conftest import REPO

# A value that does not parse: reading the settings raises a ValidationError naming it.
INVALID = {"STEP_LEASE_S": "not-a-number"}
SERVER_MODULES = ("shared.celery_app", "worker.tasks", "scheduler.beat", "scheduler.jobs",
                  "api_gateway.app")


def _python(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # The servers the test session started are passed along: a process that got past
    # its settings would find them, rather than fail for want of a URL.
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=child_environment(INVALID))


def test_server_modules_import_with_invalid_settings(services) -> None:  # noqa: ANN001
    code = "; ".join(f"import {module}" for module in SERVER_MODULES) + "; print('imported')"
    result = _python("-c", code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "imported"
    reading = _python("-c", "from shared.settings import get_settings; get_settings()")
    assert reading.returncode != 0 and "step_lease_s" in reading.stderr


def test_the_worker_fails_when_started(services) -> None:  # noqa: ANN001
    result = _python("-m", "taskforce_cli.main", "worker", "--name", "invalid-settings")
    assert result.returncode != 0
    assert "step_lease_s" in result.stderr + result.stdout


def test_beat_fails_when_its_celery_app_is_configured(services, tmp_path) -> None:  # noqa: ANN001
    result = _python("-m", "celery", "-A", "scheduler.beat:app", "beat",
                     f"--schedule={tmp_path / 'celerybeat-schedule'}")
    assert result.returncode != 0
    assert "step_lease_s" in result.stderr + result.stdout
