"""The hazard log (docs/hazard-log.md) stays true: every test it names exists, every rule ID it names is in the
catalogue, and every entry has a cause, a control, a test and a review."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from contracts.rules import CITATIONS

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "docs" / "hazard-log.md"
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def _entries() -> dict[str, str]:
    parts = re.split(r"^### (HAZ-[\w-]+) .*$", LOG.read_text(encoding="utf-8"), flags=re.M)
    return {parts[i]: parts[i + 1].split("\n## ")[0] for i in range(1, len(parts), 2)}


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_the_hazard_log_names_exists() -> None:
    refs = TEST_REF.findall(LOG.read_text(encoding="utf-8"))
    assert refs
    missing = [f"{p}::{name}" for p, name in refs if not (ROOT / p).exists() or name not in _test_names(ROOT / p)]
    assert missing == []


def test_every_hazard_has_rules_cause_controls_tests_and_review() -> None:
    entries = _entries()
    assert len(entries) >= 18
    for haz, body in entries.items():
        for field in ("**Rules:**", "**Hazard:**", "**Cause:**", "**Controls:**", "**Tests:**", "**Review:**"):
            assert field in body, (haz, field)
        assert TEST_REF.search(body), haz
        rules = re.search(r"\*\*Rules:\*\* (.+)", body)
        assert rules is not None
        unknown = [r for r in re.split(r",\s*", rules.group(1).strip()) if r not in CITATIONS]
        assert unknown == [], (haz, unknown)
