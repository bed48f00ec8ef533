"""deploy/kubernetes: every overlay renders with kustomize into objects valid for their schemas,
wired as the README and docs/operations.md say (probes, grace periods, backlog autoscaling,
alerts), and running only commands the image test runs."""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import promql_parser
import pytest
import yaml

from cmrelay.keys import Keys
from cmrelay.settings import _FIELDS, Settings
from cmrelay_cli.main import build_parser
from tests.deploy.compose import compose_config
from tests.deploy.image import ROOT, read_dockerfile
from tests.deploy.kubernetes import KUBERNETES, OVERLAYS, containers, find, render, validate
from worker.celery_app import create_celery_app

RELAY_IMAGE = "chartmogul-relay"
PARTS = ("ingest", "worker", "admin")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay, rendered once."""
    return {name: render(KUBERNETES / "overlays" / name) for name in OVERLAYS}


def _relay_containers(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (doc["metadata"]["name"], c)
        for doc in docs
        if doc["kind"] in ("Deployment", "StatefulSet")
        for c in containers(doc)
        if c["image"].split("/")[-1].split(":")[0] == RELAY_IMAGE
    ]


def _config(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The relay's settings as its pods get them: the ConfigMap, then the Secrets."""
    found = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("cmrelay-config")
    ]
    assert len(found) == 1
    settings: dict[str, str] = dict(found[0]["data"])
    for secret in (d for d in docs if d["kind"] == "Secret"):
        settings.update({k: base64.b64decode(v).decode() for k, v in secret["data"].items()})
    return settings


def _probe(probe: dict[str, Any]) -> str:
    """A probe as the README's table writes it."""
    if "httpGet" in probe:
        return f"GET {probe['httpGet']['path']}"
    return " ".join(probe["exec"]["command"])


def _documented_probes() -> dict[str, tuple[str, str]]:
    """README "Operations": `cmrelay PART` -> (liveness, readiness)."""
    found = {}
    for part, live, ready in re.findall(
        r"^\| `cmrelay (\w+)` \| (.+?) \| (.+?) \|", (ROOT / "README.md").read_text(), re.M
    ):
        first = [re.search(r"`([^`]+)`", cell) for cell in (live, ready)]
        liveness = first[0].group(1) if first[0] else live
        found[part] = (liveness, first[1].group(1) if first[1] else liveness)
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_its_schema(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    kinds = set()
    for doc in rendered[overlay]:
        validate(doc)
        kinds.add(doc["kind"])
    assert {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap"} <= kinds


def test_the_example_overlay_has_every_piece(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["example"]
    for part in PARTS:
        find(docs, "Deployment", f"cmrelay-{part}")
    for kind in ("ScaledObject", "HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule"):
        find(docs, kind)
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"} == {
        "cmrelay-ingest", "cmrelay-worker",
    }  # fmt: skip


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_grace_periods_are_the_documented_ones(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    documented = _documented_probes()
    assert set(documented) >= set(PARTS)
    for part in PARTS:
        deployment = find(rendered[overlay], "Deployment", f"cmrelay-{part}")
        (container,) = containers(deployment)
        assert container["command"] == ["cmrelay", part]
        probes = (_probe(container["livenessProbe"]), _probe(container["readinessProbe"]))
        assert probes == documented[part], part
        for name in ("startupProbe", "livenessProbe", "readinessProbe"):
            port = container.get(name, {}).get("httpGet", {}).get("port")
            assert port in (None, *(p["name"] for p in container.get("ports", []))), part
    grace = {
        part: find(rendered[overlay], "Deployment", f"cmrelay-{part}")["spec"]["template"]["spec"][
            "terminationGracePeriodSeconds"
        ]
        for part in PARTS
    }
    # The worker outlasts its 10 s soft shutdown plus a ChartMogul call; the ingest, its 20 s
    # drain plus the preStop pause. Both as in docker-compose.yml.
    compose = compose_config()["services"]
    assert grace["worker"] == 60 == _seconds(compose["worker"]["stop_grace_period"])
    assert grace["ingest"] == 30 == _seconds(compose["ingest"]["stop_grace_period"])
    (ingest,) = containers(find(rendered[overlay], "Deployment", "cmrelay-ingest"))
    assert int(ingest["lifecycle"]["preStop"]["exec"]["command"][1]) + 20 < grace["ingest"]


def _seconds(duration: str) -> int:
    minutes, _, seconds = duration.rstrip("s").rpartition("m")
    return int(minutes or 0) * 60 + int(seconds or 0)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_command_is_one_the_image_test_runs(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Kubernetes runs nothing the compose file does not: tests/deploy/test_image.py runs each
    compose command and health check from the built image."""
    project = compose_config("--profile", "admin", "--profile", "sandbox")
    compose = {tuple(s["command"]) for s in project["services"].values() if s.get("build")}
    compose |= {tuple(s["healthcheck"]["test"][1:]) for s in project["services"].values()}
    for name, container in _relay_containers(rendered[overlay]):
        assert tuple(container["command"]) in compose, name
        assert build_parser().parse_known_args(container["command"][1:])[0].command
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            command = container.get(probe, {}).get("exec", {}).get("command")
            if command:
                assert build_parser().parse_args(command[1:]).command == "worker-health", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_relay_pods_run_as_the_image_user_on_a_read_only_root(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """As tests/deploy/test_image.py runs the commands: the image's numeric USER, nothing
    writable but /tmp."""
    user = int(read_dockerfile().user)
    workloads = [d for d in rendered[overlay] if d["kind"] == "Deployment"]
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == user
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            (mount,) = container["volumeMounts"]
            assert mount["mountPath"] == "/tmp" and "emptyDir" in volumes[mount["name"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_and_budgets_select_the_pods_they_mean(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    }

    def selected(selector: dict[str, str]) -> list[str]:
        return [n for n, t in pods.items() if selector.items() <= t["metadata"]["labels"].items()]

    for service in (d for d in docs if d["kind"] == "Service"):
        (target,) = selected(service["spec"]["selector"])
        assert target == service["metadata"]["name"]  # each Service fronts its namesake
        names = {p["name"] for c in pods[target]["spec"]["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= names
    for budget in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        assert selected(budget["spec"]["selector"]["matchLabels"]) == [budget["metadata"]["name"]]
        assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_workers_scale_on_the_relays_own_backlog(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The ScaledObject watches the ingest list and the deliver queue of the relay's prefix, on
    the Redis the relay uses, and owns the worker count (never below one)."""
    docs = rendered["example"]
    scaled = find(docs, "ScaledObject")
    worker = find(docs, "Deployment", "cmrelay-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert "replicas" not in worker["spec"]  # the HPA KEDA makes owns it
    assert scaled["spec"]["minReplicaCount"] >= 1  # retries and the scheduler need one
    config = _config(docs)
    settings = dataclasses.replace(
        Settings(), key_prefix=config.get("CMRELAY_KEY_PREFIX", "cmrelay")
    )
    queue = create_celery_app(settings).conf.task_default_queue
    lists = {t["metadata"]["listName"]: t for t in scaled["spec"]["triggers"]}
    assert set(lists) == {Keys(settings.key_prefix).ingest_queue, queue}
    for name, trigger in lists.items():
        url = (
            urlsplit(config.get("CELERY_BROKER_URL") or config["REDIS_URL"])
            if name == queue
            else urlsplit(config["REDIS_URL"])
        )
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["address"] == f"{url.hostname}:{url.port or 6379}"
        assert trigger["metadata"]["databaseIndex"] == (url.path.strip("/") or "0")
    ingest_hpa = find(docs, "HorizontalPodAutoscaler")
    assert ingest_hpa["spec"]["scaleTargetRef"]["name"] == "cmrelay-ingest"
    assert "replicas" not in find(docs, "Deployment", "cmrelay-ingest")["spec"]


def test_a_name_prefix_renames_the_scaled_objects_target(tmp_path: Path) -> None:
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namePrefix": "eu-",
        "resources": [os.path.relpath(KUBERNETES / "base", tmp_path)],
        "components": [os.path.relpath(KUBERNETES / "components" / "autoscaling", tmp_path)],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    docs = render(tmp_path)
    targets = {
        d["kind"]: d["spec"]["scaleTargetRef"]["name"]
        for d in docs
        if "scaleTargetRef" in d.get("spec", {})
    }
    assert targets == {
        "ScaledObject": "eu-cmrelay-worker",
        "HorizontalPodAutoscaler": "eu-cmrelay-ingest",
    }


def _documented_alerts() -> dict[str, dict[str, str | None]]:
    """docs/operations.md "Alerts": name -> expr, for, severity."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `(.+?)` \| (\S+) \| (\w+) \|", section, re.M)
    return {
        name: {"expr": expr, "for": None if duration == "—" else duration, "severity": severity}
        for name, expr, duration, severity in rows
    }


def test_the_alert_rules_are_the_ones_docs_operations_lists(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    documented = _documented_alerts()
    assert len(documented) >= 8
    rules = [
        r for g in find(rendered["example"], "PrometheusRule")["spec"]["groups"] for r in g["rules"]
    ]
    deployed = {
        r["alert"]: {"expr": r["expr"], "for": r.get("for"), "severity": r["labels"]["severity"]}
        for r in rules
    }
    assert len(deployed) == len(rules)  # no name twice
    assert sorted(deployed) == sorted(documented)
    assert deployed == documented


def test_every_alert_parses_and_watches_a_documented_metric() -> None:
    """A misspelt metric never fires: each selector names `up` or a metric of docs/metrics.md."""
    metrics = set(
        re.findall(r"^\| `(cmrelay_\w+)` \|", (ROOT / "docs" / "metrics.md").read_text(), re.M)
    )
    for name, alert in _documented_alerts().items():
        expr = promql_parser.parse(str(alert["expr"]))
        seen: list[str] = []

        def visit(node: Any, seen: list[str] = seen) -> None:
            if isinstance(node, promql_parser.VectorSelector) and node.name:
                seen.append(re.sub(r"_(bucket|sum|count)$", "", node.name))

        promql_parser.walk(expr, visit)
        assert seen, name
        assert set(seen) <= metrics | {"up"}, f"{name}: {sorted(set(seen) - metrics)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_come_as_the_relay_reads_them(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    """Only settings the relay knows; no secret one in the ConfigMap (secrets go in Secrets)."""
    docs = rendered[overlay]
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    secret = {name for name, (_, _, is_secret) in _FIELDS.items() if is_secret}
    assert set(config) <= set(_FIELDS) - secret
    for doc in (d for d in docs if d["kind"] == "Secret"):
        assert set(doc["data"]) <= secret
    for name, container in _relay_containers(docs):
        assert {e["name"] for e in container.get("env", [])} <= set(_FIELDS), name


def test_the_sandbox_overlay_delivers_into_its_sandbox(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    """As the compose sandbox profile: the worker gets the sandbox Service's address, the key
    it accepts and the data source it creates at start; Redis keeps what the promise needs."""
    docs = rendered["sandbox"]
    config = _config(docs)
    (container,) = containers(find(docs, "Deployment", "cmrelay-sandbox"))
    flags = dict(zip(container["command"][2::2], container["command"][3::2], strict=True))
    service = find(docs, "Service", "cmrelay-sandbox")
    port = next(p["port"] for p in service["spec"]["ports"] if p["targetPort"] == "http")
    assert config["CHARTMOGUL_API_BASE"] == f"http://{service['metadata']['name']}:{port}/v1"
    assert str(port) == flags["--port"]
    assert config["CHARTMOGUL_API_KEY"] == flags["--api-key"]
    assert config["CHARTMOGUL_DATA_SOURCE_UUID"] == flags["--data-source"]
    (header,) = container["readinessProbe"]["httpGet"]["httpHeaders"]
    assert (
        header["value"] == "Basic " + base64.b64encode(f"{flags['--api-key']}:".encode()).decode()
    )
    assert config["SEGMENT_WRITE_KEYS"] and config["ADMIN_TOKEN"]
    redis = find(docs, "StatefulSet", "redis")
    (server,) = containers(redis)
    args = dict(zip(server["args"][::2], server["args"][1::2], strict=True))
    assert args == {
        "--appendonly": "yes",
        "--appendfsync": "everysec",
        "--maxmemory-policy": "noeviction",
    }
    assert (
        redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
        == server["volumeMounts"][0]["name"]
    )
    url = urlsplit(config["REDIS_URL"])
    assert url.hostname == find(docs, "Service", "redis")["metadata"]["name"]
