"""Issue 18, the independent review of the local-treatment planner: each way the reviewer broke a rule against the
French text, as a timeline that failed before its fix (reproductions of /tmp/review-local, issue 18 hazard log)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from contracts.base import Message
from contracts.clinical import NormalisedLab
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import build_plan
from shared.clinical.dates import add_months
from shared.clinical.irradiation import Course, eqd2, relation, segment_history, spinal_levels
from tests.unit.test_issue18_local import (
    NOW,
    TODAY,
    cement_ready_timeline,
    course,
    drug,
    env,
    one,
    plan_items,
    request,
    run,
    treatment,
    vertebra,
)

PARIS = ZoneInfo("Europe/Paris")


def dose(name: str, on: date, **t: Any) -> TreatmentEvent:
    """A drug administration (the helper `drug` takes `at` as the event's time; this one, as the dose's)."""
    body = {"kind": "drug_administration", "drug": name, "on": on.isoformat(), **t}
    return TreatmentEvent.model_validate(env(treatment=body))


def seen_at(at: datetime, **fields: Any) -> Message:
    return vertebra(at=at, **fields).model_copy(update={"recorded_at": at})


# ---- RT-MSCC currency from the newest imaging showing the compression (L1397-1402) --------------------------------
def test_a_compression_confirmed_again_on_imaging_stays_an_emergency() -> None:
    s, out = run(
        [
            seen_at(NOW - timedelta(days=60), cord_compression=True),
            vertebra(at=NOW - timedelta(days=1), cord_compression=True),
        ]
    )
    mscc = one(out, "RT-MSCC")
    assert mscc.severity == "critical" and "urgence thérapeutique" in mscc.title
    assert s.next_due == NOW - timedelta(days=1) + timedelta(days=42, seconds=1)


# ---- drugs given after a past reference date still count (RT-DRUG L1966-1970, IR-CEMENT L2636) ---------------------
def test_an_emergency_course_reads_the_drugs_given_since_the_compression() -> None:
    onset = NOW - timedelta(days=10)
    _, out = run(
        [
            seen_at(onset, cord_compression=True),
            drug("gemcitabine", TODAY - timedelta(days=3)),
            ClinicalAssessment.model_validate(env(frail=False)),
        ]
    )
    item = one(out, "RT-DRUG")
    assert "gemcitabine" in item.title and item.status == "to_do" and "retarde" in item.text_fr


def test_a_cementoplasty_asked_days_ago_reads_a_doac_taken_since() -> None:
    events = cement_ready_timeline("clopidogrel")
    events[5] = drug("Eliquis 5 mg", TODAY - timedelta(days=1), ongoing=True)
    events[6] = request("t8", "cementoplasty", at=NOW - timedelta(days=5))
    _, out = run(events)
    cement = one(out, "IR-CEMENT")
    assert cement.status != "recommended" and any(c.name == "apixaban" and c.status != "done" for c in cement.checks)


# ---- DOAC 48 h: the day's later dose counts; a dose time needs its time zone (L2636) -------------------------------
@pytest.mark.parametrize("evening_first", [True, False])
def test_two_doac_doses_the_same_day_the_later_one_counts(evening_first: bool) -> None:
    procedure = TODAY + timedelta(days=2)
    d0 = procedure - timedelta(days=2)
    morning = dose(
        "apixaban", d0, ongoing=False, at=datetime(d0.year, d0.month, d0.day, 0, 0, tzinfo=PARIS).isoformat()
    )
    evening = dose(
        "apixaban", d0, ongoing=False, at=datetime(d0.year, d0.month, d0.day, 20, 0, tzinfo=PARIS).isoformat()
    )
    events = cement_ready_timeline("clopidogrel")
    events[5:6] = [evening, morning] if evening_first else [morning, evening]
    events[-1] = request("t8", "cementoplasty", planned_on=procedure)
    _, out = run(events)
    cement = one(out, "IR-CEMENT")
    assert cement.status != "recommended"
    assert [c.status for c in cement.checks if c.name == "apixaban"] == ["to_do"]


def test_a_dose_time_without_its_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        dose("apixaban", TODAY, at="2026-11-19T08:00:00")


# ---- a combination product is never read as its first substance (IR-CEMENT L2630-2642) -----------------------------
@pytest.mark.parametrize("name", ["Acide acétylsalicylique 75 mg / clopidogrel 75 mg", "Kardégic 75 mg + Plavix 75 mg"])
def test_a_combination_with_an_antiplatelet_holds_the_cementoplasty(name: str) -> None:
    events = cement_ready_timeline("clopidogrel")
    events[5] = drug(name, TODAY - timedelta(days=1), ongoing=True, daily_dose_mg=75.0)
    _, out = run(events)
    cement = one(out, "IR-CEMENT")
    assert cement.status != "recommended" and [c for c in cement.checks if c.status == "cannot_decide"]


# ---- which segment a course concerns (RT-REIRR L2060-2064: "ou à proximité") ---------------------------------------
@pytest.mark.parametrize(
    ("level", "site", "irradiated"),
    [
        ("T5-T7", "spine", True),
        ("D6", "spine", True),  # the French notation (dorsal)
        ("t6", "spine", True),
        ("T6 ", "spine", True),
        ("T5", "spine", True),  # adjacent: its cord dose counts
        (None, "spine", True),  # a spinal course whose level is not said: counted, to check
        (None, "rachis dorsal T4-T8", True),
        ("L2", "spine", False),  # another segment
        (None, "femur", False),
    ],
)
def test_a_course_near_or_on_the_segment_makes_a_reirradiation(level: str | None, site: str, irradiated: bool) -> None:
    earlier = TODAY - timedelta(days=400)
    t: dict[str, Any] = {
        "kind": "radiotherapy",
        "site": site,
        "total_dose_gy": 30.0,
        "fractions": 10,
        "on": earlier.isoformat(),
        "cord_dmax_gy": 30.0,
    }
    if level is not None:
        t["vertebral_level"] = level
    _, out = run(
        [
            vertebra("t6", "T6"),
            treatment(**t),
            request(
                "t6",
                "sbrt",
                total_dose_gy=27.0,
                fractions=3,
                planned_cord_dmax_gy=9.0,
                planned_on=TODAY + timedelta(days=7),
            ),
        ]
    )
    rules = {i.rule_id for i in plan_items(out)}
    assert ("RT-REIRR" in rules) is irradiated
    assert ("RT-CORD-DMAX" in rules) is not irradiated


def test_an_adjacent_course_never_marks_a_compression_treated() -> None:
    _, out = run([vertebra("t6", "T6", cord_compression=True), course(TODAY, level="T5")])
    assert one(out, "RT-MSCC").severity == "critical"


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("T5-T7", {"T5", "T6", "T7"}),
        ("D6", {"T6"}),
        ("C7-T1", {"C7", "T1"}),
        ("rachis dorsal T4 à T6", {"T4", "T5", "T6"}),
        ("spine", set()),
    ],
)
def test_spinal_levels_read_free_text(text: str, levels: set[str]) -> None:
    assert set(spinal_levels(text)) == levels
    assert relation(None, text, "spine", "x", "T6", "spine") in {"same", "adjacent", "unknown", "other"}


# ---- the request's own statement of an irradiated cord (RT-SBRT-IND L1617-1619) ------------------------------------
def test_a_request_saying_the_cord_was_irradiated_is_never_a_first_irradiation() -> None:
    _, out = run(
        [
            vertebra(),
            request(
                "t8",
                "sbrt",
                total_dose_gy=27.0,
                fractions=3,
                planned_cord_dmax_gy=20.0,
                planned_on=TODAY + timedelta(days=7),
                cord_dose_excludes_conventional=True,
            ),
        ]
    )
    rules = {i.rule_id for i in plan_items(out)}
    assert "RT-REIRR" in rules and "RT-CORD-DMAX" not in rules
    assert any("earlier course" in m for m in one(out, "RT-REIRR").missing)


# ---- nothing future treats a compression; the decision time never goes back ---------------------------------------
def test_a_course_dated_after_today_does_not_treat_a_compression() -> None:
    _, out = run([vertebra(cord_compression=True), course(TODAY + timedelta(days=10), lesion_id="t8")])
    assert one(out, "RT-MSCC").severity == "critical"


def test_a_result_recorded_earlier_but_delivered_later_does_not_make_a_compression_future() -> None:
    late = NormalisedLab.model_validate(
        env(
            NOW - timedelta(hours=1),
            source="lab-normalisation",
            analyte="platelets",
            result_id="p",
            value=200.0,
            unit="G/L",
        )
    )
    _, out = run([vertebra(cord_compression=True), late])
    assert one(out, "RT-MSCC").severity == "critical"


# ---- RT-REIRR interval without the last fraction's date (L2094 "intervalle minimal de 5 mois") --------------------
def test_the_interval_is_not_passed_when_the_last_fraction_is_not_dated() -> None:
    planned = TODAY + timedelta(days=7)
    start = add_months(planned, -5)  # 10 fractions from exactly 5 months before: the last one is later
    c = treatment(
        kind="radiotherapy",
        site="spine",
        vertebral_level="T8",
        total_dose_gy=30.0,
        fractions=10,
        on=start.isoformat(),
        cord_dmax_gy=30.0,
    )
    _, out = run(
        [
            vertebra(),
            c,
            request(
                "t8", "reirradiation", total_dose_gy=27.0, fractions=3, planned_cord_dmax_gy=9.0, planned_on=planned
            ),
        ]
    )
    reirr = one(out, "RT-REIRR")
    interval = next(i for i in reirr.inputs if i.name == "criterion:interval")
    assert interval.unit == "unknown" and "4 critères respectés" not in reirr.title
    assert f"date of the last fraction of the course of {start.isoformat()}" in reirr.missing


# ---- IR-CEMENT: no date, no "ready"; the remaining life expectancy shown (L2667-2669) -------------------------------
def test_a_cementoplasty_without_a_date_is_never_ready() -> None:
    events = cement_ready_timeline("clopidogrel")
    del events[5]
    events[-1] = request("t8", "cementoplasty")
    _, out = run(events)
    cement = one(out, "IR-CEMENT")
    assert cement.status == "to_do" and "planned procedure date" in cement.missing


def test_a_cementoplasty_with_two_weeks_left_is_raised_for_the_tumour_board() -> None:
    events = cement_ready_timeline("clopidogrel")
    events[5] = ClinicalAssessment.model_validate(env(life_expectancy_months=0.5))
    _, out = run(events)
    cement = one(out, "IR-CEMENT")
    assert cement.severity == "warning" and "moins de 6 semaines" in cement.text_fr
    assert any(i.name == "life_expectancy_remaining" for i in cement.inputs)


# ---- SBRT under an absolute contraindication: its dose items are information only (L1629-1631) ----------------------
def test_the_dose_items_of_a_contraindicated_sbrt_recommend_nothing() -> None:
    _, out = run(
        [
            vertebra("t11", "T11", cord_compression=True, lesion_type="lytic", vertebral_body_involvement_fraction=0.6),
            request(
                "t11",
                "sbrt",
                total_dose_gy=27.0,
                fractions=3,
                planned_cord_dmax_gy=9.0,
                planned_on=TODAY + timedelta(days=7),
            ),
        ]
    )
    for rule in ("RT-SBRT-DOSE", "RT-CORD-DMAX", "RT-SBRT-FX"):
        item = one(out, rule)
        assert (item.status, item.severity) == ("info", "info") and "sans objet" in item.title


# ---- re-irradiation outside the spine (L2060-2064: plexus, hollow organs) ------------------------------------------
def test_a_second_course_on_the_sacrum_is_a_reirradiation_warning() -> None:
    sacrum = ImagingFinding.model_validate(
        env(lesion_id="sac", skeletal_site="sacrum", modality="ct", status="confirmed")
    )
    earlier = treatment(
        kind="radiotherapy",
        site="sacrum",
        lesion_id="sac",
        total_dose_gy=20.0,
        fractions=5,
        on=(TODAY - timedelta(days=60)).isoformat(),
    )
    _, out = run([sacrum, earlier, request("sac", "palliative_rt", planned_on=TODAY + timedelta(days=3))])
    reirr = one(out, "RT-REIRR")
    assert reirr.severity == "warning" and "plexus sacré" in reirr.text_fr


# ---- name and code disagree: unknown, whatever the list the name is in (RT-DRUG, Tableau 6) -----------------------
def test_a_drug_sent_with_another_drugs_code_is_unknown_not_compatible() -> None:
    _, out = run(
        [
            vertebra(),
            drug("pemetrexed", TODAY - timedelta(days=2), atc_code="L01DB01"),
            request("t8", "palliative_rt", planned_on=TODAY + timedelta(days=1)),
        ]
    )
    item = one(out, "RT-DRUG")
    assert item.status == "cannot_decide" and "non identifié" in item.text_fr


# ---- the same course twice: the higher EQD2 (RT-REIRR, L2082-2090) -------------------------------------------------
def test_one_course_sent_twice_keeps_the_higher_cord_eqd2() -> None:
    d = TODAY - timedelta(days=400)
    for first, second in ((10.0, 30.0), (30.0, 10.0)):
        a = Course(first, 10, d, None, 30.0, "recorded", uuid.uuid4())
        b = Course(second, 10, d, None, 30.0, "recorded", uuid.uuid4())
        [kept] = segment_history([a, b], [], TODAY).courses
        assert kept.cord_dmax_gy == 30.0 and kept.doses_disagree
    rec = Course(20.0, 10, d, None, 30.0, "recorded", uuid.uuid4())
    dec = Course(18.0, 1, d, None, None, "declared")
    [merged] = segment_history([rec], [dec], TODAY).courses
    assert merged.eqd2() == pytest.approx(eqd2(18.0, 1)) and merged.source == "both"


# ---- a correction of another kind; the memoised plan equals the plan built from nothing ----------------------------
def test_a_decompression_withdrawn_by_a_correction_of_another_kind_brings_the_emergency_back() -> None:
    surgery = treatment(
        kind="surgery", procedure="decompression", site="spine", vertebral_level="T8", on=TODAY.isoformat()
    )
    error = TreatmentEvent.model_validate(
        env(
            NOW + timedelta(minutes=5),
            record_status="entered-in-error",
            corrects=str(surgery.event_id),
            treatment={"kind": "dental", "action": "assessment", "on": TODAY.isoformat()},
        )
    )
    _, out = run([vertebra(cord_compression=True), surgery, error])
    assert one(out, "RT-MSCC").severity == "critical"


def test_a_course_amended_into_a_surgery_leaves_no_stale_memoised_item() -> None:
    c = course(TODAY - timedelta(days=400))
    amend = TreatmentEvent.model_validate(
        env(
            NOW + timedelta(minutes=1),
            record_status="amended",
            corrects=str(c.event_id),
            treatment={
                "kind": "surgery",
                "procedure": "other",
                "site": "spine",
                "vertebral_level": "T8",
                "on": (TODAY - timedelta(days=400)).isoformat(),
            },
        )
    )
    s, out = run(
        [
            vertebra(),
            c,
            request(
                "t8",
                "sbrt",
                total_dose_gy=27.0,
                fractions=3,
                planned_cord_dmax_gy=20.0,
                planned_on=TODAY + timedelta(days=7),
            ),
            amend,
        ]
    )
    incremental = sorted((i.rule_id, i.status, i.text_fr) for i in plan_items(out))
    memo.clear()
    fresh = sorted((i.rule_id, i.status, i.text_fr) for sec in build_plan(s, now=s.decided_at) for i in sec.items)
    assert incremental == fresh
    assert "RT-REIRR" not in {r for r, _, _ in fresh}
