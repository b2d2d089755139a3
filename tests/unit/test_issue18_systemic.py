"""Issue 18, systemic planner: (8) SYS-REVIEW-2Y counts the current anti-resorptive treatment, never a course
stopped long ago (L1238, L1275; after the independent review: cumulative exposure, a fresh count only after a gap
of 12 months or more, tests/unit/test_issue18_review_systemic.py); (9) MOL-BIOPSY never counts a failed molecular
test as done (L601-615)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from contracts.care import CareEvent
from contracts.hospital import TreatmentEvent
from services.systemic_planner.domain import build_plan
from tests.unit.test_systemic_rules import NOW, as_of, drug, env, items, lab, le, met, oligo, ready, run

BASE = [met(), le(1, 12), lab(2, "creatinine_clearance", 75.0, "mL/min"), oligo(3, "multi_metastatic"), *ready()]


def drugs(*events: tuple[str, str, str]) -> list[TreatmentEvent]:
    return [drug(10 + i, name, action, on) for i, (name, action, on) in enumerate(events)]


ZA, DENO = "zoledronic_acid", "denosumab"


# ---- (8) SYS-REVIEW-2Y: 2 years of the current treatment -------------------------------------------------------
@pytest.mark.parametrize(
    ("events", "since", "due", "overdue"),
    [
        # the issue: zoledronic acid in 2021, stopped, restarted in 2026: 4 months of treatment, not 5 years
        (
            [(ZA, "started", "2021-01-10"), (ZA, "stopped", "2021-06-01"), (ZA, "started", "2026-07-01")],
            "2026-07-01",
            "01/07/2028",
            False,
        ),
        # the same with denosumab in 2021
        (
            [(DENO, "started", "2021-02-01"), (DENO, "stopped", "2021-12-01"), (ZA, "started", "2026-07-01")],
            "2026-07-01",
            "01/07/2028",
            False,
        ),
        # an earlier course stopped at its review: the new one counts on its own
        (
            [(ZA, "started", "2021-01-10"), (ZA, "stopped", "2023-02-01"), (ZA, "started", "2026-07-01")],
            "2026-07-01",
            "01/07/2028",
            False,
        ),
        # a stop, then a start 7 months later (issue 18 review: a gap under 12 months does not start the count
        # again; 143 days of exposure before it, 2 years reached on 26/08/2026)
        (
            [(ZA, "started", "2024-01-10"), (ZA, "stopped", "2024-06-01"), (ZA, "started", "2025-01-15")],
            "2024-01-10",
            "26/08/2026",
            True,
        ),
        # a switch on the day of the stop continues the treatment
        (
            [(ZA, "started", "2024-10-01"), (ZA, "stopped", "2025-06-01"), (DENO, "started", "2025-06-01")],
            "2024-10-01",
            "01/10/2026",
            True,
        ),
        # overlapping anti-resorptives: one treatment, from the first start
        (
            [(DENO, "started", "2024-10-15"), (ZA, "started", "2025-03-01"), (DENO, "stopped", "2025-03-10")],
            "2024-10-15",
            "15/10/2026",
            True,
        ),
        # several courses, the last one started after a gap, then a switch without a gap
        (
            [
                (ZA, "started", "2021-01-10"),
                (ZA, "stopped", "2021-06-01"),
                (DENO, "started", "2025-12-01"),
                (DENO, "stopped", "2026-03-01"),
                (ZA, "started", "2026-03-01"),
            ],
            "2025-12-01",
            "01/12/2027",
            False,
        ),
    ],
)
def test_sys_review_2y_counts_the_current_continuous_treatment(
    events: list[tuple[str, str, str]], since: str, due: str, overdue: bool
) -> None:
    s, _ = run([*BASE, *drugs(*events)])
    review = items(s)["review-2-years"]
    assert due in review.title, review.title
    assert {i.name: i.value for i in review.inputs}["antiresorptive_since"] == since
    assert review.severity == ("warning" if overdue else "info")
    assert f"débuté le {date.fromisoformat(since):%d/%m/%Y}" in review.text_fr
    first = min(date.fromisoformat(on) for _, action, on in events if action == "started")
    earlier = f"Un traitement anti-résorptif antérieur (premier début le {first:%d/%m/%Y}), suivi d'une interruption"
    assert (earlier in review.text_fr) is (first < date.fromisoformat(since))


def test_sys_review_2y_deadline_follows_the_current_start() -> None:
    """The clock fires the review 2 years after the current start, never at the old course's anniversary."""
    s, _ = run(
        [*BASE, *drugs((ZA, "started", "2025-03-01"), (ZA, "stopped", "2025-05-01"), (ZA, "started", "2026-09-01"))]
    )
    at = as_of(NOW)
    build_plan(s, at)
    assert at.start_of(date(2028, 9, 1)) in at.deadlines
    assert at.start_of(date(2027, 3, 1)) not in at.deadlines
    at_old_anniversary = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
    review = items(s, at_old_anniversary)["review-2-years"]
    assert review.severity == "info" and "01/09/2028" in review.title
    assert items(s, datetime(2028, 9, 1, 9, 0, tzinfo=UTC))["review-2-years"].severity == "warning"


# ---- (9) MOL-BIOPSY: a failed molecular test is missing, never done -------------------------------------------
def biopsy(results: dict[str, str], **extra: Any) -> CareEvent:
    body = {
        "kind": "bone_biopsy",
        "biopsy_id": "bx1",
        "status": "reported",
        "on": "2026-11-01",
        "histology": "adenocarcinoma",
        "context": "diagnosis",
        "decalcification": "edta",
        "molecular_results": results,
        **extra,
    }
    return CareEvent.model_validate({**env(2), "event": body})


DONE = {"ALK": "négatif", "KRAS": "G12C", "PD-L1": "TPS 50 %"}


@pytest.mark.parametrize(
    ("egfr", "missing"),
    [
        ("non contributif", "EGFR result (last test failed: non contributif)"),
        ("Non contributif (ADN insuffisant)", "EGFR result (last test failed: Non contributif (ADN insuffisant))"),
        ("ÉCHEC technique", "EGFR result (last test failed: ÉCHEC technique)"),
        ("echec", "EGFR result (last test failed: echec)"),
        ("Non interprétable", "EGFR result (last test failed: Non interprétable)"),
        ("ininterpretable", "EGFR result (last test failed: ininterpretable)"),
        ("not contributory", "EGFR result (last test failed: not contributory)"),
        ("Failed - insufficient sample", "EGFR result (last test failed: Failed - insufficient sample)"),
        ("insufficient sample", "EGFR result (last test failed: insufficient sample)"),
        ("Matériel insuffisant", "EGFR result (last test failed: Matériel insuffisant)"),
        ("non réalisable", "EGFR result (last test failed: non réalisable)"),
        ("not evaluable", "EGFR result (last test failed: not evaluable)"),
        ("invalid", "EGFR result (last test failed: invalid)"),
        ("absence d'ADN amplifiable", "EGFR result (last test failed: absence d'ADN amplifiable)"),
        ("pas de matériel tumoral", "EGFR result (last test failed: pas de matériel tumoral)"),
        ("Non réalisé", "EGFR result (not done: Non réalisé)"),
        ("pas de résultat", "EGFR result (not done: pas de résultat)"),
        ("failed", "EGFR result"),  # the contract's own word: nothing more to name
        ("en cours", "EGFR result (pending: en cours)"),
        ("", "EGFR result"),
        ("voir compte rendu", "EGFR result (unrecognised result, to check: voir compte rendu)"),
    ],
)
def test_mol_biopsy_a_failed_or_unreadable_result_is_missing(egfr: str, missing: str) -> None:
    s, _ = run([met(), le(1, 12), biopsy({"EGFR": egfr, **DONE})])
    item = items(s)["bone-biopsy"]
    assert item.missing == [missing]
    assert item.status == "to_do"
    assert "marker:EGFR" not in {i.name for i in item.inputs}
    assert "Manquent : EGFR." in item.text_fr and "Résultats : EGFR" not in item.text_fr


@pytest.mark.parametrize(
    "egfr",
    [
        "exon 19 deletion",
        "ex19del",
        "L858R",
        "Mutation exon 20 (insertion)",
        "négatif",
        "NEGATIVE",
        "neg",
        "non muté",
        "sauvage",
        "wild-type",
        "WT",
        "absence de mutation",
        "pas de mutation détectée",
        "mutation non détectée",
        "not detected",
        "positif",
        "muté",
        "présence d'une mutation T790M",
        "contributif : négatif",
        "interprétable, wild type",
    ],
)
def test_mol_biopsy_a_real_result_counts_as_done(egfr: str) -> None:
    s, _ = run([met(), le(1, 12), biopsy({"EGFR": egfr, **DONE})])
    item = items(s)["bone-biopsy"]
    assert item.missing == [] and item.status == "done"
    assert {i.name: i.value for i in item.inputs}["marker:EGFR"] == egfr


@pytest.mark.parametrize(
    ("marker", "value"),
    [
        ("ALK", "réarrangement EML4-ALK"),
        ("ALK", "rearranged"),
        ("ALK", "fusion détectée"),
        ("ALK", "IHC 0"),
        ("PD-L1", "<1%"),
        ("PD-L1", "0 %"),
        ("PD-L1", "TPS 1-49%"),
        ("KRAS", "G12C"),
        ("KRAS", "p.Gly12Cys"),
        ("KRAS", "amplification"),
    ],
)
def test_mol_biopsy_other_markers_real_results(marker: str, value: str) -> None:
    results = {"EGFR": "négatif", **DONE, marker: value}
    s, _ = run([met(), le(1, 12), biopsy(results)])
    assert items(s)["bone-biopsy"].missing == []


def test_mol_biopsy_failure_wording_is_said_in_french_and_asks_for_a_new_test() -> None:
    s, _ = run([met(), le(1, 12), biopsy({"EGFR": "non contributif", "ALK": "échec", "KRAS": "G12C"})])
    item = items(s)["bone-biopsy"]
    assert item.missing == [
        "EGFR result (last test failed: non contributif)",
        "ALK result (last test failed: échec)",
        "PD-L1 result",
    ]
    assert "Résultats : KRAS : G12C." in item.text_fr
    assert "non abouti" in item.text_fr and "EGFR (non contributif)" in item.text_fr
    assert "Manquent : EGFR, ALK, PD-L1." in item.text_fr
