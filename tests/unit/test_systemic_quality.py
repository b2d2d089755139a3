"""QUAL-PATHWAY (L1-57) and MOL-BIOPSY (L496-634) as plan sections of the systemic planner (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.care import CareEvent
from tests.unit.test_systemic_rules import env, items, le, met, run


def care(minutes: int, **body: Any) -> CareEvent:
    return CareEvent.model_validate({**env(minutes), "event": body})


def step(minutes: int, item: str, status: str) -> CareEvent:
    return care(minutes, kind="pathway_step", item=item, status=status, on="2026-11-01")


def biopsy(minutes: int, status: str, **extra: Any) -> CareEvent:
    return care(minutes, kind="bone_biopsy", biopsy_id="bx1", status=status, on="2026-11-01", **extra)


def test_qual_pathway_checklist_done_to_do_declined() -> None:
    s, _ = run([met(), le(1, 12)])
    checks = {c.name: c.status for c in items(s)["care-pathway"].checks}
    assert len(checks) == 10 and set(checks.values()) == {"to_do"}
    s, _ = run(
        [
            step(2, "multidisciplinary_decision", "done"),
            step(3, "psychologist", "declined"),
            step(4, "oncogenetics", "not_applicable"),
            step(5, "smoking_cessation", "to_do"),
        ],
        s,
    )
    pathway = items(s)["care-pathway"]
    checks = {c.name: c.status for c in pathway.checks}
    assert checks["multidisciplinary_decision"] == "done" and checks["psychologist"] == "declined"
    assert checks["oncogenetics"] == "done" and checks["smoking_cessation"] == "to_do"
    assert pathway.title.endswith("3/10 éléments traités") and pathway.rule_id == "QUAL-PATHWAY"
    assert "Aide à l'arrêt du tabac" in pathway.text_fr and "Psychologue" not in pathway.text_fr


def test_mol_biopsy_planned_gives_the_decalcification_advice() -> None:
    s, _ = run([met(), le(1, 12), biopsy(2, "planned", context="tki_resistance")])
    item = items(s)["bone-biopsy"]
    assert item.rule_id == "MOL-BIOPSY" and "EDTA" in item.text_fr and "acide formique" in item.text_fr
    assert "jamais un acide fort" in item.text_fr and "mutations de résistance" in item.text_fr


@pytest.mark.parametrize(
    ("histology", "context", "results", "missing"),
    [
        ("adenocarcinoma", "diagnosis", {"EGFR": "negative"}, ["ALK result", "KRAS result", "PD-L1 result"]),
        (
            "adenocarcinoma",
            "tki_resistance",
            {"EGFR": "L858R", "ALK": "negative", "KRAS": "failed", "PD-L1": "10%"},
            ["KRAS result", "TKI resistance mutations result"],
        ),
        ("adenocarcinoma", "diagnosis", {"EGFR": "ex19del", "ALK": "neg", "KRAS": "neg", "PD-L1": "1%"}, []),
        ("squamous_cell", "diagnosis", {}, []),
    ],
)
def test_mol_biopsy_reported_names_the_missing_molecular_results(
    histology: str, context: str, results: dict[str, str], missing: list[str]
) -> None:
    s, _ = run(
        [
            met(),
            le(1, 12),
            biopsy(
                2, "reported", histology=histology, context=context, decalcification="edta", molecular_results=results
            ),
        ]
    )
    item = items(s)["bone-biopsy"]
    assert item.missing == missing and item.status == ("to_do" if missing else "done")
    if histology == "squamous_cell":
        assert "aucune recherche moléculaire" in item.text_fr


def test_mol_biopsy_strong_acid_decalcification_warns() -> None:
    s, _ = run([met(), le(1, 12), biopsy(2, "reported", histology="adenocarcinoma", decalcification="strong_acid")])
    item = items(s)["bone-biopsy"]
    assert item.severity == "warning" and "EDTA" in item.text_fr


def test_mol_biopsy_histology_without_a_rule_is_not_guessed() -> None:
    s, _ = run([met(), le(1, 12), biopsy(2, "reported")])
    item = items(s)["bone-biopsy"]
    assert item.status == "cannot_decide" and item.missing == ["histology of the bone biopsy"]
