"""The embedded default from a project inside a directory only its owner can enter.

A clone under ``/root`` or a ``mktemp -d`` directory (both mode 0700) is where a new user
running as root in a container starts. PostgreSQL refuses to run as root, so it runs as
an unprivileged user that cannot traverse such a directory: these tests check that the
embedded default still works there, keeps its data between runs, and loosens no
permission of the user's directories.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from shared.persistence.db import migrate
from taskforce_cli import embedded
from taskforce_cli import embedded_staging as staging

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not IS_ROOT, reason="PostgreSQL runs as another user only as root")


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A fresh mode-0700 directory; removed afterwards with what was staged for it."""
    directory = Path(tempfile.mkdtemp(prefix="taskforce-private-"))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    yield directory
    postgres_dir = directory / "data" / "embedded" / "postgres"
    shutil.rmtree(staging.staged_home(postgres_dir), ignore_errors=True)
    shutil.rmtree(directory, ignore_errors=True)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


@pytest.fixture
def unreachable_pg_install(private_dir: Path, monkeypatch) -> Iterator[Path]:
    """The wheel's PostgreSQL re-created inside ``private_dir`` (as in a clone under
    /root, whose .venv the service user cannot reach), and used by the embedded server."""
    original = embedded._pg_install()
    site = private_dir / "site-packages"
    install = site / "pgserver" / "pginstall"
    for name in ("bin", "lib", "share"):
        shutil.copytree(original / name, install / name, symlinks=True,
                        copy_function=_link_or_copy)
    libs = original.parent.parent / "pgserver.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / "pgserver.libs", symlinks=True, copy_function=_link_or_copy)
    monkeypatch.setattr(embedded, "_pg_install", lambda: install)
    yield install
    staged = staging.reachable_binaries(install).parents[2]
    if staged.parent == staging.CACHE_ROOT:
        shutil.rmtree(staged, ignore_errors=True)


def _query(url: str, sql: str, **params):
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(sql), params)
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


@root_only
def test_services_start_from_a_private_directory_and_keep_their_data(
    private_dir: Path, unreachable_pg_install: Path
) -> None:
    data_dir = private_dir / "data"
    services = embedded.EmbeddedServices(data_dir / "embedded")
    env = services.start()
    try:
        migrate(env["DATABASE_URL"])
        assert _query(env["DATABASE_URL"], "SELECT count(*) FROM goals") == [(0,)]
        _query(env["DATABASE_URL"], "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('x')")
        postgres = services.postgres
        # The data, socket and log were staged where the service user can reach them,
        # and the binaries copied out of the unreachable install.
        assert postgres.home == staging.staged_home(postgres.directory)
        assert not postgres.bin.is_relative_to(private_dir)
        pointer = (postgres.directory / staging.POINTER_FILE).read_text()
        assert pointer.splitlines()[0] == str(postgres.pgdata)
        home = os.stat(postgres.home)
        assert (home.st_uid, stat.S_IMODE(home.st_mode)) == (0, 0o755)
        pgdata = os.stat(postgres.pgdata)
        assert pgdata.st_uid == embedded._service_user()[0]
        assert stat.S_IMODE(pgdata.st_mode) == 0o700
    finally:
        services.stop()
    # Nothing of the user's was loosened or handed to the service user.
    assert stat.S_IMODE(private_dir.stat().st_mode) == 0o700
    assert all(path.stat().st_uid == 0 for path in data_dir.rglob("*"))

    again = embedded.EmbeddedServices(data_dir / "embedded")
    env = again.start()
    try:
        assert _query(env["DATABASE_URL"], "SELECT note FROM kept") == [("x",)]
    finally:
        again.stop()


@root_only
def test_a_planted_staging_directory_is_refused(private_dir: Path) -> None:
    postgres_dir = private_dir / "data" / "embedded" / "postgres"
    postgres_dir.mkdir(parents=True)
    planted = staging.staged_home(postgres_dir)
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)
    with pytest.raises(Exception, match="owned and writable only by root"):
        staging.data_home(postgres_dir, embedded._service_user(), embedded.PG_SYSTEM_USER)


def test_cli_run_from_a_private_directory(private_dir: Path) -> None:
    """``taskforce run`` as a new user runs it: cwd and DATA_DIR inside a 0700 directory,
    no servers configured (as root the servers' data is staged; otherwise it is in place)."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "DATABASE_URL", "TOOL_MODULES")}
    env["DATA_DIR"] = str(private_dir / "data")
    cli = Path(sys.executable).parent / "taskforce"
    result = subprocess.run(
        [str(cli), "run", "What is 17 * 23?", "--json"], cwd=private_dir, env=env,
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    goal = json.loads(result.stdout)
    assert goal["status"] == "succeeded", goal
    assert "391" in goal["answer"]
    assert stat.S_IMODE(private_dir.stat().st_mode) == 0o700
    pgdata_here = (private_dir / "data" / "embedded" / "postgres" / "pgdata").is_dir()
    assert pgdata_here is not IS_ROOT
