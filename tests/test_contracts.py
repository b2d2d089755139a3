"""Contracts: schemas and docs are current, examples validate, the registry matches the services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.examples import EXAMPLES
from contracts.generate import example_block, render_doc, stale
from contracts.hospital import ImagingFinding, LabResult
from contracts.rules import CITATIONS
from contracts.topics import TOPICS
from shared.settings import Settings
from shared.stack import SERVICE_MODULES

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schemas_and_docs_are_current() -> None:
    assert stale() == [], "run: python -m contracts.generate"


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.name)
def test_every_topic_has_a_valid_documented_example(topic) -> None:  # type: ignore[no-untyped-def]
    example = EXAMPLES[topic.name]
    topic.value.model_validate(example)
    assert "\n".join(example_block(example)) in render_doc()


def test_every_rule_in_the_catalogue_has_a_citation() -> None:
    catalogue = ROOT.parent / "shared" / "guideline" / "RULES.md"
    if not catalogue.is_file():
        pytest.skip("guideline catalogue not beside the repo")
    ids = {
        line.split("|")[1].strip()
        for line in catalogue.read_text().splitlines()
        if line.startswith("| ") and line.split("|")[1].strip()[:3].isupper() and "-" in line.split("|")[1]
    }
    assert len(ids) >= 45, sorted(ids)
    assert ids - set(CITATIONS) == set()


def test_registry_consumers_are_the_services_subscriptions() -> None:
    import importlib

    for name, (module, _) in SERVICE_MODULES.items():
        app = importlib.import_module(f"{module}.app")
        settings_mod = importlib.import_module(f"{module}.settings")
        settings_cls = next(
            v
            for v in vars(settings_mod).values()
            if isinstance(v, type) and issubclass(v, Settings) and v is not Settings
        )
        service, _ = app.build(settings_cls())
        declared = {t.name for t in TOPICS if name in t.consumers}
        assert set(service.subscriptions) == declared, name


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"value": None}, "value"),  # a value is required unless entered-in-error
        ({"patient_id": "Jean Dupont"}, "patient_id"),  # pseudonymous IDs only
        ({"occurred_at": "2026-11-27T07:40:00"}, "occurred_at"),  # naive time: timezone never guessed
        ({"status": "preliminary"}, "status"),
        ({"extra_field": 1}, "extra_field"),
    ],
)
def test_lab_result_rejects_bad_input(patch: dict[str, Any], field: str) -> None:
    doc = {**EXAMPLES["hospital.lab-results.v1"], **patch}
    with pytest.raises(ValidationError) as err:
        LabResult.model_validate(doc)
    assert field in str(err.value) or "value is required" in str(err.value)


def test_spinal_finding_needs_a_vertebral_level() -> None:
    doc = {**EXAMPLES["hospital.imaging-findings.v1"], "vertebral_level": None}
    with pytest.raises(ValidationError, match="vertebral_level"):
        ImagingFinding.model_validate(doc)


def test_readme_topic_table_lists_every_topic() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert [t.name for t in TOPICS if f"| `{t.name}` |" not in readme] == []
