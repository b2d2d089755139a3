"""Issue 18, the systemic planner reads the one clinical context (shared/clinical/): life expectancy, drug identity
(anti-resorptives, nephrotoxic chemotherapy, TKIs, cholecalciferol, the denosumab relay), treatment corrections
(item 7), and the care-pathway checklist items the text makes systematic (weak item: "not applicable" is not done).
Pure timelines through apply_event."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.care import CareEvent
from contracts.clinical import Recommendation
from contracts.hospital import TreatmentEvent
from services.systemic_planner import rules as r
from services.systemic_planner.disease import life_expectancy
from services.systemic_planner.domain import SystemicState, build_plan, decision_content
from shared.clinical import life_expectancy as shared_le
from tests.unit.test_systemic_rules import NOW, T0, as_of, env, items, lab, le, met, oligo, ready, run

BASE: list[Message] = [
    met(),
    le(1, 12),
    lab(2, "creatinine_clearance", 75.0, "mL/min"),
    oligo(3, "multi_metastatic"),
    *ready(),
]


def drug(minutes: int, name: str, action: str = "started", on: str = "2026-10-01", **extra: Any) -> TreatmentEvent:
    body = {"kind": "systemic_drug", "drug": name, "action": action, "on": on, **extra}
    return TreatmentEvent.model_validate({**env(minutes), "treatment": body})


def correction(of: TreatmentEvent, status: str, minutes: int, **treatment: Any) -> TreatmentEvent:
    body = {**of.treatment.model_dump(mode="json"), **treatment}
    return TreatmentEvent.model_validate(
        {**env(minutes), "treatment": body, "record_status": status, "corrects": of.event_id}
    )


def plan_of(s: SystemicState) -> list[str]:
    """The decisions of the plan (what clinicians are notified of), provenance aside."""
    return [decision_content(i) for i in build_plan(s, as_of(NOW))]


def published(s: SystemicState) -> dict[str, tuple[str, str]]:
    """What the planner holds as notified: item key -> (rule, content digest)."""
    return {k: (v.split("|")[0], v.split("|")[2]) for k, v in s.published.items()}


# ---- task 1: no service-local life-expectancy arithmetic ------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["remaining_life_expectancy", "when_remaining_reaches", "DAYS_PER_MONTH", "SIX_WEEKS_IN_MONTHS"]
)
def test_systemic_planner_does_not_redefine_the_shared_life_expectancy_facts(name: str) -> None:
    assert not hasattr(r, name), f"services/systemic_planner/rules.py still defines {name}: use shared.clinical"


@pytest.mark.parametrize(("estimate", "days"), [(3.5, 1), (3.5, 20), (12, 80), (1.0, 0.5)])
def test_SYS_AR_START_remaining_estimate_is_the_shared_one(estimate: float, days: float) -> None:
    now = T0 + timedelta(days=days)
    s, _ = run([met(), le(0, estimate)], now=now)
    got = life_expectancy(s, as_of(now)).remaining
    assert got == shared_le.remaining_months(estimate, T0, now)


# ---- task 2: drug identity ------------------------------------------------------------------------------------
Drug = tuple[str, str, str] | tuple[str, str, str, str]  # (name, action, on[, ATC code])


def drugs(*events: Drug) -> list[TreatmentEvent]:
    return [drug(10 + i, x[0], x[1], x[2], **({"atc_code": x[3]} if len(x) == 4 else {})) for i, x in enumerate(events)]


CASES: list[tuple[str, list[Message], list[Drug], list[list[Drug]]]] = [
    (
        "on denosumab",
        BASE,
        [("denosumab", "started", "2026-06-01")],
        [
            [("Xgeva", "started", "2026-06-01")],
            [("XGEVA 120 mg", "started", "2026-06-01")],
            [("Dénosumab", "started", "2026-06-01")],
            [("produit hospitalier", "started", "2026-06-01", "M05BX04")],
        ],
    ),
    (
        "on zoledronic acid",
        BASE,
        [("zoledronic_acid", "started", "2026-06-01")],
        [
            [("Zometa", "started", "2026-06-01")],
            [("Acide zolédronique", "started", "2026-06-01")],
            [("acide zoledronique 4 mg", "started", "2026-06-01")],
            [("produit hospitalier", "started", "2026-06-01", "M05BA08")],
        ],
    ),
    (
        "nephrotoxic chemotherapy with a bisphosphonate",
        BASE,
        [("cisplatin", "started", "2026-10-01"), ("zoledronic_acid", "started", "2026-10-01")],
        [[("Cisplatine", "started", "2026-10-01"), ("Zometa", "started", "2026-10-01")]],
    ),
    (
        "denosumab stopped, zoledronic acid relay",
        BASE,
        [
            ("denosumab", "started", "2025-01-10"),
            ("denosumab", "stopped", "2026-10-01"),
            ("zoledronic_acid", "started", "2026-10-15"),
        ],
        [
            [
                ("Xgeva", "started", "2025-01-10"),
                ("XGEVA", "stopped", "2026-10-01"),
                ("Zometa", "started", "2026-10-15"),
            ],
            [
                ("Xgeva", "started", "2025-01-10"),
                ("denosumab", "stopped", "2026-10-01"),
                ("Acide zolédronique", "started", "2026-10-15"),
            ],
        ],
    ),
    (
        "TKI in severe renal failure",
        [met(), le(1, 12), lab(2, "creatinine_clearance", 20.0, "mL/min"), oligo(3, "multi_metastatic"), *ready()],
        [("osimertinib", "started", "2026-10-01")],
        [[("Tagrisso", "started", "2026-10-01")], [("hospital drug", "started", "2026-10-01", "L01EB04")]],
    ),
    (
        "cholecalciferol loading under way",
        [met(), le(1, 12), lab(2, "creatinine_clearance", 75.0, "mL/min"), lab(3, "vitamin_d_25oh", 18.0, "ng/mL")],
        [("cholecalciferol", "started", "2026-11-01")],
        [[("Uvedose", "started", "2026-11-01")], [("Vitamine D3", "started", "2026-11-01")]],
    ),
]


def _marker(case: str, s: SystemicState) -> bool:
    """What the case is about, read on the plan (so that the equivalence is not between two wrong plans)."""
    plan = items(s)
    if case.startswith("on "):
        return plan["antiresorptive-start"].status != "recommended" and "review-2-years" in plan
    if case.startswith("nephrotoxic"):
        return "cisplatin" in plan["nephrotoxicity"].title
    if case.startswith("denosumab stopped"):
        return plan["denosumab-stop"].status == "done"
    if case.startswith("TKI"):
        return "osimertinib : ITK déconseillé" in plan["severe-renal-failure"].text_fr
    return plan["vitamin-d"].title == "Vitamine D : recharge en cours"


@pytest.mark.parametrize(
    ("case", "base", "canonical", "alias"),
    [(c, b, x, a) for c, b, x, aliases in CASES for a in aliases],
    ids=[f"{c}: {a[-1][0]}" for c, _, _, aliases in CASES for a in aliases],
)
def test_a_drug_is_the_same_drug_whatever_name_or_code_it_is_sent_with(
    case: str, base: list[Message], canonical: list[Drug], alias: list[Drug]
) -> None:
    expected, _ = run([*base, *drugs(*canonical)])
    got, _ = run([*base, *drugs(*alias)])
    assert _marker(case, expected)
    assert plan_of(got) == plan_of(expected)


# ---- task 3: corrections of treatment events ------------------------------------------------------------------
def _orders(original: Message, fix: Message, rest: Sequence[Message] = ()) -> list[list[Message]]:
    return [
        [original, fix, *rest],
        [fix, original, *rest],
        [fix, *rest, original],
        [original, *rest, fix, original],  # the original delivered again after its correction
    ]


DENO = drug(10, "denosumab", on="2026-06-01")


@pytest.mark.parametrize("order", range(4))
def test_SYS_AR_START_an_antiresorptive_start_entered_in_error_gives_the_start_back(order: int) -> None:
    baseline, _ = run(BASE)
    assert items(baseline)["antiresorptive-start"].status == "recommended"
    s, _ = run([*BASE, *_orders(DENO, correction(DENO, "entered-in-error", 20))[order]])
    assert items(s)["antiresorptive-start"].status == "recommended"
    assert plan_of(s) == plan_of(baseline) and published(s) == published(baseline)


def test_SYS_AR_START_the_correction_reissues_the_start_recommendation() -> None:
    s, _ = run(BASE)
    rule, start_id, digest = s.published["antiresorptive-start"].split("|")
    s, out = run([DENO], s)  # on denosumab: the start recommendation is withdrawn
    withdrawn = [x for x in out if isinstance(x, Recommendation) and x.status == "withdrawn"]
    assert [uuid.UUID(start_id)] in [x.supersedes for x in withdrawn] and "antiresorptive-start" not in s.published
    s, out = run([correction(DENO, "entered-in-error", 20)], s)
    [again] = [x for x in out if isinstance(x, Recommendation) and x.rule_id == "SYS-AR-START"]
    assert again.status == "active" and rule == "SYS-AR-START"
    assert s.published["antiresorptive-start"].endswith(f"|{digest}")  # the same decision as before


@pytest.mark.parametrize("order", range(4))
def test_an_amended_drug_event_replaces_the_original(order: int) -> None:
    """Denosumab recorded, amended to zoledronic acid: the plan of a patient on zoledronic acid."""
    expected, _ = run([*BASE, drug(10, "zoledronic_acid", on="2026-06-01")])
    s, _ = run([*BASE, *_orders(DENO, correction(DENO, "amended", 20, drug="Zometa"))[order]])
    assert plan_of(s) == plan_of(expected) and published(s) == published(expected)


VIT_D = [met(), le(1, 12), lab(2, "creatinine_clearance", 75.0, "mL/min"), lab(3, "vitamin_d_25oh", 18.0, "ng/mL")]
LOADING = drug(10, "cholecalciferol", on="2026-11-01")


@pytest.mark.parametrize("order", range(4))
def test_SYS_VITD_CORR_a_loading_entered_in_error_is_to_prescribe_again(order: int) -> None:
    s, _ = run([*VIT_D, *_orders(LOADING, correction(LOADING, "entered-in-error", 20))[order]])
    vit_d = items(s)["vitamin-d"]
    assert [o.count for o in vit_d.orders] == [8, None]  # the 8 weekly doses are proposed again
    baseline, _ = run(VIT_D)
    assert plan_of(s) == plan_of(baseline)


def test_a_correction_of_an_unknown_event_changes_nothing() -> None:
    stray = TreatmentEvent.model_validate(
        {
            **env(30),
            "treatment": DENO.treatment.model_dump(mode="json"),
            "record_status": "entered-in-error",
            "corrects": uuid.uuid4(),
        }
    )
    expected, _ = run([*BASE, DENO])
    s, _ = run([*BASE, DENO, stray])
    assert plan_of(s) == plan_of(expected)


# ---- task 4: QUAL-PATHWAY, "not applicable" is not accepted for a systematic item ------------------------------
def step(minutes: int, name: str, status: str) -> CareEvent:
    return CareEvent.model_validate(
        {**env(minutes), "event": {"kind": "pathway_step", "item": name, "status": status, "on": "2026-11-01"}}
    )


@pytest.mark.parametrize(
    ("name", "systematic"),
    [
        ("multidisciplinary_decision", True),  # L5-11 "font l'objet d'une discussion pluridisciplinaire"
        ("patient_information", True),  # L13-19 "sont expliqués ... remis au patient"
        ("pain_management", True),  # L29-31 "doit bénéficier d'une prise en charge de la douleur"
        ("occupational_exposure", True),  # L43-45 "doit être systématique"
        ("smoking_cessation", False),  # L26-27: a non-smoker has no smoking to stop
        ("palliative_supportive_care", False),  # L33-35 "peut bénéficier"
        ("psychologist", False),  # L37-38 "peuvent bénéficier"
        ("social_worker", False),  # L40-41 "peuvent bénéficier"
        ("oncogenetics", False),  # L47-49 "En cas de ... plusieurs cas de cancers dans la famille"
        ("clinical_trial", False),  # L51-53 "a la possibilité"
    ],
)
def test_QUAL_PATHWAY_not_applicable_is_done_only_for_a_conditional_item(name: str, systematic: bool) -> None:
    s, _ = run([met(), le(1, 12), step(2, name, "not_applicable")])
    pathway = items(s)["care-pathway"]
    check = next(c for c in pathway.checks if c.name == name)
    if systematic:
        assert check.status == "to_do" and "systématique" in check.detail_fr and "sans objet" in check.detail_fr
        assert pathway.title.endswith("0/10 éléments traités")
    else:
        assert check.status == "done" and pathway.title.endswith("1/10 éléments traités")


@pytest.mark.parametrize("status", ["done", "declined"])
def test_QUAL_PATHWAY_a_systematic_item_done_or_declined_is_treated(status: str) -> None:
    s, _ = run([met(), le(1, 12), step(2, "occupational_exposure", status)])
    check = next(c for c in items(s)["care-pathway"].checks if c.name == "occupational_exposure")
    assert check.status == status
