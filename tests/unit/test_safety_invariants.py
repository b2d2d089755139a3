"""Safety invariants (issue 18), as properties over generated patient timelines: whatever the timeline, the advice
never breaks them. Each names the guideline lines it protects. They run the services' pure decisions (the same
functions the Kafka adapters call), so a rule change that breaks one fails CI with a minimal counter-example."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.clinical import NormalisedLab, Recommendation, Score
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentPlan, LocalTreatmentRequest
from contracts.plan import PlanItem
from contracts.rules import RULESET_VERSION, cite
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import COMPRESSION_CURRENT, FUTURE_TOLERANCE, apply_event
from services.radiotherapy_planner.facts import LocalState
from services.scoring.domain import ScoringState
from services.scoring.domain import apply_event as scoring_apply
from shared.clinical.life_expectancy import DAYS_PER_MONTH, SIX_WEEKS_IN_MONTHS

NOW = datetime(2026, 11, 20, 9, tzinfo=UTC)
TODAY = NOW.date()
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def env(at: datetime = NOW, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "patient_id": "pt-inv",
        "occurred_at": at.isoformat(),
        "recorded_at": max(at, NOW).isoformat(),
        "source": "test",
        **fields,
    }


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


def sins(lesion: str, total: int, band: str) -> Score:
    return Score.model_validate(
        env(
            source="scoring",
            score="sins",
            subject=lesion,
            total=total,
            complete=True,
            band=band,
            components=[],
            rule_ids=["SCORE-SINS"],
            ruleset_version=RULESET_VERSION,
            text_fr="x",
            citation=cite("SCORE-SINS").model_dump(),
        )
    )


# ---- strategies ----------------------------------------------------------------------------------------------------
life_expectancy = st.tuples(
    st.floats(min_value=0.2, max_value=24.0, allow_nan=False), st.integers(min_value=0, max_value=90)
)  # (months estimated, days ago)


def estimate(months: float, days_ago: int) -> ClinicalAssessment:
    return ClinicalAssessment.model_validate(
        env(NOW - timedelta(days=days_ago), life_expectancy_months=months, neurological_deficit=False)
    )


def remaining(months: float, days_ago: int) -> float:
    return months - days_ago / DAYS_PER_MONTH


# ---- no surgery, no urgent procedure with less than 6 weeks left (SURG-LE, L2804-2806) -----------------------------
@PROPERTY
@given(le=life_expectancy, site=st.sampled_from(["femur_shaft", "spine"]), operable=st.booleans())
def test_no_surgery_when_less_than_six_weeks_remain(le: tuple[float, int], site: str, operable: bool) -> None:
    months, days_ago = le
    lesion = ImagingFinding.model_validate(
        env(
            lesion_id="l1",
            skeletal_site=site,
            vertebral_level="T8" if site == "spine" else None,
            modality="mri",
            status="confirmed",
            pathological_fracture=site != "spine",
            cord_compression=site == "spine",
            epidural_extension=site == "spine",
        )
    )
    opinion = ClinicalAssessment.model_validate(env(surgical_opinion={"operable": operable, "on": TODAY.isoformat()}))
    request = LocalTreatmentRequest.model_validate(env(request_id="r1", lesion_id="l1", modality="surgery"))
    _, out = run([estimate(months, days_ago), opinion, lesion, request])
    left = remaining(months, days_ago)
    if left >= SIX_WEEKS_IN_MONTHS - 1e-6:
        return
    for item in plan_items(out):
        if item.rule_id == "SURG-LE" and item.key.endswith(":surgery"):
            assert item.status == "not_indicated", item
        assert "Chirurgie de décompression à réaliser en urgence" not in item.text_fr, item
        assert "ostéosynthèse" not in item.text_fr.lower() or item.status == "not_indicated", item


# ---- never a first-irradiation verdict on a segment that has had a course (RT-REIRR, L2076-2095) -------------------
course_day = st.dates(min_value=date(2018, 1, 1), max_value=TODAY + timedelta(days=30))


@PROPERTY
@given(
    recorded=st.lists(course_day, max_size=3),
    declared=st.lists(course_day, max_size=3),
    modality=st.sampled_from(["sbrt", "palliative_rt", "reirradiation"]),
    by_level=st.booleans(),
)
def test_never_a_first_irradiation_verdict_on_an_irradiated_segment(
    recorded: list[date], declared: list[date], modality: str, by_level: bool
) -> None:
    planned = TODAY + timedelta(days=14)
    finding = ImagingFinding.model_validate(
        env(lesion_id="t8", skeletal_site="spine", vertebral_level="T8", modality="mri", status="confirmed")
    )
    courses = [
        TreatmentEvent.model_validate(
            env(
                treatment={
                    "kind": "radiotherapy",
                    "site": "spine",
                    "total_dose_gy": 30.0,
                    "fractions": 10,
                    "on": d.isoformat(),
                    "cord_dmax_gy": 30.0,
                    **({"vertebral_level": "T8"} if by_level else {"lesion_id": "t8"}),
                }
            )
        )
        for d in recorded
    ]
    request = LocalTreatmentRequest.model_validate(
        env(
            request_id="r1",
            lesion_id="t8",
            modality=modality,
            total_dose_gy=27.0,
            fractions=3,
            planned_cord_dmax_gy=9.0,
            planned_on=planned.isoformat(),
            previous_courses=[{"on": d.isoformat(), "fractions": 10, "cord_dmax_gy": 30.0} for d in declared],
        )
    )
    _, out = run([finding, sins("t8", 3, "stable"), *courses, request])
    items = plan_items(out)
    earlier = [d for d in recorded + declared if d < planned]
    if earlier:
        assert not [i for i in items if "Première irradiation" in i.text_fr or i.rule_id == "RT-CORD-DMAX"], items
        reirr = [i for i in items if i.rule_id == "RT-REIRR"]
        assert len(reirr) == 1
        for d in sorted(set(earlier)):
            assert f"{d:%d/%m/%Y}" in reirr[0].text_fr  # every earlier course is counted, recorded or declared


# ---- never "prérequis remplis" while an antithrombotic window is open, whatever the spelling (L2630-2642) ----------
SPELLINGS = {
    "clopidogrel": ["clopidogrel", "Clopidogrel", "PLAVIX", "clopidogrel 75 mg"],
    "apixaban": ["apixaban", "Eliquis", "APIXABAN 5 mg"],
    "rivaroxaban": ["Xarelto", "rivaroxaban"],
    "aspirin": ["Kardégic 300 mg", "aspirin", "acide acétylsalicylique"],
    "enoxaparin": ["Lovenox", "énoxaparine"],
    "warfarin": ["warfarine", "Coumadine"],
    "unknown": ["xyzagrel", "Brand-X"],
}
#: The least whole days between the day of the last dose and the procedure's day for a stop window to be closed.
CLOSED_AFTER_DAYS = {"clopidogrel": 5, "apixaban": 3, "rivaroxaban": 3, "aspirin": 5, "enoxaparin": 1}


@PROPERTY
@given(
    drug=st.sampled_from(sorted(SPELLINGS)).flatmap(lambda d: st.tuples(st.just(d), st.sampled_from(SPELLINGS[d]))),
    days_before=st.integers(min_value=0, max_value=8),
    ongoing=st.booleans(),
)
def test_no_procedure_ready_while_an_antithrombotic_window_is_open(
    drug: tuple[str, str], days_before: int, ongoing: bool
) -> None:
    inn, spelling = drug
    procedure = TODAY + timedelta(days=2)
    dose = {"daily_dose_mg": 300.0} if inn == "aspirin" else {}
    events: list[Message] = [
        ImagingFinding.model_validate(
            env(
                lesion_id="t8",
                skeletal_site="spine",
                vertebral_level="T8",
                modality="mri",
                status="confirmed",
                pathological_fracture=False,
            )
        ),
        sins("t8", 4, "stable"),
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
        NormalisedLab.model_validate(env(source="lab", analyte="platelets", result_id="p1", value=200.0, unit="G/L")),
        NormalisedLab.model_validate(
            env(source="lab", analyte="prothrombin_pct", result_id="t1", value=95.0, unit="%")
        ),
        TreatmentEvent.model_validate(
            env(
                treatment={
                    "kind": "drug_administration",
                    "drug": spelling,
                    "on": (procedure - timedelta(days=days_before)).isoformat(),
                    "ongoing": ongoing,
                    **dose,
                }
            )
        ),
        LocalTreatmentRequest.model_validate(
            env(request_id="r1", lesion_id="t8", modality="cementoplasty", planned_on=procedure.isoformat())
        ),
    ]
    _, out = run(events)
    [cement] = [i for i in plan_items(out) if i.rule_id == "IR-CEMENT"]
    window_open = ongoing or inn not in CLOSED_AFTER_DAYS or days_before < CLOSED_AFTER_DAYS[inn]
    if window_open:
        assert cement.status != "recommended" and "prérequis remplis" not in cement.title, cement


# ---- an emergency only from current data (RT-MSCC; L2472-2480 urgency; DEVELOPERS' currency rule) ------------------
@PROPERTY
@given(onset_days=st.integers(min_value=-10, max_value=120))
def test_a_cord_compression_emergency_only_from_current_data(onset_days: int) -> None:
    onset = NOW - timedelta(days=onset_days)
    finding = ImagingFinding.model_validate(
        {
            **env(onset, lesion_id="t8", skeletal_site="spine", vertebral_level="T8", modality="mri"),
            "recorded_at": NOW.isoformat(),
            "cord_compression": True,
        }
    )
    _, out = run([finding])
    critical = [i for i in plan_items(out) if i.rule_id == "RT-MSCC" and i.severity == "critical"]
    current = onset <= NOW + FUTURE_TOLERANCE and NOW - onset <= COMPRESSION_CURRENT
    if not current:
        assert not critical


# ---- an entered-in-error record changes nothing it caused (issue 18.7) ---------------------------------------------
treatment_payload = st.one_of(
    st.builds(
        lambda d, lvl: {
            "kind": "radiotherapy",
            "site": "spine",
            "vertebral_level": lvl,
            "total_dose_gy": 8.0,
            "fractions": 1,
            "on": d.isoformat(),
        },
        st.dates(min_value=TODAY - timedelta(days=200), max_value=TODAY),
        st.sampled_from(["T8", "L1"]),
    ),
    st.builds(
        lambda d, name: {"kind": "drug_administration", "drug": name, "on": d.isoformat()},
        st.dates(min_value=TODAY - timedelta(days=30), max_value=TODAY),
        st.sampled_from(["gemcitabine", "Plavix", "apixaban", "pembrolizumab", "unknownib"]),
    ),
    st.builds(
        lambda d: {
            "kind": "surgery",
            "site": "spine",
            "procedure": "decompression",
            "on": d.isoformat(),
            "vertebral_level": "T8",
        },
        st.dates(min_value=TODAY - timedelta(days=30), max_value=TODAY),
    ),
)


def _view(out: list[Message]) -> list[tuple[str, str, str, str, str]]:
    return sorted((i.key, i.rule_id, i.status, i.severity, i.text_fr) for i in plan_items(out))


@PROPERTY
@given(payload=treatment_payload, error_first=st.booleans())
def test_a_treatment_entered_in_error_changes_nothing_it_caused(payload: dict[str, Any], error_first: bool) -> None:
    base: list[Message] = [
        ImagingFinding.model_validate(
            env(lesion_id="t8", skeletal_site="spine", vertebral_level="T8", modality="mri", cord_compression=True)
        ),
        sins("t8", 8, "potentially_unstable"),
        LocalTreatmentRequest.model_validate(
            env(
                request_id="r1",
                lesion_id="t8",
                modality="palliative_rt",
                planned_on=(TODAY + timedelta(days=3)).isoformat(),
            )
        ),
    ]
    wrong = TreatmentEvent.model_validate(env(treatment=payload))
    error = TreatmentEvent.model_validate(
        env(treatment=payload, record_status="entered-in-error", corrects=str(wrong.event_id))
    )
    pair: list[Message] = [error, wrong] if error_first else [wrong, error]
    _, without = run(base)
    _, with_error = run([*base, *pair])
    assert _view(with_error) == _view(without)


# ---- the same facts give the same advice in scoring and the planners (SURG-LE L2804-2806, MIRELS-HIGH L1324) -------
@PROPERTY
@given(le=life_expectancy)
def test_scoring_and_the_local_planner_agree_on_surgery_under_six_weeks(le: tuple[float, int]) -> None:
    """A Mirels 12 femur: scoring decides fixation / RCP / no surgery on what remains of the estimate; the local
    planner, fed the same facts and scoring's own score, must say "no surgery" exactly when scoring does."""
    months, days_ago = le
    events: list[Message] = [
        estimate(months, days_ago),
        ClinicalAssessment.model_validate(
            env(lesion_pain=[{"lesion_id": "fem", "intensity": "functional", "character": "mechanical"}])
        ),
        ImagingFinding.model_validate(
            env(
                lesion_id="fem",
                skeletal_site="femur_trochanteric",
                lesion_type="lytic",
                cortical_involvement_fraction=0.7,
                modality="ct",
                status="confirmed",
            )
        ),
    ]
    scoring_state, scoring_out = ScoringState(), []
    for e in events:
        scoring_state, o = scoring_apply(scoring_state, e, now=NOW)
        scoring_out += o
    scores = [o for o in scoring_out if isinstance(o, Score) and o.score == "mirels"]
    assert scores and scores[-1].total == 12
    mirels_family = {"SURG-LE", "MIRELS-HIGH", "MIRELS-HIGH-SHORT-LE", "MIRELS-8", "SCORE-MIRELS", "MIRELS-LOW"}
    recs = [
        o for o in scoring_out if isinstance(o, Recommendation) and o.status == "active" and o.rule_id in mirels_family
    ]
    scoring_no_surgery = recs[-1].rule_id == "SURG-LE"
    _, out = run([*events, scores[-1]])
    [surgery] = [i for i in plan_items(out) if i.rule_id == "SURG-LE" and i.key.endswith(":surgery")]
    assert (surgery.status == "not_indicated") is scoring_no_surgery
    left = remaining(months, days_ago)
    if days_ago <= 91:  # a current estimate: both follow what remains of it
        assert scoring_no_surgery is (left < SIX_WEEKS_IN_MONTHS)
