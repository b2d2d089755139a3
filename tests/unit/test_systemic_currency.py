"""Second reading of the systemic planner against the French text (pure timelines): the vitamin D deficiency and a
hypercalcaemia (SYS-AR-PREREQ), the life expectancy's currency and what remains of it (SYS-AR-START, SYS-ONCO), only
a confirmed lesion starts anything (IMG-ISOLATED), Tableau 1's high levels (SYS-VITD-CORR), denosumab at CrCl < 30
or under an ONJ block (SYS-DENO-STOP), calcium advice on a measured calcium, citations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from contracts.hospital import ImagingFinding
from contracts.rules import RULESET_VERSION, cite
from services.scoring import rules as scoring_rules
from services.systemic_planner import rules as r
from services.systemic_planner.disease import life_expectancy
from shared.clinical import life_expectancy as shared_le
from tests.unit.test_systemic_rules import T0, dental, drug, env, items, lab, le, met, oligo, ready, run
from tests.unit.test_systemic_safety import BASE, DAY, calcium, fhir_codes, orders, sre

DENTAL_OK = dental(5, action="assessment", orthopantomogram=True, on="2026-10-28")


# ---- item 2: a vitamin D deficiency does not hold the anti-resorptive while supplements are held -----------------
@pytest.mark.parametrize("why", ["calcium_3_2", "old_hypercalcaemia_sre"])
def test_SYS_AR_PREREQ_vitamin_d_deficiency_does_not_hold_the_ar_while_hypercalcaemia_holds_its_correction(
    why: str,
) -> None:
    """L797-799 "corriger une carence ... (sauf urgence)": the correction is impossible while calcium is high (vitamin
    D held), and the hypocalcaemia it prevents is not present then. Without the waiver each waits for the other."""
    high = calcium(6, 3.2) if why == "calcium_3_2" else sre(-30 * DAY)  # below the crisis / not current
    s, _ = run([*BASE, lab(4, "vitamin_d_25oh", 15.0, "ng/mL"), DENTAL_OK, high])
    plan = items(s)
    assert plan["vitamin-d"].orders == []  # still no vitamin D nor calcium
    checks = {c.name: c for c in plan["prerequisites"].checks}
    assert checks["vitamin_d"].status == "waived" and "pas de risque d'hypocalcémie" in checks["vitamin_d"].detail_fr
    assert plan["prerequisites"].status == "waived"
    [order] = plan["antiresorptive"].orders
    assert order.drug == "zoledronic_acid" and order.waived_prerequisites == ["vitamin_d"]
    assert "prérequis levé" in order.instructions_fr and "urgence" not in order.instructions_fr
    assert "M05BA08" in fhir_codes(s)
    # a normal calcium: the correction is possible again, and the deficiency holds the start until corrected
    s, _ = run([calcium(60, 2.40)], s)
    plan = items(s)
    assert plan["antiresorptive"].orders == [] and plan["antiresorptive"].rule_id == "SYS-AR-PREREQ"
    assert [o.count for o in plan["vitamin-d"].orders] == [8, None]


def test_SYS_AR_PREREQ_hypercalcaemia_waives_only_the_vitamin_d_not_the_dental_assessment() -> None:
    s, _ = run([*BASE, lab(4, "vitamin_d_25oh", 15.0, "ng/mL"), calcium(6, 3.2)])
    plan = items(s)
    assert plan["antiresorptive"].orders == [] and "bilan bucco-dentaire" in plan["antiresorptive"].text_fr


# ---- item 3: an outdated or future-dated estimate; what remains of it ---------------------------------------------
def test_SYS_AR_START_outdated_life_expectancy_is_to_estimate_again() -> None:
    later = T0 + timedelta(days=800)
    s, _ = run([met(), le(1, 12)], now=later)
    start = items(s, later)["antiresorptive-start"]
    assert start.status == "cannot_decide" and "estimer de nouveau" in start.title
    assert start.missing == ["a current life expectancy estimate (the last one, 12 months, dated 2026-11-01)"]


def test_SYS_AR_START_a_future_dated_estimate_never_overrides_the_current_one() -> None:
    s, _ = run([met(), le(1, 2.0), le(30 * DAY, 12.0)])
    start = items(s)["antiresorptive-start"]
    assert start.status == "not_indicated" and "datée dans le futur" in start.text_fr
    # on its date it becomes the estimate (a deadline)
    assert s.next_due is not None and s.next_due <= T0 + timedelta(days=30)


def test_SYS_AR_START_thresholds_apply_to_the_remaining_life_expectancy() -> None:
    """3.5 months estimated 20 days ago: ~2.8 months left, not > 3 months (L1070-1074)."""
    at = T0 + timedelta(days=20)
    s, _ = run([met(), le(1, 3.5)], now=at)
    start = items(s, at)["antiresorptive-start"]
    assert start.status == "not_indicated" and "estimation du 01/11/2026 : 3.5 mois" in start.text_fr
    used = {i.name: i.value for i in start.inputs}
    assert used["life_expectancy"] == 3.5 and used["life_expectancy_remaining"] == pytest.approx(2.84, abs=0.01)
    # the same estimate a day after it was made: start; the plan is looked at again when 3 months remain
    s, _ = run([met(), le(1, 3.5)])
    assert items(s)["antiresorptive-start"].status == "recommended"
    crossing = shared_le.when_remaining_reaches(3.5, T0 + timedelta(minutes=1), 3.0)
    assert s.next_due == crossing + timedelta(seconds=1)


# ---- item 4: only a confirmed lesion is a bone metastasis ---------------------------------------------------------
def finding(minutes: int, modality: str, **extra: Any) -> ImagingFinding:
    return ImagingFinding.model_validate(
        {**env(minutes), "lesion_id": "x", "skeletal_site": "rib", "modality": modality, **extra}
    )


@pytest.mark.parametrize(
    "findings",
    [
        [("fdg_pet", {})],  # one focus on PET only
        [("bone_scan", {})],
        [("ct", {"status": "suspected"})],
        [("ct", {"status": "resolved"})],
        [("ct", {}), ("ct", {"status": "resolved"})],  # confirmed, then resolved
    ],
)
def test_IMG_ISOLATED_an_unconfirmed_or_resolved_lesion_starts_no_antiresorptive(
    findings: list[tuple[str, dict[str, Any]]],
) -> None:
    s, _ = run([finding(n, m, **x) for n, (m, x) in enumerate(findings)] + [le(10, 12)])
    assert "antiresorptive-start" not in items(s)


def test_SYS_AR_START_a_pet_focus_confirmed_on_ct_starts_it() -> None:
    s, _ = run([finding(0, "fdg_pet"), le(1, 12)])
    assert "antiresorptive-start" not in items(s)
    s, _ = run([finding(2, "ct")], s)
    start = items(s)["antiresorptive-start"]
    assert start.status == "recommended" and "confirmée" in start.text_fr


def test_IMG_ISOLATED_the_planner_and_scoring_share_the_unconfirmed_modalities() -> None:
    assert r.METABOLIC_MODALITIES == scoring_rules.METABOLIC_MODALITIES


# ---- item 5: Tableau 1, above the recommended levels -------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "status", "severity", "ordered"),
    [
        (70.0, "recommended", "info", True),  # 30 to 70: recommended levels, monthly maintenance
        (70.1, "warning", "warning", False),  # above: no supplement
        (150.0, "warning", "warning", False),
        (150.1, "warning", "critical", False),  # > 150: possible intoxication
        (200.0, "warning", "critical", False),
    ],
)
def test_SYS_VITD_CORR_no_cholecalciferol_above_the_recommended_levels_of_tableau_1(
    value: float, status: str, severity: str, ordered: bool
) -> None:
    s, _ = run([*BASE, lab(4, "vitamin_d_25oh", value, "ng/mL"), DENTAL_OK, calcium(6, 2.4)])
    item = items(s)["vitamin-d"]
    assert (item.status, item.severity, bool(item.orders)) == (status, severity, ordered)
    assert ("cholecalciferol" in orders(items(s))) is ordered
    assert ("intoxication" in item.text_fr) is (severity == "critical")


# ---- item 6: denosumab is never stopped silently -----------------------------------------------------------------
def test_SYS_DENO_STOP_on_denosumab_at_crcl_below_30_names_adynamic_bone_and_rebound_without_an_order() -> None:
    s, _ = run(
        [
            met(),
            le(1, 12),
            lab(2, "creatinine_clearance", 25.0, "mL/min"),
            oligo(3, "multi_metastatic"),
            *ready(),
            drug(10, "denosumab", "started", "2026-09-01"),
        ]
    )
    item = items(s)["antiresorptive"]
    assert item.rule_id == "SYS-DENO" and item.orders == [] and "denosumab" not in orders(items(s))
    assert "os adynamique" in item.text_fr and "effet rebond" in item.text_fr and "SYS-DENO-STOP" in item.text_fr
    assert "ne pas l'interrompre sans cet avis" in item.text_fr and "rebond" in item.title
    assert "L1249-1255" in item.citation.lines
    assert "M05BX04" not in fhir_codes(s)


def test_SYS_DENO_STOP_an_onj_block_on_denosumab_names_the_rebound() -> None:
    events = [*BASE, *ready(), drug(10, "denosumab", "started", "2026-06-01")]
    jaw = dental(20, action="jaw_bone_exposure", exposure_weeks=10, craniofacial_irradiation=False, on="2026-10-30")
    s, _ = run([*events, jaw])
    item = items(s)["antiresorptive"]
    assert item.rule_id == "SYS-ONJ" and item.orders == [] and "effet rebond" in item.text_fr


# ---- item 9: exactly 6 weeks, as in scoring ----------------------------------------------------------------------
def test_SURG_LE_six_weeks_and_remaining_time_are_the_same_in_scoring_and_the_planner() -> None:
    """Issue 18: both read the shared clinical context (shared/clinical/life_expectancy.py); the planner's remaining
    estimate is the shared one."""
    assert pytest.approx(42, abs=1e-12) == shared_le.SIX_WEEKS_IN_MONTHS * shared_le.DAYS_PER_MONTH
    for estimate, days in ((3.5, 85), (12, 80), (1.0, 0.5)):
        now = T0 + timedelta(days=days)
        s, _ = run([met(), le(0, estimate)], now=now)
        assert life_expectancy(s, r.AsOf(now=now)).remaining == shared_le.remaining_months(estimate, T0, now)


@pytest.mark.parametrize(("months", "urgent"), [(1.45, True), (1.3, False)])  # 6 weeks = 1.38 months
def test_SURG_LE_no_urgent_procedure_below_exactly_6_weeks_remaining(months: float, urgent: bool) -> None:
    s, _ = run([met(), le(1, months), sre(2, "pathological_fracture")])
    onco = items(s).get("oncology")
    assert (onco is not None and onco.severity == "warning") is urgent


# ---- item 12: calcium advice on a measured calcium; citations -----------------------------------------------------
def test_SYS_VITD_CORR_calcium_intake_advice_needs_a_recent_corrected_calcium() -> None:
    s, _ = run([*BASE, lab(4, "vitamin_d_25oh", 15.0, "ng/mL")])
    item = items(s)["vitamin-d"]
    assert [o.count for o in item.orders] == [8, None]
    assert "mg/j" not in item.text_fr and "Calcémie corrigée à doser" in item.text_fr
    assert item.missing == ["corrected calcium measured within 30 days"]
    s, _ = run([calcium(-40 * DAY, 2.4)], s)  # 40 days old: to measure again
    assert "mg/j" not in items(s)["vitamin-d"].text_fr
    s, _ = run([calcium(10, 2.4)], s)
    item = items(s)["vitamin-d"]
    assert "1000-1500 mg/j" in item.text_fr and item.missing == []


def test_IMG_ISOLATED_and_LAB_CA_CRISIS_cite_the_lines_of_their_rule() -> None:
    assert cite("IMG-ISOLATED").lines == "L351-353, L483, L489-491"  # L493-495 is the flare passage
    assert cite("LAB-CA-CRISIS").lines == "L294-296, L300-306, L316"  # "> 3,5 mmol/L" on L304-306
    assert RULESET_VERSION == "aura-2023.3"
