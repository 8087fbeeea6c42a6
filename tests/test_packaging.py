"""Packaging and deployment files: names resolve here, and every command they run exists."""

from __future__ import annotations

import importlib
import shlex
import tomllib
from pathlib import Path

import yaml
from typer.main import get_command

from taskforce_cli.main import app

REPO = Path(__file__).resolve().parents[1]
CLI_COMMANDS = set(get_command(app).commands)
PACKAGES = ("shared", "worker", "scheduler", "api_gateway", "taskforce_cli")


def _taskforce_command(argv: list[str]) -> str:
    assert argv[0] == "taskforce", argv
    return argv[1]


def test_top_level_packages_resolve_to_this_repository() -> None:
    for name in PACKAGES:
        module = importlib.import_module(name)
        assert Path(module.__file__).resolve().parent == REPO / name


def test_the_console_script_is_the_cli() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["taskforce"] == "taskforce_cli.main:app"
    assert set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]) == set(PACKAGES)


def test_every_procfile_command_exists() -> None:
    processes = {}
    for line in (REPO / "Procfile").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, command = line.split(":", 1)
        processes[name] = _taskforce_command(shlex.split(command))
    assert set(processes) == {"web", "worker", "beat", "flower"}
    assert set(processes.values()) <= CLI_COMMANDS


def test_every_compose_service_runs_an_existing_command() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "postgres", "gateway", "worker", "beat", "flower"} <= set(services)
    for name in ("gateway", "worker", "beat", "flower"):
        assert _taskforce_command(services[name]["command"]) in CLI_COMMANDS
        dockerfile = REPO / services[name]["build"]["context"] / services[name]["build"]["dockerfile"]
        assert dockerfile.exists()
    assert "noeviction" in services["redis"]["command"]


def test_every_taskforce_process_is_restarted_when_it_exits() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for name in ("gateway", "worker", "beat", "flower"):
        assert services[name].get("restart") in ("unless-stopped", "on-failure", "always")
    procfile = (REPO / "Procfile").read_text()
    assert "restart" in procfile and "honcho" in procfile


def test_the_image_copies_every_package() -> None:
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    for name in PACKAGES:
        assert f"COPY {name} ./{name}" in dockerfile
    assert "uv sync --locked" in dockerfile


def _procfile() -> dict[str, list[str]]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return {name: shlex.split(command) for name, _, command in
            (line.partition(":") for line in lines if line.strip() and not line.startswith("#"))}


def test_the_procfile_binds_every_interface_only_for_web_and_says_why() -> None:
    text = (REPO / "Procfile").read_text()
    processes = _procfile()
    assert "0.0.0.0" in processes["web"]
    assert "$PORT" in text.split("web:")[0]  # a comment above it explains the binding
    others = " ".join(" ".join(argv) for name, argv in processes.items() if name != "web")
    assert "0.0.0.0" not in others
    assert "--address" in processes["flower"]
    assert "--unauthenticated" not in processes["flower"]


def test_compose_keeps_redis_and_postgres_private_and_protected() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("redis", "postgres"):
        assert "ports" not in services[name], f"{name} publishes a port"
    redis_command = services["redis"]["command"]
    password = redis_command[redis_command.index("--requirepass") + 1]
    assert password.startswith("${REDIS_PASSWORD:?")
    for name in ("gateway", "worker", "beat", "flower"):
        env = services[name]["environment"]
        assert env["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?"), name
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"], name
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?")


def test_compose_runs_flower_with_auth() -> None:
    flower = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert "--unauthenticated" not in flower["command"]


MAX_MODULE_LINES = 400  # a module longer than this usually holds two concepts


def test_every_module_reads_in_one_sitting() -> None:
    long = {
        str(path.relative_to(REPO)): lines
        for name in (*PACKAGES, "tests")
        for path in (REPO / name).rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
