"""SYS-* rules (tables from the guideline) and plan timelines of the systemic-treatment planner (pure)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.clinical import NormalisedLab, Recommendation, Score, SkeletalEvent
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.plan import PlanItem, TreatmentPlan
from contracts.rules import RULESET_VERSION, cite
from services.lab_normalisation.rules import to_canonical
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, build_plan, current_plan
from services.systemic_planner.fhir import medication_requests


@pytest.mark.parametrize(
    ("sre", "met", "le", "on_ar", "outcome", "trigger"),
    [
        (True, False, None, False, "start", "sre"),  # after an SRE: whatever the survival
        (True, True, 1.0, False, "start", "sre"),
        (False, True, 3.1, False, "start", "bone_metastasis"),
        (False, True, 3.0, False, "not_indicated", "bone_metastasis"),  # > 3 months, strictly
        (False, True, None, False, "insufficient_data", "bone_metastasis"),
        (False, False, 12.0, False, "no_trigger", None),
        (True, True, 12.0, True, "already_treated", None),
    ],
)
def test_antiresorptive_start_table(
    sre: bool, met: bool, le: float | None, on_ar: bool, outcome: str, trigger: str | None
) -> None:
    d = r.antiresorptive_start(has_sre=sre, bone_metastasis=met, life_expectancy_months=le, on_antiresorptive=on_ar)
    assert (d.outcome, d.trigger) == (outcome, trigger)


# Tableau 2 (L1153-1182), half-open bands
@pytest.mark.parametrize(
    ("crcl", "dose"),
    [
        (120, 4.0),
        (60.1, 4.0),
        (60, 3.5),
        (50, 3.5),
        (49.9, 3.3),
        (40, 3.3),
        (39.9, 3.0),
        (30, 3.0),
        (29.9, None),
        (5, None),
    ],
)
def test_zoledronic_acid_dose_bands(crcl: float, dose: float | None) -> None:
    assert r.zoledronic_acid_dose(crcl).dose_mg == dose


# SYS-VITD-CORR (L837-868): < 20 -> 8 weekly; 20 to < 30 -> 4 weekly; >= 30 maintenance; nmol/L via LAB-UNITS
@pytest.mark.parametrize(
    ("value", "unit", "loading", "severe"),
    [
        (9.9, "ng/mL", 8, True),
        (10, "ng/mL", 8, False),
        (19.9, "ng/mL", 8, False),
        (20, "ng/mL", 4, False),
        (29.9, "ng/mL", 4, False),
        (30, "ng/mL", 0, False),
        (55, "ng/mL", 0, False),
        (49.67, "nmol/L", 8, False),
        (49.92, "nmol/L", 4, False),
        (74.88, "nmol/L", 0, False),
    ],
)
def test_vitamin_d_correction(value: float, unit: str, loading: int, severe: bool) -> None:
    ng_ml, _, _ = to_canonical("vitamin_d_25oh", value, unit)
    p = r.vitamin_d_correction(round(ng_ml, 6))
    assert (p.loading_weekly_doses, p.severe_deficiency) == (loading, severe)


@pytest.mark.parametrize(
    ("oligo", "good", "drug", "schedule"),
    [
        (True, False, "zoledronic_acid", "za_3_monthly_2_years"),
        (False, False, "zoledronic_acid", "monthly"),
        (False, True, "zoledronic_acid", "za_spaced_3_monthly"),
        (False, True, "denosumab", "monthly"),
    ],
)
def test_schedule(oligo: bool, good: bool, drug: str, schedule: str) -> None:
    assert r.schedule(oligo, good, drug) == schedule


@pytest.mark.parametrize(
    ("weeks", "on_ar", "irradiated", "onj"),
    [
        (9, True, False, True),
        (8, True, False, False),
        (12, False, False, False),
        (12, True, True, False),
        (12, True, None, None),
    ],
)
def test_osteonecrosis_of_the_jaw_definition(
    weeks: float, on_ar: bool, irradiated: bool | None, onj: bool | None
) -> None:
    assert r.is_osteonecrosis_of_the_jaw(weeks, on_ar, irradiated) is onj


def test_extraction_window_is_3_weeks_to_1_month() -> None:
    assert r.extraction_window(date(2026, 1, 31)) == (date(2026, 2, 21), date(2026, 2, 28))


# ---- plan timelines ------------------------------------------------------------------------------------------
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def env(minutes: int) -> dict[str, Any]:
    at = T0 + timedelta(minutes=minutes)
    return {"event_id": uuid.uuid4(), "patient_id": "p1", "occurred_at": at, "recorded_at": at, "source": "t"}


def met(minutes: int = 0) -> ImagingFinding:
    return ImagingFinding.model_validate(
        {**env(minutes), "lesion_id": "a", "skeletal_site": "femur_shaft", "modality": "ct"}
    )


def le(minutes: int, months: float, **extra: Any) -> ClinicalAssessment:
    return ClinicalAssessment.model_validate({**env(minutes), "life_expectancy_months": months, **extra})


def lab(
    minutes: int,
    analyte: str,
    value: float | None,
    unit: str,
    missing: Sequence[str] = (),
    weighed_minutes: int | None = None,
    **extra: Any,
) -> NormalisedLab:
    """A normalised lab at T0 + minutes. A creatinine clearance carries its LAB-CRCL provenance: the weight it
    used, weighed at T0 + `weighed_minutes` (default: with the creatinine)."""
    doc = {
        **env(minutes),
        "source": "lab-normalisation",
        "analyte": analyte,
        "result_id": f"{analyte}-{minutes}",
        "value": value,
        "unit": unit,
        "missing": list(missing),
        **extra,
    }
    if analyte == "creatinine_clearance" and value is not None:
        weighed = T0 + timedelta(minutes=minutes if weighed_minutes is None else weighed_minutes)
        doc["derived_from"] = [
            {
                "event_id": uuid.uuid4(),
                "analyte": "creatinine",
                "value": 80.0,
                "unit": "umol/L",
                "occurred_at": doc["occurred_at"],
            },
            {"event_id": uuid.uuid4(), "analyte": "body_weight", "value": 70.0, "unit": "kg", "occurred_at": weighed},
        ]
    return NormalisedLab.model_validate(doc)


def oligo(minutes: int, band: str, missing: Sequence[str] = ()) -> Score:
    return Score.model_validate(
        {
            **env(minutes),
            "source": "scoring",
            "score": "oligometastatic",
            "subject": "patient",
            "total": None,
            "complete": not missing,
            "band": band,
            "components": [],
            "missing": list(missing),
            "rule_ids": ["CLASS-OLIGO"],
            "ruleset_version": RULESET_VERSION,
            "text_fr": "x",
            "citation": cite("CLASS-OLIGO").model_dump(),
        }
    )


def drug(minutes: int, name: str, action: str, on: str) -> TreatmentEvent:
    return TreatmentEvent.model_validate(
        {**env(minutes), "treatment": {"kind": "systemic_drug", "drug": name, "action": action, "on": on}}
    )


def dental(minutes: int, **t: Any) -> TreatmentEvent:
    return TreatmentEvent.model_validate({**env(minutes), "treatment": {"kind": "dental", **t}})


#: `now` of the timelines: a day after T0 unless a test says otherwise
NOW = T0 + timedelta(days=1)


def as_of(now: datetime = NOW) -> r.AsOf:
    return r.AsOf(now=now)


def run(
    events: Sequence[Message], state: SystemicState | None = None, now: datetime = NOW
) -> tuple[SystemicState, list[Message]]:
    s = state or SystemicState()
    out: list[Message] = []
    for e in events:
        s, o = apply_event(s, e, as_of(now))
        out += o
    return s, out


def items(s: SystemicState, now: datetime = NOW) -> dict[str, PlanItem]:
    return {i.key: i for i in build_plan(s, as_of(now))}


def ready(minutes: int = 50) -> list[Message]:
    """The prerequisites met: a normal vitamin D and a recent dental assessment with an orthopantomogram."""
    return [
        lab(minutes, "vitamin_d_25oh", 35.0, "ng/mL"),
        dental(minutes + 1, action="assessment", orthopantomogram=True, on="2026-10-28"),
    ]


#: 8 weeks after a loading started on T0's date (SYS-VITD-CORR): a deficiency of T0 is corrected
LOADED = T0 + timedelta(weeks=8, hours=1)
LOADED_MIN = 8 * 7 * 24 * 60


def test_missing_data_are_named_never_defaulted() -> None:
    s, _ = run([met()])
    plan = items(s)
    assert plan["antiresorptive-start"].status == "cannot_decide"
    assert plan["antiresorptive-start"].missing == ["life expectancy estimate"]
    s, _ = run([le(1, 12), lab(2, "creatinine_clearance", None, "mL/min", ["weight"])], s)
    plan = items(s)
    assert plan["antiresorptive"].status == "cannot_decide" and "weight" in plan["antiresorptive"].missing
    assert plan["vitamin-d"].missing == ["25-OH vitamin D"]
    checks = {c.name: c.status for c in plan["prerequisites"].checks}
    assert checks == {"vitamin_d": "to_do", "renal_function": "cannot_decide", "dental_assessment": "to_do"}


def test_full_plan_with_orders_and_what_would_change() -> None:
    s, out = run(
        [
            met(),
            le(1, 12),
            lab(LOADED_MIN, "creatinine_clearance", 55.0, "mL/min"),  # a current creatinine, at LOADED
            lab(3, "vitamin_d_25oh", 18.0, "ng/mL"),
            oligo(4, "multi_metastatic"),
            dental(5, action="assessment", orthopantomogram=True, on="2026-10-28"),
            drug(6, "cholecalciferol", "started", "2026-11-01"),
        ],
        now=LOADED,
    )
    plan = items(s, LOADED)
    [za] = plan["antiresorptive"].orders
    assert (za.drug, za.dose, za.unit, za.route, za.interval) == ("zoledronic_acid", 3.5, "mg", "intravenous", "P1M")
    assert "4 mg si la clairance dépasse 60" in (plan["antiresorptive"].what_would_change_fr or "")
    assert [(o.interval, o.count) for o in plan["vitamin-d"].orders] == [("P1M", None)]  # loading given already
    assert "recharge faite" in plan["vitamin-d"].title and "terminée le 27/12/2026" in plan["vitamin-d"].text_fr
    assert plan["first-infusion-paracetamol"].orders[0].interval == "PT8H"
    assert plan["prerequisites"].status == "done"  # the 8-week loading is complete
    plans = [o for o in out if isinstance(o, TreatmentPlan)]
    assert [p.version for p in plans] == list(range(1, len(plans) + 1))
    bundle: Any = medication_requests(plans[-1])
    resources: list[Any] = [e.resource for e in bundle.entry]
    assert {x.status for x in resources} == {"draft"} and {x.intent for x in resources} == {"proposal"}
    assert {x.medicationCodeableConcept.coding[0].code for x in resources} == {"M05BA08", "A11CC05", "N02BE01"}


def test_oligometastatic_gets_quarterly_zoledronic_acid_for_two_years() -> None:
    s, _ = run(
        [met(), le(1, 12), lab(2, "creatinine_clearance", 75.0, "mL/min"), oligo(3, "oligometastatic"), *ready()]
    )
    [za] = items(s)["antiresorptive"].orders
    assert (za.dose, za.interval, za.duration) == (4.0, "P3M", "P2Y")


def test_undetermined_oligometastatic_status_leaves_the_schedule_undecided() -> None:
    s, _ = run(
        [
            met(),
            le(1, 12),
            lab(2, "creatinine_clearance", 75.0, "mL/min"),
            oligo(3, "undetermined", ["primary_controlled"]),
        ]
    )
    item = items(s)["antiresorptive"]
    assert item.status == "cannot_decide" and item.orders == []
    assert "oligometastatic criterion: primary_controlled" in item.missing


def test_good_response_spaces_zoledronic_acid_not_denosumab() -> None:
    s, _ = run(
        [
            met(),
            le(1, 12, oncological_response="good"),
            lab(2, "creatinine_clearance", 75.0, "mL/min"),
            oligo(3, "multi_metastatic"),
            *ready(),
        ]
    )
    assert items(s)["antiresorptive"].orders[0].interval == "P3M"
    s, _ = run([drug(4, "denosumab", "started", "2026-11-02")], s)
    assert items(s)["antiresorptive"].orders[0].interval == "P1M"


@pytest.mark.parametrize("crcl", [25.0, 29.96])  # 29.96 is below 30: no rounding before a strict threshold
def test_sys_deno_crcl_below_30_gives_specialist_advice_and_no_prefilled_order(crcl: float) -> None:
    """SYS-DENO (L1214-1218): at CrCl < 30 an anti-resorptive may harm (adynamic bone): no pre-filled denosumab,
    nor any FHIR draft, but a specialist-advice item; the zoledronic acid order is withdrawn."""
    s, _ = run(
        [met(), le(1, 12), lab(2, "creatinine_clearance", 45.0, "mL/min"), oligo(3, "multi_metastatic"), *ready()]
    )
    assert items(s)["antiresorptive"].orders[0].drug == "zoledronic_acid"
    s, out = run([lab(60, "creatinine_clearance", crcl, "mL/min")], s)
    item = items(s)["antiresorptive"]
    assert item.rule_id == "SYS-DENO" and item.orders == [] and item.severity == "warning"
    assert "adynamique" in item.text_fr and "avis spécialisé" in item.text_fr and f"{crcl:g} mL/min" in item.title
    recs = [o for o in out if isinstance(o, Recommendation)]
    assert any(x.status == "withdrawn" for x in recs) and any(x.rule_id == "SYS-DENO" for x in recs)
    plan = current_plan(s, "p1")
    assert plan is not None and all(o.drug != "denosumab" for i in plan.items for o in i.orders)
    bundle: Any = medication_requests(plan)
    assert all(e.resource.medicationCodeableConcept.text != "denosumab" for e in bundle.entry or [])
    # already on denosumab: no renewal order either
    s, _ = run([drug(70, "denosumab", "started", "2026-10-01")], s)
    assert items(s)["antiresorptive"].orders == [] and "Ne pas renouveler" in items(s)["antiresorptive"].text_fr


def test_denosumab_stopped_gives_the_rebound_plan() -> None:
    s, _ = run(
        [
            met(),
            le(1, 12),
            lab(2, "creatinine_clearance", 75.0, "mL/min"),
            drug(3, "denosumab", "started", "2025-01-10"),
            drug(4, "denosumab", "stopped", "2026-10-30"),
        ]
    )
    item = items(s)["denosumab-stop"]
    assert item.status == "recommended" and "rebond" in item.text_fr and "CTX" in item.text_fr
    later = datetime(2026, 11, 6, 9, 0, tzinfo=UTC)
    s, _ = run([drug(5, "zoledronic_acid", "started", "2026-11-05")], s, now=later)
    assert items(s)["denosumab-stop"].status == "recommended"  # dated in the future as of NOW: not a fact yet
    assert items(s, later)["denosumab-stop"].status == "done"


def test_two_year_review_and_dental_follow_up_under_treatment() -> None:
    s, _ = run(
        [
            met(),
            le(1, 12),
            lab(2, "creatinine_clearance", 75.0, "mL/min"),
            drug(3, "zoledronic_acid", "started", "2024-10-01"),
            dental(4, action="assessment", orthopantomogram=True, on="2026-06-01"),
        ]
    )
    plan = items(s)
    assert plan["review-2-years"].severity == "warning" and "01/10/2026" in plan["review-2-years"].title
    assert {c.name: c.detail_fr for c in plan["prerequisites"].checks}["dental_review_6_months"].endswith(
        "avant le 01/12/2026."
    )


def test_extraction_delays_start_until_healed_and_cleared() -> None:
    s, _ = run([met(), le(1, 12), dental(2, action="extraction", on="2026-11-01")])
    check = {c.name: c for c in items(s)["prerequisites"].checks}["extraction_healing"]
    assert check.status == "pending" and "22/11/2026" in check.detail_fr and "01/12/2026" in check.detail_fr
    cleared = dental(3, action="assessment", orthopantomogram=True, cleared_for_antiresorptive=True, on="2026-11-20")
    s, _ = run([cleared], s)
    early = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)  # cleared, but 3 weeks have not passed (floor: 22/11)
    assert {c.name: c.status for c in items(s, early)["prerequisites"].checks}["extraction_healing"] == "pending"
    healed = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert {c.name: c.status for c in items(s, healed)["prerequisites"].checks}["extraction_healing"] == "done"


def test_hypercalcaemia_is_an_emergency_that_waives_prerequisites() -> None:
    sre = SkeletalEvent.model_validate({**env(0), "kind": "hypercalcaemia", "rule_id": "CLASS-SRE", "evidence": []})
    s, _ = run([sre])
    item = items(s)["prerequisites"]
    checks = {c.name: c.status for c in item.checks}
    assert checks == {"vitamin_d": "waived", "dental_assessment": "waived", "renal_function": "to_do"}
    assert "Urgence" in item.text_fr  # renal function is never waived: the molecule and the dose depend on it


def test_a_withdrawn_hypercalcaemia_no_longer_starts_treatment_nor_waives_prerequisites() -> None:
    """The crisis value behind the SRE was corrected (LAB-CORRECTION): scoring withdraws the SRE, and the
    emergency start it caused is withdrawn with it; issued again, it counts again."""
    sre = SkeletalEvent.model_validate({**env(0), "kind": "hypercalcaemia", "rule_id": "CLASS-SRE", "evidence": []})
    s, out = run([le(0, 12), sre])
    assert items(s)["antiresorptive-start"].status == "recommended"
    started = {r.event_id for r in out if isinstance(r, Recommendation) and r.status == "active"}
    withdrawal = SkeletalEvent.model_validate(
        {
            **env(5),
            "kind": "hypercalcaemia",
            "rule_id": "CLASS-SRE",
            "evidence": [],
            "status": "withdrawn",
            "supersedes": [sre.event_id],
        }
    )
    s, out = run([withdrawal], s)
    assert s.sres == {}
    assert "antiresorptive-start" not in items(s)  # no SRE and no known bone metastasis: nothing to start
    withdrawn = {u for r in out if isinstance(r, Recommendation) and r.status == "withdrawn" for u in r.supersedes}
    assert withdrawn and withdrawn <= started
    s, _ = run([sre.model_copy(update={"caused_by": str(uuid.uuid4())})], s)
    assert items(s)["antiresorptive-start"].status == "recommended"
    assert {c.status for c in items(s)["prerequisites"].checks} == {"waived", "to_do"}


def test_severe_vitamin_d_deficiency_warns_of_hypocalcaemia() -> None:
    s, _ = run([met(), le(1, 12), lab(2, "vitamin_d_25oh", 8.0, "ng/mL")])
    plan = items(s)
    assert plan["prerequisites"].severity == "warning" and "hypocalcémie" in plan["prerequisites"].text_fr


def test_nephrotoxicity_and_severe_renal_failure() -> None:
    s, _ = run(
        [
            met(),
            le(1, 12),
            lab(2, "creatinine_clearance", 45.0, "mL/min"),
            oligo(3, "multi_metastatic"),
            drug(4, "carboplatin", "started", "2026-10-01"),
            drug(5, "pemetrexed", "started", "2026-10-01"),
            *ready(),
        ]
    )
    assert "carboplatin, pemetrexed" in items(s)["nephrotoxicity"].title
    s, _ = run([drug(6, "osimertinib", "started", "2026-11-01"), lab(7, "creatinine_clearance", 20.0, "mL/min")], s)
    text = items(s)["severe-renal-failure"].text_fr
    assert "Réduire les doses" in text and "osimertinib" in text


def test_osteonecrosis_of_the_jaw_referral() -> None:
    s, _ = run(
        [
            met(),
            le(1, 12),
            drug(2, "zoledronic_acid", "started", "2025-01-01"),
            dental(3, action="jaw_bone_exposure", exposure_weeks=10, craniofacial_irradiation=False, on="2026-11-01"),
        ]
    )
    assert items(s)["osteonecrosis-jaw"].severity == "critical"


def test_only_differences_are_notified() -> None:
    events = [met(), le(1, 12), lab(2, "creatinine_clearance", 55.0, "mL/min"), oligo(3, "multi_metastatic"), *ready()]
    s, _ = run(events)
    s2, out = run([le(10, 14)], s)  # a new estimate that changes no decision: no alert, no new version
    assert out == [] and s2.plan_version == s.plan_version
    current = current_plan(s2, "p1")
    assert current is not None and any(i.value == 14 for x in current.items for i in x.inputs)  # fresh provenance
    _, out = run([lab(20, "creatinine_clearance", 65.0, "mL/min")], s)  # dose 3.5 -> 4 mg
    recs = [o for o in out if isinstance(o, Recommendation)]
    assert sorted(x.status for x in recs) == ["active", "withdrawn"] and "4 mg" in recs[-1].title


def test_a_rederived_value_recorded_at_the_same_time_replaces_the_held_one() -> None:
    """Regression: our services re-publish derived values in order; a tie goes to the later delivery."""
    first = lab(2, "creatinine_clearance", None, "mL/min", ["weight"])
    second = lab(2, "creatinine_clearance", 75.0, "mL/min")
    for a, b in ((first, second), (second.model_copy(update={"value": 40.0}), second)):
        s, _ = run([met(), le(1, 12), a, b])
        assert items(s)["antiresorptive"].inputs[0].value == b.value
    undetermined = oligo(3, "undetermined", ["primary_controlled"])
    resolved = undetermined.model_copy(update={"event_id": uuid.uuid4(), "band": "multi_metastatic", "missing": []})
    s, _ = run([met(), le(1, 12), lab(2, "creatinine_clearance", 75.0, "mL/min"), undetermined, resolved, *ready()])
    assert items(s)["antiresorptive"].orders[0].interval == "P1M"
