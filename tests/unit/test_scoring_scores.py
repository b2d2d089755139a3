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
from contracts.rules import cite
from services.scoring import rules as r
from services.scoring.domain import ScoringState, apply_event, current_scores
from shared.clinical import life_expectancy

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


# ---- Tableau 3 (L1353-1372): site / size / type / pain, 1 to 3 points each -----------------------------------
@pytest.mark.parametrize(
    ("site", "points"),
    [
        ("humerus", 1),
        ("radius_ulna", 1),
        ("femur_shaft", 2),
        ("tibia_fibula", 2),
        ("femur_neck", 3),  # Mirels' peritrochanteric region (Tableau 3 "région trochantérienne")
        ("femur_trochanteric", 3),
    ],
)
def test_SCORE_MIRELS_site_femoral_neck_is_peritrochanteric(site: str, points: int) -> None:
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
    ("lo", "hi", "life_expectancy", "decided"),
    [
        (4, 4, None, ("MIRELS-LOW", "low")),
        (7, 7, 12, ("MIRELS-LOW", "low")),
        (5, 7, None, ("MIRELS-LOW", "low")),  # incomplete, but at most 7 whatever is missing
        (8, 8, 12, ("MIRELS-8", "rcp")),
        (6, 8, 12, ("MIRELS-8", "doubt")),  # 6 to 8: straddles a band, a doubt (L1330), RCP-OOS
        (8, 10, 12, ("MIRELS-8", "doubt")),  # spans the 8/9 threshold
        (7, 9, None, ("MIRELS-8", "doubt")),
        (9, 9, 12, ("MIRELS-HIGH", "fixation")),
        (10, 12, 12, ("MIRELS-HIGH", "fixation")),  # incomplete, already >= 9
        (12, 12, 3.1, ("MIRELS-HIGH", "fixation")),
        (9, 9, 3.0, ("MIRELS-HIGH-SHORT-LE", "short_survival")),
        (9, 9, 1.5, ("MIRELS-HIGH-SHORT-LE", "short_survival")),
        (9, 9, 1.3, ("SURG-LE", "no_surgery")),  # < 6 weeks
        (9, 9, None, ("SCORE-MIRELS", "survival_unknown")),
    ],
)
def test_MIRELS_HIGH_bands_on_bounds_and_life_expectancy(
    lo: int, hi: int, life_expectancy: float | None, decided: tuple[str, str]
) -> None:
    """MIRELS-HIGH means fixation first: only with life expectancy > 3 months (L1324). <= 3 months: not fixation
    first (MIRELS-HIGH-SHORT-LE, RCP-OOS); < 6 weeks: SURG-LE, no surgery (L2804-2808)."""
    assert r.mirels_decision(lo, hi, life_expectancy) == decided


def test_SURG_LE_six_weeks_boundary_is_not_rounded() -> None:
    assert r.mirels_decision(9, 9, life_expectancy.SIX_WEEKS_IN_MONTHS) == ("MIRELS-HIGH-SHORT-LE", "short_survival")
    assert r.mirels_decision(9, 9, life_expectancy.SIX_WEEKS_IN_MONTHS - 1e-9) == ("SURG-LE", "no_surgery")


def test_SCORE_MIRELS_bounds_of_an_incomplete_score() -> None:
    m = r.mirels("femur_trochanteric", 0.75, "lytic", None)
    assert m.total is None and r.mirels_bounds(m) == (10, 12)
    assert r.mirels_bounds(r.mirels("humerus", 0.1, None, None)) == (4, 8)


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
def bones(*specs: tuple[str, float | None] | tuple[str, float | None, bool]) -> list[r.BoneLesion]:
    return [r.BoneLesion(x[0], x[1], x[2] if len(x) == 3 else True) for x in specs]


NONE_ELSEWHERE = r.ExtraOsseous(0, (), None, None)


@pytest.mark.parametrize(
    ("bone", "extra", "controlled", "status", "failing"),
    [
        (bones(("spine", 2.0)), NONE_ELSEWHERE, True, "oligometastatic", ()),
        (bones(("spine", 4.9), ("pelvis", 1), ("rib", 1)), NONE_ELSEWHERE, True, "oligometastatic", ()),
        (
            bones(("spine", 1), ("pelvis", 1), ("rib", 1), ("skull", 1)),
            NONE_ELSEWHERE,
            True,
            "multi_metastatic",
            ("sites_1_to_3",),
        ),
        (bones(*[("spine", 1.0)] * 6), NONE_ELSEWHERE, True, "multi_metastatic", ("metastases_1_to_5",)),
        (bones(("spine", 5.0)), NONE_ELSEWHERE, True, "multi_metastatic", ("each_under_5_cm",)),
        (bones(("spine", 1), ("rib", 2)), NONE_ELSEWHERE, False, "multi_metastatic", ("primary_controlled",)),
        (bones(("spine", 1), ("rib", None)), NONE_ELSEWHERE, True, "undetermined", ()),
        (bones(("spine", 1)), NONE_ELSEWHERE, None, "undetermined", ()),
        # extra-osseous disease counts: 2 bone sites + adrenal + brain = 4 sites
        (
            bones(("spine", 1), ("rib", 1)),
            r.ExtraOsseous(2, ("adrenal", "brain"), True, 1.0),
            True,
            "multi_metastatic",
            ("sites_1_to_3",),
        ),
        # 3 bone + 3 extra-osseous = 6 metastases in 2 sites
        (
            bones(*[("spine", 1.0)] * 3),
            r.ExtraOsseous(3, ("liver",), True, 2.0),
            True,
            "multi_metastatic",
            ("metastases_1_to_5",),
        ),
        (
            bones(("spine", 1)),
            r.ExtraOsseous(1, ("adrenal",), False, 2.0),
            True,
            "multi_metastatic",
            ("extra_osseous_stable",),
        ),
        (
            bones(("spine", 1)),
            r.ExtraOsseous(1, ("adrenal",), True, 6.0),
            True,
            "multi_metastatic",
            ("each_under_5_cm",),
        ),
        (bones(("spine", 1)), r.ExtraOsseous(1, ("adrenal",), True, 2.0), True, "oligometastatic", ()),
        (bones(("spine", 1)), None, True, "undetermined", ()),  # extra-osseous disease not assessed
        (bones(*[("spine", 1.0)] * 6), None, True, "multi_metastatic", ("metastases_1_to_5",)),  # fails anyway
        # a suspected lesion: 1 to 2 metastases, both fine; 3 to 4 sites with it: the suspected one decides
        (bones(("spine", 1), ("rib", 1, False)), NONE_ELSEWHERE, True, "undetermined", ()),
        (bones(*[("spine", 1.0)] * 5, ("rib", 1, False)), NONE_ELSEWHERE, True, "undetermined", ()),
        (bones(("rib", 1, False)), NONE_ELSEWHERE, True, "undetermined", ()),  # no confirmed metastasis
    ],
)
def test_CLASS_OLIGO_counts_sites_and_metastases_over_the_whole_disease(
    bone: list[r.BoneLesion],
    extra: r.ExtraOsseous | None,
    controlled: bool | None,
    status: str,
    failing: tuple[str, ...],
) -> None:
    """L1470-1474, L1621-1625, L2161-2169: 1-3 sites, 1-5 metastases, each < 5 cm, primary controlled, extra-osseous
    disease stable; each criterion is shown."""
    got = r.oligometastatic(bone, extra, controlled)
    assert got.status == status and got.failing == failing
    assert [c.name for c in got.criteria] == [
        "sites_1_to_3",
        "metastases_1_to_5",
        "each_under_5_cm",
        "primary_controlled",
        "extra_osseous_stable",
    ]


def test_CLASS_OLIGO_criterion_values_show_the_counts() -> None:
    got = r.oligometastatic(bones(("spine", 1), ("rib", 1, False)), r.ExtraOsseous(1, ("adrenal",), True, 2.0), True)
    sites, mets = got.criteria[0], got.criteria[1]
    assert sites.value == "2-3 (rib, spine, adrenal)" and sites.met is True
    assert mets.value == "2-3" and mets.met is True
    assert got.missing == ("each_under_5_cm",)  # the suspected lesion may or may not be a metastasis


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


def lesion_pain(lesion_id: str, **pain: Any) -> list[dict[str, Any]]:
    return [{"lesion_id": lesion_id, **pain}]


def test_trochanteric_lesion_with_functional_pain_and_12_months_is_a_surgical_referral() -> None:
    _, out = run(
        [
            assessment(lesion_pain=lesion_pain("fem-R", intensity="functional"), life_expectancy_months=12),
            finding(5, **TROCHANTER),
        ]
    )
    [rec] = [x for x in active(out) if x.rule_id == "MIRELS-HIGH"]
    assert rec.severity == "critical" and "fixation prophylactique" in rec.text_fr
    [score] = [x for x in out if isinstance(x, Score) and x.score == "mirels"]
    assert score.total == 12 and score.complete and [c.points for c in score.components] == [3, 3, 3, 3]


def test_MIRELS_8_undecidable_bounds_are_a_doubt_for_rcp_naming_what_is_missing() -> None:
    """L1330 "pour les scores de Mirels à 8 ou en cas de doute ... RCP-OOS": bounds straddling 8/9 are a doubt,
    never silence."""
    humerus: dict[str, Any] = {
        "lesion_id": "hum",
        "skeletal_site": "humerus",
        "lesion_type": "lytic",
        "cortical_involvement_fraction": 0.5,
    }
    _, out = run([finding(**humerus)])  # 1 + 2 + 3 = 6, pain missing: 7 to 9
    [score] = [x for x in out if isinstance(x, Score) and x.score == "mirels"]
    assert score.total is None and not score.complete and score.missing == ["pain"] and score.band is None
    assert "entre 7 et 9/12" in score.text_fr
    [rec] = [x for x in active(out) if x.rule_id.startswith("MIRELS") or x.rule_id == "SCORE-MIRELS"]
    assert (rec.rule_id, rec.severity, rec.missing) == ("MIRELS-8", "warning", ["pain"])
    assert "entre 7 et 9/12" in rec.title and "RCP-OOS" in rec.text_fr and "renseigner pain" in rec.text_fr
    assert rec.citation.lines == cite("MIRELS-8").lines


def test_MIRELS_HIGH_incomplete_score_already_at_least_10_decides_and_names_what_is_missing() -> None:
    """Issue 9 item 3: a lytic trochanteric lesion over 2/3 of the cortex with no pain entered is already >= 10."""
    _, out = run([assessment(life_expectancy_months=12), finding(5, **TROCHANTER)])
    [score] = [x for x in out if isinstance(x, Score) and x.score == "mirels"]
    assert score.total is None and not score.complete and score.band == "≥9" and score.missing == ["pain"]
    [rec] = [x for x in active(out) if x.rule_id == "MIRELS-HIGH"]
    assert rec.severity == "critical" and "au moins 10/12" in rec.title and "d'au moins 10/12" in rec.text_fr
    assert rec.missing == ["pain"] and "fixation prophylactique" in rec.text_fr


def test_SCORE_MIRELS_patient_level_pain_is_never_a_lesions_pain() -> None:
    _, out = run([assessment(pain={"intensity": "functional"}, life_expectancy_months=12), finding(5, **TROCHANTER)])
    [score] = [x for x in out if isinstance(x, Score) and x.score == "mirels"]
    assert score.total is None and score.missing == ["pain (patient-level pain is not a lesion's pain)"]


def test_MIRELS_HIGH_low_bound_incomplete_at_most_7_is_radiotherapy_alone() -> None:
    humerus: dict[str, Any] = {
        "lesion_id": "hum",
        "skeletal_site": "humerus",
        "lesion_type": "blastic",
        "cortical_involvement_fraction": 0.1,
    }
    _, out = run([finding(**humerus)])  # 1 + 1 + 1 + pain (1 to 3): at most 6
    [rec] = [x for x in active(out) if x.rule_id == "MIRELS-LOW"]
    assert "au plus 6/12" in rec.title and rec.missing == ["pain"]


@pytest.mark.parametrize(
    ("months", "rule_id", "severity", "says"),
    [
        (2.0, "MIRELS-HIGH-SHORT-LE", "warning", "n'est pas indiquée"),
        (1.0, "SURG-LE", "warning", "pas de chirurgie"),
        (None, "SCORE-MIRELS", "warning", "Estimer (à nouveau) l'espérance de vie"),
    ],
)
def test_MIRELS_HIGH_is_never_issued_with_life_expectancy_of_3_months_or_less(
    months: float | None, rule_id: str, severity: str, says: str
) -> None:
    """Issue 9 item 10: MIRELS-HIGH means fixation first (L1324-1328: Mirels >= 9 AND life expectancy > 3 months)."""
    ct = {**TROCHANTER, "axial_cortical_osteolysis_pct": 40, "circumferential_cortical_osteolysis_pct": 60}
    pain = lesion_pain("fem-R", intensity="functional")
    known: dict[str, Any] = {"life_expectancy_months": months} if months is not None else {}
    first = assessment(lesion_pain=pain, **known)
    _, out = run([first, finding(5, **ct)])
    assert not [x for x in active(out) if x.rule_id == "MIRELS-HIGH"]
    [rec] = [x for x in active(out) if x.rule_id == rule_id]
    assert rec.severity == severity and says in rec.text_fr
    assert "consolidation" not in rec.text_fr  # MIRELS-HIGH only: fixation first is not the decision here
    assert rec.citation.lines == cite(rule_id).lines


def test_MIRELS_HIGH_ct_osteolysis_note_only_for_a_score_of_9_or_more() -> None:
    """L1340-1346: the CT criterion concerns a patient with Mirels >= 9 only."""
    low = {
        "lesion_id": "hum",
        "skeletal_site": "humerus",
        "lesion_type": "blastic",
        "cortical_involvement_fraction": 0.5,
        "axial_cortical_osteolysis_pct": 40,
        "circumferential_cortical_osteolysis_pct": 60,
    }
    _, out = run([assessment(lesion_pain=lesion_pain("hum", intensity="mild")), finding(5, **low)])
    texts = [x.text_fr for x in out if isinstance(x, Score | Recommendation)]
    assert texts and not any("consolidation" in t for t in texts)
    assert [x.rule_id for x in active(out)] == ["MIRELS-LOW"]


def test_SCORE_MIRELS_femoral_neck_lesion_scores_3_for_site() -> None:
    neck = {
        "lesion_id": "neck",
        "skeletal_site": "femur_neck",
        "lesion_type": "lytic",
        "cortical_involvement_fraction": 0.5,
    }
    _, out = run(
        [assessment(lesion_pain=lesion_pain("neck", intensity="mild"), life_expectancy_months=12), finding(5, **neck)]
    )
    [score] = [x for x in out if isinstance(x, Score) and x.score == "mirels"]
    assert score.total == 9 and score.components[0].points == 3
    assert [x.rule_id for x in active(out)] == ["MIRELS-HIGH"]


def test_SCORE_MIRELS_and_SINS_score_each_lesions_own_pain() -> None:
    l2 = {
        "lesion_id": "L2",
        "skeletal_site": "spine",
        "vertebral_level": "L2",
        "lesion_type": "blastic",
        "alignment": "normal",
        "vertebral_collapse": "none",
        "posterolateral_involvement": "none",
    }
    pains = lesion_pain("fem-R", intensity="mild", character="none") + lesion_pain("L2", character="mechanical")
    _, out = run([assessment(lesion_pain=pains, life_expectancy_months=12), finding(5, **TROCHANTER), finding(6, **l2)])
    by = {x.score: x for x in out if isinstance(x, Score) and x.score in ("mirels", "sins")}
    assert {c.name: c.points for c in by["mirels"].components}["pain"] == 1 and by["mirels"].total == 10
    assert {c.name: c.points for c in by["sins"].components}["pain"] == 3 and by["sins"].total == 5


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
    _, out = run([assessment(lesion_pain=lesion_pain("L1", character="mechanical")), finding(5, **l1)])
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
            lesion_pain=lesion_pain("fem-R", intensity="moderate") + lesion_pain("L2", character="mechanical"),
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
        assessment(30, lesion_pain=lesion_pain("fem-R", intensity="functional")),
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
    assert _decided(shuffled) == _decided(reference)


def _decided(s: ScoringState) -> ScoringState:
    """The state but the IDs of the score versions published (HAZ-22-ORDER-03: a version's ID names the one it
    replaces, so it depends on the versions an order went through; the content IDs in `scores` do not)."""
    return s.model_copy(update={"score_ids": {}})


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
    finals = {_decided(run(list(p))[0]).model_dump_json() for p in itertools.permutations(events)}
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


# ---- issue 9: IMG-FLARE drug classes, CLASS-SRE, IMG-ISOLATED, CLASS-OLIGO through the aggregate -------------------
def test_IMG_FLARE_supportive_drug_start_is_never_the_effective_treatment() -> None:
    """Issue 9 item 8: on pembrolizumab for 10 months, cholecalciferol started last month: a new focus is not a
    possible flare (that would mask a progression)."""
    events = [
        treatment(0, kind="systemic_drug", drug="pembrolizumab", action="started", on="2026-01-02"),
        treatment(1, kind="systemic_drug", drug="cholecalciferol", action="started", on="2026-10-01"),
        treatment(2, kind="systemic_drug", drug="zoledronic_acid", action="started", on="2026-10-05"),
        treatment(3, kind="systemic_drug", drug="apixaban", action="started", on="2026-10-06"),
        finding(10, lesion_id="rib", skeletal_site="rib", modality="bone_scan", new_focus=True),
    ]
    _, out = run(events)
    [rec] = [x for x in active(out) if x.rule_id == "IMG-FLARE"]
    assert "possible flare" not in rec.title and "progression" in rec.text_fr
    assert "pembrolizumab (02/01/2026)" in rec.text_fr and "cholecalciferol" not in rec.text_fr.split(":")[0]
    assert [i.value for i in rec.inputs if i.name == "anticancer_treatment_started"] == ["pembrolizumab 2026-01-02"]


def test_IMG_FLARE_drug_of_unknown_class_is_said_unknown_not_assumed() -> None:
    events = [
        treatment(0, kind="systemic_drug", drug="pembrolizumab", action="started", on="2026-01-02"),
        treatment(1, kind="systemic_drug", drug="investigational_x", action="started", on="2026-09-01"),
        finding(10, lesion_id="rib", skeletal_site="rib", modality="fdg_pet", new_focus=True),
    ]
    _, out = run(events)
    [rec] = [x for x in active(out) if x.rule_id == "IMG-FLARE"]
    assert "indéterminé" in rec.title and rec.missing == ["drug class of investigational_x"]
    assert "investigational_x" in rec.text_fr and "possible flare" not in rec.title


def test_IMG_FLARE_anticancer_start_within_6_months_is_still_a_possible_flare_despite_supportive_drugs() -> None:
    events = [
        treatment(0, kind="systemic_drug", drug="carboplatin", action="started", on="2026-09-01"),
        treatment(1, kind="systemic_drug", drug="dexamethasone", action="started", on="2026-10-20"),
        finding(10, lesion_id="rib", skeletal_site="rib", modality="bone_scan", new_focus=True),
    ]
    _, out = run(events)
    [rec] = [x for x in active(out) if x.rule_id == "IMG-FLARE"]
    assert "possible flare" in rec.title and "carboplatin" in rec.text_fr and rec.severity == "info"


def sres_of(out: Sequence[Message]) -> list[SkeletalEvent]:
    return [o for o in out if isinstance(o, SkeletalEvent)]


def live_sres(out: Sequence[Message]) -> list[SkeletalEvent]:
    gone = {i for o in sres_of(out) if o.status == "withdrawn" for i in o.supersedes}
    return [o for o in sres_of(out) if o.status == "active" and o.event_id not in gone]


FRACTURED = {"lesion_id": "fem-L", "skeletal_site": "femur_shaft", "pathological_fracture": True, "modality": "xray"}


def test_CLASS_SRE_one_fracture_is_one_sre_when_its_fixation_is_recorded() -> None:
    """Issue 9 item 10: the imaging finding and the fixation surgery of the same lesion are one fracture."""
    s, out = run([finding(0, **FRACTURED)])
    [sre] = sres_of(out)
    assert (sre.kind, sre.lesion_id, sre.current) == ("pathological_fracture", "fem-L", True)
    assert sre.current_until == T0 + timedelta(weeks=6)
    s, out = run([treatment(60, kind="surgery", site="femur", procedure="fracture_fixation", on="2026-11-02")], s)
    historical, gone = sres_of(out)
    assert (historical.kind, historical.current, historical.status) == ("pathological_fracture", False, "active")
    assert gone.status == "withdrawn" and gone.supersedes == [sre.event_id]
    assert [x.kind for x in live_sres(run([finding(0, **FRACTURED), *_fixation()])[1])] == ["pathological_fracture"]


def _fixation() -> list[Message]:
    return [treatment(60, kind="surgery", site="femur", procedure="fracture_fixation", on="2026-11-02")]


def test_CLASS_SRE_fixation_without_a_fracture_on_imaging_is_the_fracture_sre() -> None:
    _, out = run(_fixation())
    [sre] = sres_of(out)
    assert sre.kind == "pathological_fracture" and sre.current is False


def test_CLASS_SRE_fracture_is_no_longer_current_after_the_recency_window() -> None:
    """'An urgent local procedure' must not stand forever after a past fracture: the SRE says it is historical."""
    _, out = apply_event(ScoringState(), finding(0, **FRACTURED), now=T0 + timedelta(weeks=7))
    [sre] = sres_of(out)
    assert sre.current is False and sre.current_until is None


T9 = {"lesion_id": "T9", "skeletal_site": "spine", "vertebral_level": "T9", "modality": "mri"}


def test_CLASS_SRE_epidural_extension_with_neurological_deficit_is_a_cord_compression() -> None:
    """Issue 9 item 11: neither alone is a compression; together (after imaging) they are."""
    s, out = run([finding(0, **T9, epidural_extension=True)])
    assert sres_of(out) == []
    s, out = run([assessment(10, neurological_deficit=True)], s)
    [sre] = sres_of(out)
    assert (sre.kind, sre.lesion_id, sre.current) == ("cord_compression", "T9", True)
    assert {i.name for i in sre.evidence} == {"epidural_extension:T9", "neurological_deficit"}
    _, out = run([assessment(0, neurological_deficit=True), finding(10, lesion_id="hum", skeletal_site="humerus")])
    assert sres_of(out) == []  # a deficit without epidural extension: no compression


def test_CLASS_SRE_cord_compression_resolved_withdraws_its_sre() -> None:
    s, out = run([finding(0, **T9, cord_compression=True, epidural_extension=True)])
    [sre] = sres_of(out)
    s, out = run([finding(60, **T9, cord_compression=False, epidural_extension=False)], s)
    [gone] = sres_of(out)
    assert gone.status == "withdrawn" and gone.supersedes == [sre.event_id] and gone.kind == "cord_compression"
    assert s.lesion_sres == {}


def test_CLASS_SRE_cord_compression_decompressed_is_historical() -> None:
    s, out = run([finding(0, **T9, cord_compression=True)])
    [sre] = sres_of(out)
    s, out = run([treatment(30, kind="surgery", site="T9", procedure="decompression", on="2026-11-01")], s)
    assert [(x.status, x.current) for x in sres_of(out)] == [("active", False), ("withdrawn", None)]
    assert sres_of(out)[1].supersedes == [sre.event_id]


def test_IMG_ISOLATED_suspected_lesion_starts_nothing_until_confirmed() -> None:
    """Issue 9 item 11: an isolated, unconfirmed focus asks for targeted imaging and starts nothing (no SRE, not
    counted as a metastasis)."""
    suspected = {"lesion_id": "il", "skeletal_site": "pelvis", "modality": "ct", "status": "suspected"}
    s, out = run([assessment(0, primary_controlled=True), finding(5, **suspected, pathological_fracture=True)])
    assert [x.rule_id for x in active(out)] == ["IMG-ISOLATED"] and sres_of(out) == []
    [oligo] = [x for x in out if isinstance(x, Score) and x.score == "oligometastatic"]
    assert oligo.band == "undetermined"
    s, out = run([finding(10, **{**suspected, "status": "confirmed"}, pathological_fracture=True)], s)
    assert [x.status for x in out if isinstance(x, Recommendation)] == ["withdrawn"]
    assert [x.kind for x in sres_of(out)] == ["pathological_fracture"]


def test_CLASS_OLIGO_counts_extra_osseous_metastases_and_drops_resolved_lesions() -> None:
    extra = {"count": 2, "sites": ["adrenal", "brain"], "stable": True, "largest_size_cm": 1.5}
    events = [
        assessment(0, primary_controlled=True, extra_osseous_metastases=extra),
        finding(5, lesion_id="a", skeletal_site="rib", size_cm=1),
        finding(6, lesion_id="b", skeletal_site="pelvis", size_cm=1),
    ]
    s, out = run(events)
    *_, oligo = [x for x in out if isinstance(x, Score) and x.score == "oligometastatic"]
    assert oligo.band == "multi_metastatic"  # 4 sites: rib, pelvis, adrenal, brain
    assert {c.name: c.points for c in oligo.components}["sites_1_to_3"] == 0
    _, out = run([finding(30, lesion_id="b", skeletal_site="pelvis", size_cm=1, status="resolved")], s)
    [oligo] = [x for x in out if isinstance(x, Score) and x.score == "oligometastatic"]
    assert oligo.band == "oligometastatic" and "extra-osseuses" in oligo.text_fr


def test_MIRELS_HIGH_old_life_expectancy_estimate_is_to_estimate_again() -> None:
    """The same pattern as stale labs: a life expectancy estimated 4 months ago cannot place the patient either side
    of 3 months; fixation first is not advised on it, the estimate is asked for again."""
    pain = lesion_pain("fem-R", intensity="functional")
    events = [assessment(0, lesion_pain=pain, life_expectancy_months=12), finding(5, **TROCHANTER)]
    _, out = run(events)
    assert [x.rule_id for x in active(out)] == ["MIRELS-HIGH"]
    s = ScoringState()
    for e in events:
        s, out = apply_event(s, e, now=T0 + timedelta(days=120))
    [rec] = active(out)
    assert rec.rule_id == "SCORE-MIRELS" and "12 months, dated 2026-11-01" in rec.missing[-1]


def test_CLASS_SRE_neurological_deficit_dated_in_the_future_is_not_current() -> None:
    future = assessment(0, neurological_deficit=True).model_copy(update={"occurred_at": T0 + timedelta(days=365)})
    _, out = apply_event(run([finding(0, **T9, epidural_extension=True)])[0], future, now=T0 + timedelta(minutes=5))
    assert sres_of(out) == []


def test_CLASS_SRE_fracture_still_seen_after_its_fixation_is_one_historical_sre() -> None:
    """Post-operative imaging still showing the fixed fracture: one fracture, already treated, not current."""
    events = [*_fixation(), finding(3 * 24 * 60, **FRACTURED)]  # imaging dated after the fixation
    for order in (events, events[::-1]):
        [sre] = live_sres(run(order)[1])
        assert (sre.kind, sre.lesion_id, sre.current) == ("pathological_fracture", "fem-L", False)
