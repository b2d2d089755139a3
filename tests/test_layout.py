"""The code's layout keeps its promises (DEVELOPERS.md, shared/ rooms): every import arrow points down.

- services never import each other, nor the development stack (`devstack/`);
- `shared/` never imports `devstack/`, `services/` or `tests/`;
- `shared/clinical/` (the shared clinical context and rule helpers) is pure: no broker, Redis, HTTP or runtime;
- `shared/observability/` imports no runtime or web module; `shared/` holds rooms, plus the foundations every room
  uses (settings, connection settings, the errors pure code may raise)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def offending(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{p.relative_to(ROOT)} imports {name}"
        for p in modules(folder)
        for name in sorted(imports(p))
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


@pytest.mark.parametrize(
    "service", sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())
)
def test_a_service_imports_no_other_service_nor_the_dev_stack(service: str) -> None:
    others = tuple(
        f"services.{p.name}"
        for p in (ROOT / "services").iterdir()
        if (p / "__init__.py").exists() and p.name != service
    )
    assert offending(f"services/{service}", (*others, "devstack", "tests")) == []


def test_shared_imports_no_service_dev_stack_or_tests() -> None:
    assert offending("shared", ("services", "devstack", "tests", "bench", "deploy")) == []


def test_the_clinical_context_is_pure() -> None:
    io = ("aiokafka", "redis", "fastapi", "httpx", "uvicorn", "shared.runtime", "shared.web", "shared.observability")
    assert offending("shared/clinical", io) == []


def test_observability_sits_below_the_runtime_and_the_web() -> None:
    assert offending("shared/observability", ("shared.runtime", "shared.web", "shared.clinical")) == []


def test_shared_holds_rooms_and_settings_only() -> None:
    top = sorted(p.name for p in (ROOT / "shared").glob("*.py"))
    assert top == ["__init__.py", "errors.py", "settings.py", "transport.py"]  # pure foundations every room uses
    rooms = sorted(p.name for p in (ROOT / "shared").iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert rooms == ["clinical", "observability", "runtime", "web"]
