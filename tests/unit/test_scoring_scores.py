"""SCORE-MIRELS (Tableau 3), SCORE-SINS, CLASS-OLIGO, IMG-FLARE, IMG-ISOLATED, CLASS-SRE: tables, properties and
order independence of the scoring aggregate."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.clinical import Recommendation, Score, SkeletalEvent
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.scoring import rules as r
from services.scoring.domain import ScoringState, apply_event, current_scores

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


# ---- Tableau 3 (L1353-1372): site / size / type / pain, 1 to 3 points each -----------------------------------
@pytest.mark.parametrize(
    ("site", "points"),
    [
        ("humerus", 1),
        ("radius_ulna", 1),
        ("femur_shaft", 2),
        ("tibia_fibula", 2),
        ("femur_neck", 2),
        ("femur_trochanteric", 3),
    ],
)
def test_mirels_site(site: str, points: int) -> None:
    assert r.mirels(site, 0.1, "blastic", "mild").items[0].points == points


@pytest.mark.parametrize(
    ("fraction", "points"),
    [(0.0, 1), (0.33, 1), (1 / 3, 2), (0.5, 2), (2 / 3, 2), (0.67, 3), (1.0, 3)],
)
def test_mirels_size_boundaries(fraction: float, points: int) -> None:
    assert r.mirels_size_points(fraction) == points


@pytest.mark.parametrize(("lesion_type", "points"), [("blastic", 1), ("mixed", 2), ("lytic", 3)])
def test_mirels_type(lesion_type: str, points: int) -> None:
    assert r.mirels("humerus", 0.1, lesion_type, "mild").items[2].points == points


@pytest.mark.parametrize(("pain", "points"), [("mild", 1), ("moderate", 2), ("functional", 3), ("none", 1)])
def test_mirels_pain(pain: str, points: int) -> None:
    assert r.mirels("humerus", 0.1, "blastic", pain).items[3].points == points


@pytest.mark.parametrize(
    ("total", "life_expectancy", "rule", "decision"),
    [
        (4, None, "MIRELS-LOW", "low"),
        (7, 12, "MIRELS-LOW", "low"),
        (8, 12, "MIRELS-8", "rcp"),
        (9, 12, "MIRELS-HIGH", "fixation"),
        (12, 3.1, "MIRELS-HIGH", "fixation"),
        (9, 3.0, "MIRELS-HIGH", "high_short_survival"),
        (9, None, "MIRELS-HIGH", "high_survival_unknown"),
    ],
)
def test_mirels_bands(total: int, life_expectancy: float | None, rule: str, decision: str) -> None:
    assert r.mirels_decision(total, life_expectancy) == (rule, decision)


@pytest.mark.parametrize(
    ("axial", "circumferential", "met"),
    [(31, 51, True), (30, 51, False), (31, 50, False), (80, 20, False), (None, 60, None)],
)
def test_ct_osteolysis_needs_both_axial_and_circumferential(
    axial: float | None, circumferential: float | None, met: bool | None
) -> None:
    assert r.ct_osteolysis_criterion(axial, circumferential) is met


def test_mirels_missing_item_is_never_a_total() -> None:
    m = r.mirels("humerus", None, "lytic", "functional")
    assert m.total is None and not m.complete and m.missing == ("size",)


MIRELS_SITES = sorted(r.MIRELS_SITE)
FRACTIONS = st.floats(min_value=0, max_value=1, allow_nan=False)


@given(
    st.sampled_from(MIRELS_SITES),
    FRACTIONS,
    st.sampled_from(["blastic", "mixed", "lytic"]),
    st.sampled_from(["mild", "moderate", "functional"]),
)
def test_mirels_sum_in_4_to_12(site: str, fraction: float, lesion_type: str, pain: str) -> None:
    total = r.mirels(site, fraction, lesion_type, pain).total
    assert total is not None and 4 <= total <= 12


@given(FRACTIONS, FRACTIONS)
def test_mirels_monotonic_in_size(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert r.mirels("humerus", lo, "lytic", "mild").total <= r.mirels("humerus", hi, "lytic", "mild").total  # type: ignore[operator]


@pytest.mark.parametrize("item", ["lesion_type", "pain", "site"])
def test_mirels_monotonic_in_each_ordered_item(item: str) -> None:
    orders = {
        "lesion_type": ["blastic", "mixed", "lytic"],
        "pain": ["mild", "moderate", "functional"],
        "site": ["humerus", "femur_shaft", "femur_trochanteric"],
    }
    base = {"site": "humerus", "cortex_fraction": 0.5, "lesion_type": "mixed", "pain": "moderate"}
    totals = [r.mirels(**{**base, item: v}).total or 0 for v in orders[item]]  # type: ignore[arg-type]
    assert totals == sorted(totals) and len(set(totals)) == 3


# ---- SINS (L1375-1392) ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("level", "location", "points"),
    [
        ("C1", "junctional", 3),
        ("C2", "junctional", 3),
        ("C3", "mobile", 2),
        ("C6", "mobile", 2),
        ("C7", "junctional", 3),
        ("T1", "junctional", 3),
        ("T2", "junctional", 3),
        ("T3", "semi_rigid", 1),
        ("T10", "semi_rigid", 1),
        ("T11", "junctional", 3),
        ("T12", "junctional", 3),
        ("L1", "junctional", 3),
        ("L2", "mobile", 2),
        ("L4", "mobile", 2),
        ("L5", "junctional", 3),
        ("S1", "junctional", 3),
        ("S2", "rigid", 0),
        ("S5", "rigid", 0),
    ],
)
def test_sins_location(level: str, location: str, points: int) -> None:
    assert r.sins_location(level) == location
    assert r.sins(level, "none", "blastic", "normal", "none", "none").total == points


@pytest.mark.parametrize(
    ("field", "value", "points"),
    [
        ("pain", "mechanical", 3),
        ("pain", "non_mechanical", 1),
        ("pain", "none", 0),
        ("lesion_type", "lytic", 2),
        ("lesion_type", "mixed", 1),
        ("lesion_type", "blastic", 0),
        ("alignment", "subluxation_translation", 4),
        ("alignment", "de_novo_deformity", 2),
        ("alignment", "normal", 0),
        ("collapse", "gt_50", 3),
        ("collapse", "lt_50", 2),
        ("collapse", "none_body_involved_gt_50", 1),
        ("collapse", "none", 0),
        ("posterolateral", "bilateral", 3),
        ("posterolateral", "unilateral", 1),
        ("posterolateral", "none", 0),
    ],
)
def test_sins_components(field: str, value: str, points: int) -> None:
    base = {
        "level": "S3",
        "pain": "none",
        "lesion_type": "blastic",
        "alignment": "normal",
        "collapse": "none",
        "posterolateral": "none",
    }
    assert r.sins(**{**base, field: value}).total == points


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "stable"),
        (6, "stable"),
        (7, "potentially_unstable"),
        (12, "potentially_unstable"),
        (13, "unstable"),
        (18, "unstable"),
    ],
)
def test_sins_bands(total: int, band: str) -> None:
    assert r.sins_band(total) == band


SINS_VALUES = {
    "level": [f"C{i}" for i in range(1, 8)]
    + [f"T{i}" for i in range(1, 13)]
    + [f"L{i}" for i in range(1, 6)]
    + [f"S{i}" for i in range(1, 6)],
    "pain": ["none", "non_mechanical", "mechanical"],
    "lesion_type": ["blastic", "mixed", "lytic"],
    "alignment": ["normal", "de_novo_deformity", "subluxation_translation"],
    "collapse": ["none", "none_body_involved_gt_50", "lt_50", "gt_50"],
    "posterolateral": ["none", "unilateral", "bilateral"],
}


@given(st.fixed_dictionaries({k: st.sampled_from(v) for k, v in SINS_VALUES.items()}))
def test_sins_in_0_to_18(values: dict[str, str]) -> None:
    total = r.sins(**values).total
    assert total is not None and 0 <= total <= 18


@given(
    st.fixed_dictionaries({k: st.sampled_from(v) for k, v in SINS_VALUES.items() if k != "level"}),
    st.sampled_from(sorted(set(SINS_VALUES) - {"level"})),
)
def test_sins_monotonic_in_each_component(values: dict[str, str], field: str) -> None:
    ordered = SINS_VALUES[field]  # listed from fewest to most points
    totals = [r.sins(level="T5", **{**values, field: v}).total for v in ordered]
    assert totals == sorted(totals)  # type: ignore[type-var]


def test_sins_incomplete_reports_missing_by_name() -> None:
    s = r.sins("L1", None, "lytic", None, "lt_50", "unilateral")
    assert s.total is None and set(s.missing) == {"pain", "alignment"} and s.known_points == 8


# ---- CLASS-OLIGO -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sites", "lesions", "sizes", "controlled", "status", "failing"),
    [
        (1, 1, [2.0], True, "oligometastatic", ()),
        (3, 5, [4.9] * 5, True, "oligometastatic", ()),
        (4, 5, [1.0] * 5, True, "multi_metastatic", ("sites_1_to_3",)),
        (2, 6, [1.0] * 6, True, "multi_metastatic", ("metastases_1_to_5",)),
        (1, 1, [5.0], True, "multi_metastatic", ("each_under_5_cm",)),
        (1, 2, [1.0, 2.0], False, "multi_metastatic", ("primary_controlled",)),
        (1, 2, [1.0, None], True, "undetermined", ()),
        (1, 1, [1.0], None, "undetermined", ()),
    ],
)
def test_oligometastatic(
    sites: int, lesions: int, sizes: list[float | None], controlled: bool | None, status: str, failing: tuple[str, ...]
) -> None:
    got = r.oligometastatic(sites, lesions, sizes, controlled)
    assert got.status == status and got.failing == failing
    assert len(got.criteria) == 4


@pytest.mark.parametrize(
    ("started", "imaging", "within"),
    [
        (date(2026, 1, 31), date(2026, 7, 30), True),
        (date(2026, 1, 31), date(2026, 7, 31), False),
        (date(2026, 8, 31), date(2027, 2, 27), True),
        (date(2026, 8, 31), date(2027, 2, 28), False),
        (date(2026, 5, 1), date(2026, 4, 30), False),
    ],
)
def test_flare_window_is_six_calendar_months(started: date, imaging: date, within: bool) -> None:
    assert r.within_flare_window(started, imaging) is within


# ---- the aggregate ---------------------------------------------------------------------------------------------
def env(minutes: int = 0, recorded: int | None = None) -> dict[str, Any]:
    at = T0 + timedelta(minutes=minutes)
    rec = T0 + timedelta(minutes=recorded if recorded is not None else minutes)
    return {"event_id": uuid.uuid4(), "patient_id": "p1", "occurred_at": at, "recorded_at": rec, "source": "t"}


def finding(minutes: int = 0, **fields: Any) -> ImagingFinding:
    return ImagingFinding.model_validate({**env(minutes), "modality": "ct", **fields})


def assessment(minutes: int = 0, **fields: Any) -> ClinicalAssessment:
    return ClinicalAssessment.model_validate({**env(minutes), **fields})


def treatment(minutes: int = 0, **t: Any) -> TreatmentEvent:
    return TreatmentEvent.model_validate({**env(minutes), "treatment": t})


def run(events: Sequence[Message], state: ScoringState | None = None) -> tuple[ScoringState, list[Message]]:
    s = state or ScoringState()
    out: list[Message] = []
    for e in events:
        s, o = apply_event(s, e)
        out += o
    return s, out


def active(out: list[Message]) -> list[Recommendation]:
    withdrawn = {i for o in out if isinstance(o, Recommendation) and o.status == "withdrawn" for i in o.supersedes}
    return [o for o in out if isinstance(o, Recommendation) and o.status == "active" and o.event_id not in withdrawn]


TROCHANTER: dict[str, Any] = {
    "lesion_id": "fem-R",
    "skeletal_site": "femur_trochanteric",
    "lesion_type": "lytic",
    "cortical_involvement_fraction": 0.7,
}


def test_trochanteric_lesion_with_functional_pain_and_12_months_is_a_surgical_referral() -> None:
    _, out = run([assessment(pain={"intensity": "functional"}, life_expectancy_months=12), finding(5, **TROCHANTER)])
    [rec] = [x for x in active(out) if x.rule_id == "MIRELS-HIGH"]
    assert rec.severity == "critical" and "fixation prophylactique" in rec.text_fr
    [score] = [x for x in out if isinstance(x, Score) and x.score == "mirels"]
    assert score.total == 12 and score.complete and [c.points for c in score.components] == [3, 3, 3, 3]


def test_mirels_without_pain_is_incomplete_and_gives_no_recommendation() -> None:
    _, out = run([finding(**TROCHANTER)])
    [score] = [x for x in out if isinstance(x, Score) and x.score == "mirels"]
    assert score.total is None and not score.complete and score.missing == ["pain"]
    assert not [x for x in active(out) if x.rule_id.startswith("MIRELS")]


def test_l1_lesion_sins_11_asks_for_a_surgical_opinion() -> None:
    l1 = {
        "lesion_id": "L1",
        "skeletal_site": "spine",
        "vertebral_level": "L1",
        "lesion_type": "lytic",
        "alignment": "normal",
        "vertebral_collapse": "lt_50",
        "posterolateral_involvement": "unilateral",
    }
    _, out = run([assessment(pain={"character": "mechanical"}), finding(5, **l1)])
    [score] = [x for x in out if isinstance(x, Score) and x.score == "sins"]
    assert score.total == 11 and score.band == "potentially_unstable"
    [rec] = [x for x in active(out) if x.rule_id == "SINS-SURGICAL"]
    assert rec.severity == "warning"


def test_sres_are_emitted_once_each() -> None:
    events = [
        finding(0, lesion_id="T8", skeletal_site="spine", vertebral_level="T8", cord_compression=True),
        finding(10, lesion_id="T8", skeletal_site="spine", vertebral_level="T8", cord_compression=True),
        finding(20, lesion_id="hum", skeletal_site="humerus", pathological_fracture=True),
        treatment(30, kind="radiotherapy", site="T8", total_dose_gy=8, fractions=1, on="2026-11-02", intent="pain"),
        treatment(40, kind="surgery", site="femur", procedure="prophylactic_fixation", on="2026-11-03"),
    ]
    _, out = run(events)
    kinds = sorted(o.kind for o in out if isinstance(o, SkeletalEvent))
    assert kinds == ["cord_compression", "orthopaedic_surgery", "pathological_fracture", "radiotherapy_for_pain"]


def test_flare_within_six_months_of_egfr_tki_is_never_progression() -> None:
    events = [
        treatment(0, kind="systemic_drug", drug="osimertinib", action="started", on="2026-09-01"),
        finding(10, lesion_id="rib", skeletal_site="rib", modality="bone_scan", new_focus=True),
    ]
    _, out = run(events)
    [rec] = [x for x in active(out) if x.rule_id == "IMG-FLARE"]
    assert rec.severity == "warning" and "flare" in rec.text_fr and "progression" in rec.text_fr
    assert "ne pas arrêter" in rec.text_fr


def test_isolated_metabolic_lesion_asks_for_targeted_imaging_until_ct() -> None:
    s, out = run([finding(0, lesion_id="il", skeletal_site="pelvis", modality="fdg_pet")])
    assert [x.rule_id for x in active(out)] == ["IMG-ISOLATED"]
    _, out = run([finding(10, lesion_id="il", skeletal_site="pelvis", modality="ct")], s)
    assert [x.status for x in out if isinstance(x, Recommendation)] == ["withdrawn"]


def test_late_older_assessment_does_not_hide_newer() -> None:
    new = assessment(60, life_expectancy_months=2)
    old = assessment(0, life_expectancy_months=12)
    s1, _ = run([new, old])
    s2, _ = run([old, new])
    assert s1.assessment.life_expectancy_months is not None
    assert s1.assessment.life_expectancy_months.value == 2 and s1 == s2


def _timeline() -> list[Message]:
    return [
        assessment(
            0,
            pain={"intensity": "moderate", "character": "mechanical"},
            life_expectancy_months=8,
            primary_controlled=True,
        ),
        finding(5, **TROCHANTER),
        finding(
            6,
            lesion_id="L2",
            skeletal_site="spine",
            vertebral_level="L2",
            lesion_type="mixed",
            alignment="normal",
            vertebral_collapse="none",
            posterolateral_involvement="bilateral",
            size_cm=2,
        ),
        assessment(30, pain={"intensity": "functional"}),
        treatment(40, kind="systemic_drug", drug="carboplatin", action="started", on="2026-11-01"),
        finding(
            50,
            lesion_id="fem-R",
            skeletal_site="femur_trochanteric",
            lesion_type="lytic",
            cortical_involvement_fraction=0.9,
            size_cm=4,
        ),
    ]


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(range(6))))
def test_state_is_the_same_whatever_the_order(order: list[int]) -> None:
    events = _timeline()
    reference, _ = run(events)
    shuffled, _ = run([events[i] for i in order])
    assert shuffled == reference


def test_replaying_the_same_events_changes_nothing() -> None:
    events = _timeline()
    s, _ = run(events)
    again, out = run(events, s)
    assert again == s and out == []


def test_current_scores_lists_every_score() -> None:
    s, _ = run(_timeline())
    kinds = [(x.score, x.subject) for x in current_scores(s, "p1")]
    assert kinds == [("mirels", "fem-R"), ("oligometastatic", "patient"), ("sins", "L2")]


def test_no_obsolete_scores_in_any_contract() -> None:
    """SCORE-OBSOLETE: Tokuhashi and Rades drive nothing; life expectancy is the clinician's estimate."""
    from contracts import topics

    for t in topics.TOPICS:  # no field of any message can carry such a score
        fields = str(list(t.value.model_json_schema().get("properties", {}))).lower()
        assert "tokuhashi" not in fields and "rades" not in fields
    assert "clinician" in str(ClinicalAssessment.model_json_schema()["properties"]["life_expectancy_months"])


def test_every_permutation_of_a_small_timeline_gives_identical_outputs_set() -> None:
    events = _timeline()[:3]
    finals = {run(list(p))[0].model_dump_json() for p in itertools.permutations(events)}
    assert len(finals) == 1


@settings(max_examples=80, deadline=None)
@given(st.permutations(list(range(9))))
def test_incremental_decisions_equal_a_full_recomputation(order: list[int]) -> None:
    """Each event recomputes only the decisions it can change; the result must equal deciding everything."""
    from contracts.clinical import NormalisedLab
    from services.scoring.domain import decide

    crisis = NormalisedLab.model_validate(
        {
            **env(70),
            "source": "lab-normalisation",
            "analyte": "corrected_calcium",
            "result_id": "cc1",
            "value": 3.7,
            "unit": "mmol/L",
        }
    )
    events = [
        *_timeline(),
        crisis,
        finding(80, lesion_id="T9", skeletal_site="spine", vertebral_level="T9", cord_compression=True),
        finding(90, lesion_id="rib", skeletal_site="rib", modality="bone_scan", new_focus=True),
    ]
    s, _ = run([events[i] for i in order])
    full = decide(s, "p1")
    assert s.recommendations == {k: str(v.event_id) for k, v in sorted(full.recommendations.items())}
    assert s.scores == {k: str(v.event_id) for k, v in sorted(full.scores.items())}
    assert set(s.sres) == set(full.sres)
