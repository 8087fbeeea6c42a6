"""Packaging and deployment files: names resolve here, and every command they run exists."""

from __future__ import annotations

import importlib
import shlex
import tomllib
from pathlib import Path

import yaml
from typer.main import get_command

from shared.cli.main import app

REPO = Path(__file__).resolve().parents[1]
CLI_COMMANDS = set(get_command(app).commands)


def _taskforce_command(argv: list[str]) -> str:
    assert argv[0] == "taskforce", argv
    return argv[1]


def test_top_level_packages_resolve_to_this_repository() -> None:
    for name in ("shared", "worker", "scheduler", "api_gateway"):
        module = importlib.import_module(name)
        assert Path(module.__file__).resolve().parent == REPO / name


def test_the_console_script_is_the_cli() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["taskforce"] == "shared.cli.main:app"
    assert set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]) == {
        "shared", "worker", "scheduler", "api_gateway"}


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
    for name in ("shared", "worker", "scheduler", "api_gateway"):
        assert f"COPY {name} ./{name}" in dockerfile
    assert "uv sync --locked" in dockerfile
