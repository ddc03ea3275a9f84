"""The domain stays pure: nothing in orders/domain imports I/O, the web framework or the layers
that depend on it."""

from __future__ import annotations

import ast
from pathlib import Path

import orders.domain

FORBIDDEN = ("asyncpg", "litestar", "uvicorn", "orders.eventstore", "orders.api")


def imported_modules(source: Path, package: str = "orders.domain") -> set[str]:
    """Every module `source` imports, relative imports resolved against `package`."""
    tree = ast.parse(source.read_text(), filename=str(source))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert node.module is not None  # only a relative import may name no module
                absolute = node.module
            else:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                absolute = ".".join([*base, node.module or ""])
            names.add(absolute.rstrip("."))
    return names


def is_forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def domain_sources() -> list[Path]:
    return sorted(Path(orders.domain.__file__).parent.rglob("*.py"))


def test_the_domain_package_has_modules_to_check() -> None:
    assert {path.name for path in domain_sources()} >= {"decide.py", "events.py", "commands.py"}


def test_the_domain_imports_no_io_framework_or_outer_layer() -> None:
    offenders = {
        f"{path.name}: {module}"
        for path in domain_sources()
        for module in imported_modules(path)
        if is_forbidden(module)
    }
    assert offenders == set()


def test_the_layer_check_recognises_a_forbidden_import(tmp_path: Path) -> None:
    source = tmp_path / "leaky.py"
    source.write_text(
        "import asyncpg\n"
        "from orders.eventstore.store import EventStore\n"
        "from ..api import problems\n"
        "from .events import OrderCreated\n"
    )
    assert {m for m in imported_modules(source) if is_forbidden(m)} == {
        "asyncpg",
        "orders.eventstore.store",
        "orders.api",
    }
