"""The local-treatment plan built from requests (pure aggregate): SBRT on an unstable vertebra, re-irradiation,
drug windows, cementoplasty haemostasis, palliative RT with the scoring service's Mirels."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.clinical import NormalisedLab, Recommendation, Score
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentPlan, LocalTreatmentRequest
from contracts.plan import PlanItem
from contracts.rules import RULESET_VERSION, cite
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import LocalState
from shared.clinical.dates import add_months

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
TODAY = NOW.date()


def env(at: datetime = NOW, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "patient_id": "pt-plan",
        "occurred_at": at.isoformat(),
        "recorded_at": at.isoformat(),
        "source": "test",
        **fields,
    }


def vertebra(lesion: str = "t8", level: str = "T8", **fields: Any) -> ImagingFinding:
    return ImagingFinding.model_validate(
        env(lesion_id=lesion, skeletal_site="spine", vertebral_level=level, modality="mri", **fields)
    )


def request(lesion: str, modality: str, **fields: Any) -> LocalTreatmentRequest:
    return LocalTreatmentRequest.model_validate(
        env(request_id=f"req-{lesion}-{modality}", lesion_id=lesion, modality=modality, **fields)
    )


def score(kind: str, subject: str, total: int | None, band: str | None) -> Score:
    return Score.model_validate(
        env(
            source="scoring",
            score=kind,
            subject=subject,
            total=total,
            complete=total is not None,
            band=band,
            components=[],
            rule_ids=["SCORE-SINS"],
            ruleset_version=RULESET_VERSION,
            text_fr="x",
            citation=cite("SCORE-SINS").model_dump(),
        )
    )


def drug(name: str, on: date, **fields: Any) -> TreatmentEvent:
    return TreatmentEvent.model_validate(
        env(treatment={"kind": "drug_administration", "drug": name, "on": on.isoformat(), **fields})
    )


def lab(analyte: str, value: float, unit: str, at: datetime = NOW) -> NormalisedLab:
    return NormalisedLab.model_validate(
        env(at, source="lab-normalisation", analyte=analyte, result_id=f"{analyte}-1", value=value, unit=unit)
    )


def run(events: list[Message]) -> tuple[LocalState, list[Message]]:
    s, out = LocalState(), []
    for e in events:
        s, o = apply_event(s, e)
        out += o
    return s, out


def items(out: list[Message]) -> dict[str, PlanItem]:
    plan = [o for o in out if isinstance(o, LocalTreatmentPlan)][-1]
    return {i.key: i for sec in plan.sections for i in sec.items}


def test_rt_sbrt_ci_unstable_vertebra_refused_with_the_reason_critical() -> None:
    _, out = run(
        [
            ClinicalAssessment.model_validate(env(life_expectancy_months=12)),
            vertebra(),
            score("sins", "t8", 14, "unstable"),
            request("t8", "sbrt", intent="ablative_oligometastatic", total_dose_gy=27, fractions=3),
        ]
    )
    ci = items(out)["t8:sbrt-ci"]
    assert (ci.status, ci.severity) == ("not_indicated", "critical")
    assert "instabilité vertébrale" in ci.title and "SINS unstable" in ci.title
    assert any(i.name == "sins_band" and i.value == "unstable" for i in ci.inputs)
    recs = [o for o in out if isinstance(o, Recommendation) and o.rule_id == "RT-SBRT-CI"]
    assert recs[-1].severity == "critical"


def _reirr(months_since: int) -> PlanItem:
    first = add_months(TODAY, -months_since)
    _, out = run(
        [
            vertebra(),
            request(
                "t8",
                "reirradiation",
                total_dose_gy=27,
                fractions=3,
                planned_cord_dmax_gy=9.0,
                planned_on=TODAY.isoformat(),
                previous_courses=[
                    {"on": first.isoformat(), "end_on": first.isoformat(), "fractions": 10, "cord_dmax_gy": 30.0}
                ],
            ),
        ]
    )
    return items(out)["t8:reirr"]


def test_rt_reirr_7_months_passes_the_four_criteria_4_months_fails_on_interval() -> None:
    ok = _reirr(7)
    assert ok.severity == "warning" and "4 critères respectés" in ok.title
    assert "37.50 Gy (α/β = 2 Gy)" in ok.text_fr and "11.25 Gy" in ok.text_fr and "sûr" not in ok.text_fr
    assert "RCP-OOS" in ok.text_fr
    bad = _reirr(4)
    assert "critère non respecté" in bad.title
    assert "intervalle depuis la dernière irradiation" in bad.text_fr.split("Critère(s) non respecté(s) :")[1]
    verdicts = {i.name: i.unit for i in bad.inputs if i.name.startswith("criterion:")}
    assert verdicts == {
        "criterion:cumulative_cord_eqd2": "pass",
        "criterion:new_course_cord_eqd2": "pass",
        "criterion:eqd2_ratio": "pass",
        "criterion:interval": "fail",
    }


def test_rt_drug_gemcitabine_10_days_ago_delays_palliative_rt() -> None:
    _, out = run(
        [
            vertebra("hum", "T1"),
            drug("gemcitabine", TODAY - timedelta(days=10)),
            drug("carboplatin", TODAY - timedelta(days=10)),
            request("hum", "palliative_rt", planned_on=TODAY.isoformat()),
        ]
    )
    it = items(out)
    gem = it["hum:drug:gemcitabine"]
    earliest = TODAY + timedelta(days=18)
    assert gem.status == "to_do" and f"{earliest:%d/%m/%Y}" in gem.text_fr and "retarde" in gem.text_fr
    assert "pas de fenêtre" in it["hum:drug:carboplatin"].text_fr


def test_ir_cement_low_platelets_on_clopidogrel_not_ready_says_what_to_stop_and_when() -> None:
    planned = TODAY + timedelta(days=7)
    _, out = run(
        [
            ClinicalAssessment.model_validate(
                env(pain={"resistant_to_analgesics": True, "intensity": "functional"}, life_expectancy_months=8)
            ),
            vertebra("l3", "L3", pathological_fracture=False),
            lab("platelets", 42.0, "G/L"),
            lab("prothrombin_pct", 80.0, "%"),
            drug("clopidogrel", TODAY, ongoing=True, daily_dose_mg=75),
            request("l3", "cementoplasty", planned_on=planned.isoformat()),
        ]
    )
    cement = items(out)["l3:cement"]
    assert cement.status == "to_do" and "pas prête" in cement.title
    checks = {c.name: c for c in cement.checks}
    assert checks["platelets"].status == "to_do" and "42" in checks["platelets"].detail_fr
    assert checks["clopidogrel"].status == "to_do"
    assert f"{planned - timedelta(days=5):%d/%m/%Y}" in checks["clopidogrel"].detail_fr


def test_ir_cement_lab_recency_counts_hospital_days_not_utc_days() -> None:
    """IR-CEMENT: a count drawn at 00:50 in Paris (23:50 UTC the day before) is of the first of the 7 days before a
    procedure; counted in UTC days it looked 8 days old and was asked again (a failure seen between 00:00 and 02:00
    UTC)."""
    planned = date(2026, 11, 27)
    drawn = datetime(2026, 11, 19, 23, 50, tzinfo=UTC)  # 20/11 00:50 in Paris, planned day - 7
    _, out = run(
        [
            vertebra("l3", "L3", pathological_fracture=False),
            lab("platelets", 120.0, "G/L", drawn),
            lab("prothrombin_pct", 80.0, "%", drawn),
            request("l3", "cementoplasty", planned_on=planned.isoformat()),
        ]
    )
    checks = {c.name: c for c in items(out)["l3:cement"].checks}
    assert checks["platelets"].status == "done" and "120 G/L le 20/11/2026" in checks["platelets"].detail_fr
    assert checks["prothrombin"].status == "done" and "le 20/11/2026" in checks["prothrombin"].detail_fr
    # one hour earlier it is 23:50 in Paris on the 19th: 8 days before, to be measured again
    _, out = run(
        [
            vertebra("l3", "L3", pathological_fracture=False),
            lab("platelets", 120.0, "G/L", drawn - timedelta(hours=1)),
            request("l3", "cementoplasty", planned_on=planned.isoformat()),
        ]
    )
    checks = {c.name: c for c in items(out)["l3:cement"].checks}
    assert checks["platelets"].status == "to_do" and "trop ancien" in checks["platelets"].detail_fr


def test_rt_fracture_risk_uses_the_scoring_mirels() -> None:
    femur = ImagingFinding.model_validate(
        env(lesion_id="fem", skeletal_site="femur_shaft", modality="xray", lesion_type="lytic")
    )
    _, out = run([femur, score("mirels", "fem", 9, "≥9"), request("fem", "palliative_rt")])
    scheme = items(out)["fem:rt-scheme"]
    assert scheme.rule_id == "RT-FRACTURE-RISK" and "30 Gy en 10" in scheme.title
    assert "indication chirurgicale" in scheme.text_fr


def test_rt_fract_pall_single_fraction_under_corticosteroids() -> None:
    rib = ImagingFinding.model_validate(env(lesion_id="rib", skeletal_site="rib", modality="ct", lesion_type="mixed"))
    _, out = run(
        [
            ClinicalAssessment.model_validate(env(life_expectancy_months=2)),
            rib,
            score("mirels", "rib", 6, "≤7"),
            drug("dexamethasone", TODAY - timedelta(days=1), ongoing=True),
            request("rib", "palliative_rt"),
        ]
    )
    scheme = items(out)["rib:rt-scheme"]
    assert "8 Gy en 1 fraction" in scheme.title and "corticothérapie de 48 à 72 h" in scheme.text_fr
    assert "déjà une corticothérapie (dexamethasone)" in scheme.text_fr


def test_a_cancelled_request_withdraws_its_decisions_and_other_analytes_change_nothing() -> None:
    req = request("t8", "sbrt", intent="ablative_oligometastatic", total_dose_gy=27, fractions=3)
    s, out = run([vertebra(), score("sins", "t8", 14, "unstable"), req])
    ci = [o for o in out if isinstance(o, Recommendation) and o.rule_id == "RT-SBRT-CI"][-1]
    cancel = LocalTreatmentRequest.model_validate(
        {**req.model_dump(mode="json"), "event_id": str(uuid.uuid4()), "status": "cancelled"}
    )
    s2, out2 = apply_event(s, cancel)
    withdrawn = {i for o in out2 if isinstance(o, Recommendation) and o.status == "withdrawn" for i in o.supersedes}
    assert ci.event_id in withdrawn
    assert not any(i.key.startswith("t8:sbrt") for i in items(out2).values())
    calcium = lab("corrected_calcium", 2.4, "mmol/L")
    assert apply_event(s2, calcium) == (s2, [])
