"""Who may call, per overlay: minikube keeps the seed's anonymous contract, production runs
`jwt` with everything the service needs to start in that mode."""

from __future__ import annotations

from orders.settings import load_settings
from tests.deployments.manifests import render


def config(overlay: str) -> dict[str, str]:
    """The service's ConfigMap (its name carries kustomize's content hash)."""
    (data,) = [
        doc["data"]
        for doc in render(overlay)
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("orders-config-")
    ]
    assert isinstance(data, dict)
    return data


def test_minikube_overlays_keep_the_anonymous_caller_for_the_seed_collection() -> None:
    for overlay in ("minikube", "minikube-async"):
        assert load_settings(config(overlay)).auth == "none"


def test_production_runs_jwt_with_a_valid_configuration() -> None:
    settings = load_settings(config("production"))

    assert settings.auth == "jwt"
    assert settings.jwt_jwks_url is not None and settings.jwt_jwks_url.startswith("https://")
