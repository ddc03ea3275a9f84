"""Validates rendered manifests offline and strictly, the way the API server would take them.

Built-in kinds are checked against the Kubernetes API schemas that kubernetes-validate bundles;
custom kinds (the Prometheus Operator's, CloudNativePG's `Cluster`) against the CRD schemas
vendored in deployments/crds/. Strict
both ways: an unknown field is an error (as with `kubectl apply`'s server-side field
validation), and so is an object whose kind has no schema here, which kubernetes-validate's own
command line only warns about.

    python -m deployments.schemas --oldest 1.30.0 rendered.yaml...

checks each object against the oldest Kubernetes given and the newest one with bundled schemas.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import yaml

CRD_DIR = Path(__file__).resolve().parent / "crds"

Manifest = dict[str, Any]
Schema = dict[str, Any]


def _close_objects(schema: Any) -> Any:
    """The schema with every object that declares its properties closed to others.

    A CRD's structural schema only prunes unknown fields; the API server rejects them when
    asked for strict field validation, which is what catches a misspelt key.
    """
    if isinstance(schema, list):
        return [_close_objects(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {
        key: (
            {name: _close_objects(sub) for name, sub in value.items()}
            if key == "properties"
            else _close_objects(value)
        )
        for key, value in schema.items()
    }
    open_to_others = "additionalProperties" in schema or schema.get(
        "x-kubernetes-preserve-unknown-fields"
    )
    if "properties" in schema and not open_to_others:
        closed["additionalProperties"] = False
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and pattern.startswith("^(?i)"):
        # Go's RE2 takes inline flags anywhere; Python's re only at the very start.
        closed["pattern"] = "(?i)^" + pattern[len("^(?i)") :]
    return closed


def _list_type(
    validator: jsonschema.protocols.Validator, list_type: str, items: Any, schema: Schema
) -> Iterator[jsonschema.ValidationError]:
    """`x-kubernetes-list-type`: the API server refuses repeated keys in a map-list (two rule
    groups with one name) and repeated items in a set."""
    if not isinstance(items, list):
        return
    identities: list[object]
    if list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        identities = [tuple(item.get(key) for key in keys) for item in items]
    elif list_type == "set":
        identities = [yaml.safe_dump(item, sort_keys=True) for item in items]
    else:
        return
    for identity in {i for i in identities if identities.count(i) > 1}:
        yield jsonschema.ValidationError(f"repeated {list_type}-list entry {identity}")


# OpenAPI 3.0 schemas, as CRDs carry them, are JSON Schema draft 4 plus Kubernetes' extensions.
_CrdValidator = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft4Validator, {"x-kubernetes-list-type": _list_type}
)


@cache
def custom_resource_schemas() -> dict[tuple[str, str], Schema]:
    """(apiVersion, kind) -> the closed OpenAPI schema of every vendored CRD version."""
    schemas: dict[tuple[str, str], Schema] = {}
    for path in sorted(CRD_DIR.glob("*/*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _close_objects(version["schema"]["openAPIV3Schema"])
            schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def problems(doc: Manifest, kubernetes_version: str) -> list[str]:
    """Why `doc` would be refused by a Kubernetes of that version; empty when it would not."""
    schema = custom_resource_schemas().get((doc.get("apiVersion", ""), doc.get("kind", "")))
    if schema is None:
        return _builtin_problems(doc, kubernetes_version)
    found = [
        f"{'.'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in _CrdValidator(schema).iter_errors(doc)
    ]
    # A CRD's schema leaves metadata open; it is the same ObjectMeta as on any built-in kind.
    as_config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata")}
    return found + _builtin_problems(as_config_map, kubernetes_version)


def _builtin_problems(doc: Manifest, kubernetes_version: str) -> list[str]:
    try:
        kubernetes_validate.validate(doc, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'.'.join(map(str, error.path)) or '(root)'}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [str(error.message)]
    return []


def check(paths: Iterable[Path], kubernetes_versions: Iterable[str]) -> list[str]:
    """Every problem of every object in the YAML files at `paths`, for each version."""
    found = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            name = f"{path.name}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            for version in kubernetes_versions:
                found += [f"{name} (Kubernetes {version}): {p}" for p in problems(doc, version)]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--oldest", required=True, help="the oldest Kubernetes supported")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    versions = dict.fromkeys([args.oldest, kubernetes_validate.latest_version()])
    found = check(args.paths, versions)
    for problem in found:
        print(f"deploy-check: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
