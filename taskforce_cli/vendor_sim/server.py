"""Running the simulator: in the foreground (``taskforce sim-llm``) or in a thread."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from shared.errors import ConfigurationError
from taskforce_cli.vendor_sim.app import Simulator, create_app
from taskforce_cli.vendor_sim.config import SimulatorConfig


def _check_loopback(host: str) -> None:
    """Refuse to bind anything but a loopback address: the simulator has no real auth."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConfigurationError(f"the simulator binds loopback addresses only, not {host!r}")


def serve(config: SimulatorConfig, *, host: str = "127.0.0.1", port: int = 8765,
          log_level: str = "info") -> None:
    """Serve until interrupted.

    Raises:
        ConfigurationError: ``host`` is not a loopback address.
    """
    _check_loopback(host)
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level)


@dataclass
class RunningSimulator:
    """A simulator serving in a background thread.

    Attributes:
        base_url: ``http://127.0.0.1:<port>`` (append ``/v1`` for OpenAI's SDK).
        simulator: Its state, to script faults or read counters directly.
    """

    base_url: str
    simulator: Simulator

    @property
    def openai_base_url(self) -> str:
        """Base URL for OpenAI's SDK (it appends ``/chat/completions``)."""
        return f"{self.base_url}/v1"


@contextlib.contextmanager
def running(config: SimulatorConfig | None = None, *, host: str = "127.0.0.1",
            startup_timeout_s: float = 10.0) -> Iterator[RunningSimulator]:
    """Serve a simulator on a free port of ``host`` for the duration of the block.

    Raises:
        ConfigurationError: ``host`` is not a loopback address.
        RuntimeError: The server did not start within ``startup_timeout_s`` seconds.
    """
    _check_loopback(host)
    app = create_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"sim-llm-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the LLM simulator did not start")
        time.sleep(0.01)
    try:
        yield RunningSimulator(f"http://{host}:{port}", app.state.simulator)
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
