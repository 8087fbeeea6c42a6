"""``taskforce worker``'s supervisor: exit status, restarts with backoff, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from taskforce_cli.supervise import Backoff, supervise

REPO = Path(__file__).resolve().parents[1]

# A Celery worker whose start fails with an error Celery does not recover from.
CRASHING_WORKER = textwrap.dedent("""
    import sys
    from celery import Celery, bootsteps
    from taskforce_cli.supervise import run_celery_worker

    class Crash(bootsteps.StartStopStep):
        def start(self, worker):
            raise RuntimeError("unrecoverable")

    app = Celery("crash", broker="memory://")
    app.steps["worker"].add(Crash)
    argv = ["worker", "--pool=solo", "--without-mingle", "--without-gossip",
            "--loglevel=WARNING"]
    if sys.argv[1] == "worker_main":
        app.worker_main(argv)
    else:
        sys.exit(run_celery_worker(app, argv))
""")


def _python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, timeout=120,
                          capture_output=True, text=True, **kwargs)


def test_an_unrecoverable_worker_error_gives_a_non_zero_exit_status() -> None:
    result = _python(CRASHING_WORKER, "run_celery_worker")
    assert "Unrecoverable error" in result.stderr
    assert result.returncode == 1


def test_celery_worker_main_still_hides_the_exit_status() -> None:
    """When this fails, Celery returns the status itself: run_celery_worker may go."""
    result = _python(CRASHING_WORKER, "worker_main")
    assert "Unrecoverable error" in result.stderr
    assert result.returncode == 0


def test_backoff_doubles_up_to_its_cap_with_jitter_and_resets_after_a_stable_run() -> None:
    backoff = Backoff(base_s=1.0, cap_s=8.0, stable_s=60.0)
    lows = [backoff.next_delay(1.0, rand=lambda: 0.0) for _ in range(5)]
    assert lows == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff.next_delay(1.0, rand=lambda: 1.0) == 8.0
    assert backoff.next_delay(120.0, rand=lambda: 1.0) == 1.0  # a healthy run resets it


def test_a_failing_child_is_restarted_until_it_exits_cleanly(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    child = textwrap.dedent(f"""
        import sys
        with open({str(runs)!r}, "a") as f:
            f.write("run\\n")
        sys.exit(0 if open({str(runs)!r}).read().count("run") >= 3 else 3)
    """)
    lines: list[str] = []
    status = supervise([sys.executable, "-c", child], backoff=Backoff(base_s=0.01),
                       log=lines.append)
    assert status == 0
    assert runs.read_text().count("run") == 3
    assert len(lines) == 2 and "exited with status 3" in lines[0]


def test_a_child_killed_by_a_signal_is_restarted(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    child = textwrap.dedent(f"""
        import os, signal
        with open({str(runs)!r}, "a") as f:
            f.write("run\\n")
        if open({str(runs)!r}).read().count("run") < 2:
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    lines: list[str] = []
    assert supervise([sys.executable, "-c", child], backoff=Backoff(base_s=0.01),
                     log=lines.append) == 0
    assert runs.read_text().count("run") == 2
    assert "status 137" in lines[0]


SUPERVISOR = textwrap.dedent("""
    import sys
    from taskforce_cli.supervise import Backoff, supervise
    child = sys.argv[1]
    sys.exit(supervise([sys.executable, "-c", child], backoff=Backoff(base_s=0.01)))
""")


def _wait_for(path: Path, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.02)
    pytest.fail(f"{text!r} never appeared in {path}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_is_forwarded_and_the_child_is_not_restarted(
        tmp_path: Path, signum: int) -> None:
    events = tmp_path / "events"
    child = textwrap.dedent(f"""
        import os, signal, sys, time
        def stop(signum, frame):
            with open({str(events)!r}, "a") as f:
                f.write(f"got {{signum}}\\n")
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        with open({str(events)!r}, "a") as f:
            f.write(f"started {{os.getpid()}}\\n")
        time.sleep(60)
    """)
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR, child], cwd=REPO)
    try:
        _wait_for(events, "started")
        supervisor.send_signal(signum)
        assert supervisor.wait(timeout=30) == 0
    finally:
        supervisor.kill()
    assert events.read_text().count("started") == 1
    assert f"got {int(signum)}" in events.read_text()


def test_the_child_dies_with_its_supervisor(tmp_path: Path) -> None:
    events = tmp_path / "events"
    child = textwrap.dedent(f"""
        import os, time
        with open({str(events)!r}, "a") as f:
            f.write(f"started {{os.getpid()}}\\n")
        time.sleep(60)
    """)
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR, child], cwd=REPO)
    _wait_for(events, "started")
    pid = int(events.read_text().split()[1])
    supervisor.kill()
    supervisor.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return  # dead, waiting to be reaped by init
        time.sleep(0.05)
    pytest.fail("the child outlived its supervisor")


# A supervisor that passes SIGTERM on as SIGQUIT and kills a child that outlives the stop
# by more than 1 s.
BOUNDED_SUPERVISOR = textwrap.dedent("""
    import signal, sys
    from taskforce_cli.supervise import Backoff, supervise
    child = sys.argv[1]
    sys.exit(supervise([sys.executable, "-c", child], backoff=Backoff(base_s=0.01),
                       translate={signal.SIGTERM: signal.SIGQUIT}, stop_timeout_s=1.0))
""")


def test_a_stop_signal_can_be_passed_on_as_another(tmp_path: Path) -> None:
    events = tmp_path / "events"
    child = textwrap.dedent(f"""
        import os, signal, sys, time
        def stop(signum, frame):
            with open({str(events)!r}, "a") as f:
                f.write(f"got {{signum}}\\n")
            sys.exit(0)
        for sig in (signal.SIGTERM, signal.SIGQUIT):
            signal.signal(sig, stop)
        with open({str(events)!r}, "a") as f:
            f.write("started\\n")
        time.sleep(60)
    """)
    supervisor = subprocess.Popen([sys.executable, "-c", BOUNDED_SUPERVISOR, child], cwd=REPO)
    try:
        _wait_for(events, "started")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
    finally:
        supervisor.kill()
    assert f"got {int(signal.SIGQUIT)}" in events.read_text()


def test_a_child_that_outlives_the_stop_timeout_is_killed(tmp_path: Path) -> None:
    events = tmp_path / "events"
    child = textwrap.dedent(f"""
        import os, signal, time
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)  # a shutdown that never ends
        with open({str(events)!r}, "a") as f:
            f.write(f"started {{os.getpid()}}\\n")
        time.sleep(60)
    """)
    supervisor = subprocess.Popen([sys.executable, "-c", BOUNDED_SUPERVISOR, child], cwd=REPO,
                                  stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(events, "started")
        pid = int(events.read_text().split()[1])
        stopped = time.monotonic()
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        waited = time.monotonic() - stopped
    finally:
        supervisor.kill()
    assert 1.0 <= waited < 20  # the timeout, not the child's 60 s
    assert "killing it" in supervisor.stderr.read()
    assert events.read_text().count("started") == 1  # not restarted
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_taskforce_worker_picks_the_shutdown_by_pool() -> None:
    from shared.settings import overridden_settings
    from taskforce_cli.servers import SOFT_SHUTDOWN_MARGIN_S, _shutdown_plan

    with overridden_settings(WORKER_SOFT_SHUTDOWN_TIMEOUT_S="60"):
        assert _shutdown_plan("prefork") == ({signal.SIGTERM: signal.SIGQUIT},
                                             60 + SOFT_SHUTDOWN_MARGIN_S)
        assert _shutdown_plan("threads") == (None, 60)
    with overridden_settings(WORKER_SOFT_SHUTDOWN_TIMEOUT_S="0"):
        assert _shutdown_plan("threads") == (None, None)


def test_celery_gets_the_soft_shutdown_settings() -> None:
    from shared.celery_app import celery_config
    from shared.settings import get_settings, overridden_settings

    with overridden_settings(WORKER_SOFT_SHUTDOWN_TIMEOUT_S="12.5",
                             WORKER_ENABLE_SOFT_SHUTDOWN_ON_IDLE="true"):
        config = celery_config(get_settings())
    assert config["worker_soft_shutdown_timeout"] == 12.5
    assert config["worker_enable_soft_shutdown_on_idle"] is True
