"""Contracts: schemas and docs are current, examples validate, the registry matches the services."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from contracts import guideline
from contracts.base import OSTEOCDS_NS, Message, derived_id
from contracts.examples import EXAMPLES
from contracts.generate import example_block, render_doc, stale
from contracts.hospital import ImagingFinding, LabResult
from contracts.rules import CITATIONS
from contracts.topics import TOPICS
from devstack.stack import SERVICE_MODULES
from shared.runtime.decoding import json_decoder
from shared.runtime.kafka import TOPIC_FOR_MODEL, Outgoing
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_committed_schemas_and_docs_are_current() -> None:
    assert stale() == [], "run: python -m contracts.generate"


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.name)
def test_every_topic_has_a_valid_documented_example(topic) -> None:  # type: ignore[no-untyped-def]
    example = EXAMPLES[topic.name]
    topic.value.model_validate(example)
    assert "\n".join(example_block(example)) in render_doc()


def test_every_rule_in_the_catalogue_has_a_citation() -> None:
    catalogue = guideline.RULES_MD
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


@pytest.mark.parametrize(
    "parts",
    [
        ("echo", uuid.UUID("6f1c0e3a-5d0b-4f7e-9a55-0c2f4b1d9e01")),
        ("alert-step", "rec-1", 3, "shown", datetime(2026, 11, 29, 8, 30, tzinfo=UTC)),
        ("clock", "notification", "pt-1", "2026-11-29T08:30:00+00:00", "2026-11-29T08:30:01+00:00"),
        ("é|ü", None, 2.5, True),
        (),
    ],
)
def test_derived_ids_are_the_rfc_4122_name_based_uuids_they_always_were(parts: tuple[object, ...]) -> None:
    """IDs already on the topics and in Redis must not change: derived_id stays uuid5(namespace, "a|b|...")."""
    expected = uuid.uuid5(OSTEOCDS_NS, "|".join(str(p) for p in parts))
    assert derived_id(*parts) == expected and derived_id(*parts).version == 5


@pytest.mark.parametrize("topic_name", sorted(EXAMPLES))
def test_the_runtime_decodes_and_encodes_exactly_as_pydantic_does(topic_name: str) -> None:
    """shared/decoding.json_decoder and shared/kafka.Outgoing.of call pydantic-core directly (per record and per
    output): the same messages and the same JSON as model_validate_json / model_dump_json, for every contract."""
    topic = next(t for t in TOPICS if t.name == topic_name)
    raw = json.dumps(EXAMPLES[topic_name], default=str).encode()
    record = ConsumerRecord(topic_name, 0, 0, 0, 0, b"k", raw, None, 0, len(raw), [])
    decoded = json_decoder(topic.value)(record)
    assert decoded == topic.value.model_validate_json(raw)
    if isinstance(decoded, Message) and type(decoded) in TOPIC_FOR_MODEL:
        assert Outgoing.of(decoded).value == decoded.model_dump_json()


@pytest.mark.parametrize("name", ["RULES.md", "referentiel-aura-2023-metastases-osseuses.fr.txt"])
def test_the_guideline_kept_with_the_contracts_is_the_projects_source(name: str) -> None:
    """contracts/guideline/ holds the guideline the services serve; it must be the project's source text unchanged."""
    source = guideline.SOURCE / name
    if not source.is_file():
        pytest.skip("the project's ../shared/guideline is not beside this clone")
    assert (guideline.HERE / name).read_bytes() == source.read_bytes()
