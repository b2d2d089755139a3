"""Issue 18, the local-treatment planner through its aggregate (pure): each dangerous or wrong item of the review,
as a patient timeline, asserting the plan and the recommendations it publishes. Each failed before the fix."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.clinical import Recommendation
from contracts.clock import ClockTick
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentPlan, LocalTreatmentRequest
from contracts.plan import PlanItem
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import apply_event
from services.radiotherapy_planner.facts import LocalState
from shared.clinical.life_expectancy import DAYS_PER_MONTH
from tests.unit.test_local_plan_domain import lab, score

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
TODAY = NOW.date()


def env(at: datetime = NOW, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "patient_id": "pt-18",
        "occurred_at": at.isoformat(),
        "recorded_at": at.isoformat(),
        "source": "test",
        **fields,
    }


def vertebra(lesion: str = "t8", level: str = "T8", at: datetime = NOW, **fields: Any) -> ImagingFinding:
    return ImagingFinding.model_validate(
        env(at, lesion_id=lesion, skeletal_site="spine", vertebral_level=level, modality="mri", **fields)
    )


def femur(lesion: str = "fem", at: datetime = NOW, **fields: Any) -> ImagingFinding:
    return ImagingFinding.model_validate(
        env(at, lesion_id=lesion, skeletal_site="femur_shaft", modality="ct", status="confirmed", **fields)
    )


def request(lesion: str, modality: str, at: datetime = NOW, **fields: Any) -> LocalTreatmentRequest:
    return LocalTreatmentRequest.model_validate(
        env(at, request_id=f"req-{lesion}-{modality}", lesion_id=lesion, modality=modality, **fields)
    )


def treatment(at: datetime = NOW, **t: Any) -> TreatmentEvent:
    return TreatmentEvent.model_validate(env(at, treatment=t))


def course(on: date, level: str = "T8", dmax: float | None = 30.0, fx: int = 10, **kw: Any) -> TreatmentEvent:
    return treatment(
        kind="radiotherapy",
        site="spine",
        vertebral_level=level,
        total_dose_gy=30.0,
        fractions=fx,
        on=on.isoformat(),
        end_on=(on + timedelta(days=12)).isoformat(),
        cord_dmax_gy=dmax,
        **kw,
    )


def drug(name: str, on: date, **fields: Any) -> TreatmentEvent:
    return treatment(kind="drug_administration", drug=name, on=on.isoformat(), **fields)


def run(events: list[Message]) -> tuple[LocalState, list[Message]]:
    memo.clear()
    s, out = LocalState(), []
    for e in events:
        s, o = apply_event(s, e)
        out += o
    return s, out


def plan_items(out: list[Message]) -> list[PlanItem]:
    plans = [o for o in out if isinstance(o, LocalTreatmentPlan)]
    return [] if not plans else [i for sec in plans[-1].sections for i in sec.items]


def one(out: list[Message], rule_id: str, key_part: str = "") -> PlanItem:
    found = [i for i in plan_items(out) if i.rule_id == rule_id and key_part in i.key]
    assert len(found) == 1, [(i.rule_id, i.key) for i in plan_items(out)]
    return found[0]


def active(out: list[Message], rule_id: str) -> list[Recommendation]:
    recs = [o for o in out if isinstance(o, Recommendation) and o.rule_id == rule_id]
    gone = {sid for o in out if isinstance(o, Recommendation) and o.status == "withdrawn" for sid in o.supersedes}
    return [r for r in recs if r.status == "active" and r.event_id not in gone]


# ---- 18.1 a second irradiation is never judged as a first (RT-REIRR, L2076-2095) -----------------------------------
@pytest.mark.parametrize("modality", ["sbrt", "palliative_rt"])
def test_a_course_on_an_irradiated_segment_is_a_reirradiation_whatever_the_modality(modality: str) -> None:
    extra: dict[str, Any] = (
        {"total_dose_gy": 27.0, "fractions": 3} if modality == "sbrt" else {"total_dose_gy": 20.0, "fractions": 5}
    )
    _, out = run(
        [
            vertebra(),
            course(date(2025, 1, 10)),  # recorded earlier course on T8: cord Dmax 30 Gy in 10 fx
            request("t8", modality, planned_cord_dmax_gy=9.0, planned_on=TODAY + timedelta(days=7), **extra),
        ]
    )
    reirr = one(out, "RT-REIRR")
    assert "Irradiation 1 du 10/01/2025" in reirr.text_fr and "EQD2" in reirr.text_fr
    assert not [i for i in plan_items(out) if "Première irradiation" in i.text_fr]
    assert not [i for i in plan_items(out) if i.rule_id == "RT-CORD-DMAX"]


def test_sbrt_previously_irradiated_indication_needs_the_cord_dose_condition() -> None:
    """L1617-1619: case (1) is an irradiated territory whose cord dose rules out a conventional course."""
    base = [vertebra(), course(date(2025, 1, 10))]
    _, out = run([*base, request("t8", "sbrt", planned_on=TODAY + timedelta(days=7))])
    ind = one(out, "RT-SBRT-IND")
    assert ind.status == "cannot_decide" and "Indication reconnue" not in ind.text_fr
    assert any("rules out conventional radiotherapy" in m for m in ind.missing)
    _, out = run(
        [*base, request("t8", "sbrt", planned_on=TODAY + timedelta(days=7), cord_dose_excludes_conventional=True)]
    )
    assert one(out, "RT-SBRT-IND").status == "recommended"


# ---- 18.2 recorded and declared courses, their union ---------------------------------------------------------------
def test_reirradiation_counts_recorded_courses_the_request_left_out_and_the_interval_from_the_newest() -> None:
    _, out = run(
        [
            vertebra(),
            course(date(2026, 8, 1), dmax=20.0, fx=5),  # recorded, newer, not declared on the request
            request(
                "t8",
                "reirradiation",
                planned_cord_dmax_gy=9.0,
                total_dose_gy=27.0,
                fractions=3,
                planned_on=TODAY + timedelta(days=7),
                previous_courses=[{"on": "2024-02-01", "end_on": "2024-02-14", "fractions": 10, "cord_dmax_gy": 30.0}],
            ),
        ]
    )
    reirr = one(out, "RT-REIRR")
    assert "Irradiation 1 du 01/02/2024" in reirr.text_fr and "Irradiation 2 du 01/08/2026" in reirr.text_fr
    assert "absente de la demande" in reirr.text_fr
    # the interval counts from the newest course (ended 13/08/2026): under 5 months before 27/11/2026
    interval = next(i for i in reirr.inputs if i.name == "criterion:interval")
    assert interval.unit == "fail" and interval.value == f"{(TODAY + timedelta(days=7) - date(2026, 8, 13)).days} jours"
    assert any("on this segment" in m for m in reirr.missing)


def test_a_course_both_recorded_and_declared_counts_once() -> None:
    _, out = run(
        [
            vertebra(),
            course(date(2024, 2, 1), dmax=None),
            request(
                "t8",
                "reirradiation",
                planned_cord_dmax_gy=9.0,
                total_dose_gy=27.0,
                fractions=3,
                planned_on=TODAY + timedelta(days=7),
                previous_courses=[{"on": "2024-02-01", "fractions": 10, "cord_dmax_gy": 30.0}],
            ),
        ]
    )
    reirr = one(out, "RT-REIRR")
    assert "Irradiation 2" not in reirr.text_fr and "Dmax 30 Gy en 10 fractions" in reirr.text_fr


# ---- 18.3 drug identity, whatever the spelling ---------------------------------------------------------------------
def cement_ready_timeline(antiplatelet: str) -> list[Message]:
    return [
        vertebra(pathological_fracture=False),
        score("sins", "t8", 4, "stable"),
        ClinicalAssessment.model_validate(
            env(
                pain={"resistant_to_analgesics": True, "intensity": "functional"},
                opioid_complications=False,
                diffuse_pain=False,
                active_infection=False,
                cement_allergy=False,
                severe_coagulation_disorder=False,
                radiculopathy=False,
            )
        ),
        lab("platelets", 180.0, "G/L"),
        lab("prothrombin_pct", 90.0, "%"),
        drug(antiplatelet, TODAY - timedelta(days=1), ongoing=False),
        request("t8", "cementoplasty", planned_on=TODAY + timedelta(days=1)),
    ]


@pytest.mark.parametrize("name", ["Clopidogrel", "PLAVIX", "clopidogrel 75 mg", "Kardégic 300 mg", "xyzagrel"])
def test_no_cementoplasty_prerequisites_met_with_an_antiplatelet_taken_yesterday_whatever_its_spelling(
    name: str,
) -> None:
    _, out = run(cement_ready_timeline(name))
    cement = one(out, "IR-CEMENT")
    assert cement.status != "recommended" and "prérequis remplis" not in cement.title
    assert [c for c in cement.checks if c.status != "done"]


def test_the_cementoplasty_timeline_is_ready_without_the_drug() -> None:
    """The control: the same timeline, the antiplatelet stopped 10 days before, is ready."""
    events = cement_ready_timeline("clopidogrel")
    events[5] = drug("clopidogrel", TODAY - timedelta(days=10), ongoing=False)
    _, out = run(events)
    assert one(out, "IR-CEMENT").status == "recommended"


@pytest.mark.parametrize(
    ("name", "atc", "rt_class_words"),
    [
        ("Gemcitabine", None, "radiothérapie possible à partir du"),
        ("GEMZAR", None, "radiothérapie possible à partir du"),
        ("tislelizumab", None, "délai de précaution"),  # another anti-PD-1 (18.6)
        ("new-mab", "L01FF09", "délai de précaution"),  # placed by its ATC code
        ("unheardofnib", None, "médicament non identifié"),  # never "no interaction"
    ],
)
def test_rt_drug_items_by_identity(name: str, atc: str | None, rt_class_words: str) -> None:
    fields = {"atc_code": atc} if atc else {}
    _, out = run(
        [
            vertebra(),
            drug(name, TODAY - timedelta(days=7), **fields),
            request("t8", "palliative_rt", planned_on=TODAY + timedelta(days=2)),
        ]
    )
    item = one(out, "RT-DRUG")
    assert rt_class_words in item.text_fr
    assert item.severity == "warning"


# ---- 18.4 what is left of the life expectancy (SURG-LE L2804-2806, RT-SBRT-CI L1631-1632) --------------------------
def test_surgery_on_a_fracture_with_16_days_left_is_no_surgery() -> None:
    estimated = NOW - timedelta(days=2 * DAYS_PER_MONTH - 16)  # 2 months estimated, ~16 days left now
    _, out = run(
        [
            ClinicalAssessment.model_validate(env(estimated, life_expectancy_months=2.0)),
            femur(pathological_fracture=True),
        ]
    )
    surgery = one(out, "SURG-LE", ":surgery")
    assert surgery.status == "not_indicated" and "ostéosynthèse" not in surgery.text_fr
    remaining = next(i for i in surgery.inputs if i.name == "life_expectancy_remaining")
    assert remaining.value == pytest.approx(0.5, abs=0.05)


def test_sbrt_with_a_month_left_has_the_three_month_contraindication() -> None:
    estimated = NOW - timedelta(days=60)  # 3 months estimated 60 days ago: ~1 month left
    _, out = run(
        [
            ClinicalAssessment.model_validate(env(estimated, life_expectancy_months=3.0)),
            vertebra(),
            score("sins", "t8", 4, "stable"),
            request("t8", "sbrt", planned_on=TODAY + timedelta(days=7), total_dose_gy=27.0, fractions=3),
        ]
    )
    ci = one(out, "RT-SBRT-CI")
    assert ci.status == "not_indicated" and "espérance de vie inférieure à 3 mois" in ci.title


def test_a_cord_compression_with_five_weeks_left_is_not_sent_to_urgent_surgery() -> None:
    estimated = NOW - timedelta(days=30)  # 2 months estimated 30 days ago: ~31 days left
    _, out = run(
        [
            ClinicalAssessment.model_validate(
                env(estimated, life_expectancy_months=2.0, surgical_opinion={"operable": True, "on": "2026-10-21"})
            ),
            vertebra(cord_compression=True, epidural_extension=True),
        ]
    )
    mscc = one(out, "RT-MSCC")
    assert mscc.severity == "critical" and "Chirurgie de décompression" not in mscc.text_fr


# ---- 18.7 a treatment event entered in error is withdrawn ----------------------------------------------------------
@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_an_rt_course_entered_in_error_brings_back_the_cord_compression_emergency(order: tuple[int, ...]) -> None:
    wrong = course(TODAY, lesion_id="t8")
    error = TreatmentEvent.model_validate(
        {
            **wrong.model_dump(mode="json"),
            "event_id": str(uuid.uuid4()),
            "record_status": "entered-in-error",
            "corrects": str(wrong.event_id),
        }
    )
    events: list[Message] = [vertebra(cord_compression=True), wrong, error]
    _, out = run([events[i] for i in order])
    mscc = one(out, "RT-MSCC")
    assert mscc.severity == "critical" and mscc.status == "recommended"
    # what notification last heard of RT-MSCC is the emergency (re-issued after the "irradiated" one, with its cause)
    last = [o for o in out if isinstance(o, Recommendation) and o.rule_id == "RT-MSCC"][-1]
    assert last.status == "active" and last.severity == "critical"


def test_an_amended_course_replaces_the_one_it_corrects() -> None:
    wrong = course(date(2026, 10, 1), dmax=45.0)
    amended = TreatmentEvent.model_validate(
        {
            **course(date(2026, 10, 1), dmax=20.0).model_dump(mode="json"),
            "record_status": "amended",
            "corrects": str(wrong.event_id),
        }
    )
    _, out = run(
        [
            vertebra(),
            wrong,
            amended,
            request(
                "t8",
                "reirradiation",
                planned_cord_dmax_gy=9.0,
                fractions=3,
                total_dose_gy=27.0,
                planned_on=TODAY + timedelta(days=7),
            ),
        ]
    )
    reirr = one(out, "RT-REIRR")
    assert "Dmax 20 Gy" in reirr.text_fr and "Dmax 45" not in reirr.text_fr


def test_a_treatment_correction_must_name_what_it_corrects() -> None:
    with pytest.raises(ValueError, match="corrects is required"):
        TreatmentEvent.model_validate(
            env(
                record_status="amended",
                treatment={"kind": "surgery", "site": "femur", "procedure": "other", "on": "2026-01-01"},
            )
        )


# ---- 18.10 one verdict per lesion and technique --------------------------------------------------------------------
def test_an_absolute_sbrt_contraindication_wins_over_the_indication() -> None:
    _, out = run(
        [
            vertebra(cord_compression=True),  # unoperated compression: absolute contraindication
            score("oligometastatic", "patient", None, "oligometastatic"),
            request(
                "t8",
                "sbrt",
                intent="ablative_oligometastatic",
                adjacent_vertebrae=1,
                planned_on=TODAY + timedelta(days=7),
            ),
        ]
    )
    ind = one(out, "RT-SBRT-IND")
    assert ind.status == "not_indicated" and "Indication reconnue" not in ind.text_fr
    assert "contre-indication absolue" in ind.text_fr
    assert one(out, "RT-SBRT-CI").status == "not_indicated"


# ---- 18.5 cementoplasty: well-controlled pain, inoperable alone ----------------------------------------------------
def test_cementoplasty_with_well_controlled_pain_is_not_indicated_even_if_inoperable() -> None:
    events = cement_ready_timeline("clopidogrel")
    events[2] = ClinicalAssessment.model_validate(
        env(
            pain={"resistant_to_analgesics": False, "intensity": "mild"},
            opioid_complications=False,
            surgical_opinion={"operable": False, "on": TODAY.isoformat()},
        )
    )
    events[5] = drug("clopidogrel", TODAY - timedelta(days=10), ongoing=False)
    _, out = run(events)
    cement = one(out, "IR-CEMENT")
    assert cement.status == "not_indicated" and "non-indication" in cement.text_fr


# ---- the planner's own clock: currency windows and life-expectancy thresholds pass without another event ---------
def tick(s: LocalState) -> ClockTick:
    assert s.next_due is not None
    return ClockTick.model_validate(
        env(
            s.next_due,
            source="radiotherapy-planner",
            service="radiotherapy-planner",
            due_at=s.next_due.isoformat(),
        )
    )


def test_a_cord_compression_ages_out_of_its_window_on_the_planners_own_clock() -> None:
    s, out = run([vertebra(cord_compression=True)])
    assert one(out, "RT-MSCC").severity == "critical"
    assert s.next_due == NOW + timedelta(days=42, seconds=1)  # COMPRESSION_CURRENT after the onset
    s, more = apply_event(s, tick(s))
    mscc = one(more, "RT-MSCC")
    assert mscc.severity == "warning" and "donnée non actuelle" in mscc.title


def test_the_remaining_life_expectancy_crossing_3_months_contraindicates_sbrt_on_time() -> None:
    events: list[Message] = [
        ClinicalAssessment.model_validate(env(life_expectancy_months=4.0)),
        vertebra(),
        score("sins", "t8", 4, "stable"),
        request("t8", "sbrt", planned_on=TODAY + timedelta(days=60), total_dose_gy=27.0, fractions=3),
    ]
    s, out = run(events)
    assert "espérance de vie" not in one(out, "RT-SBRT-CI").title
    assert s.next_due == NOW + timedelta(days=DAYS_PER_MONTH, seconds=1)  # 4 -> 3 months left
    s, more = apply_event(s, tick(s))
    ci = one(more, "RT-SBRT-CI")
    assert ci.status == "not_indicated" and "espérance de vie inférieure à 3 mois" in ci.title


# ---- L746-748: nadir and anti-angiogenics named before a cementoplasty ---------------------------------------------
def test_cementoplasty_names_the_nadir_and_the_antiangiogenic() -> None:
    events = cement_ready_timeline("clopidogrel")
    events[5] = drug("clopidogrel", TODAY - timedelta(days=10), ongoing=False)
    events.insert(5, drug("carboplatine", TODAY - timedelta(days=6)))
    events.insert(5, drug("Avastin", TODAY - timedelta(days=6)))
    _, out = run(events)
    cement = one(out, "IR-CEMENT")
    assert "Vigilance" in cement.text_fr and "nadir" in cement.text_fr and "carboplatin" in cement.text_fr
    assert "anti-angiogénique (bevacizumab)" in cement.text_fr
