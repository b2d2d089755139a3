"""Table-driven tests of the local-treatment rules at every threshold the text gives: RT-CORD-DMAX, RT-REIRR,
RT-SBRT-CI, RT-SBRT-DOSE, RT-SBRT-FX, RT-FRACT-PALL / RT-FRACTURE-RISK, RT-DRUG (Tableau 6), SURG-LE."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from services.radiotherapy_planner.rules import conventional as conv
from services.radiotherapy_planner.rules import drugs, reirradiation, sbrt, surgery
from services.radiotherapy_planner.rules.common import DAYS_PER_MONTH
from shared.clinical import irradiation
from shared.clinical.dates import add_months

D = date(2026, 6, 1)


# ---- RT-CORD-DMAX: first irradiation, L1778-1784 -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("fractions", "dmax", "verdict"),
    [
        (1, 12.0, "pass"),
        (1, 14.0, "pass"),
        (1, 14.01, "fail"),
        (2, 17.0, "pass"),
        (2, 17.01, "fail"),
        (3, 20.3, "pass"),
        (3, 20.31, "fail"),
        (4, 23.0, "pass"),
        (4, 23.01, "fail"),
        (5, 25.3, "pass"),
        (5, 25.31, "fail"),
        (6, 10.0, "unknown"),  # the text gives limits for 1 to 5 fractions only
        (3, None, "unknown"),
    ],
)
def test_rt_cord_dmax_limit_by_fraction_count(fractions: int, dmax: float | None, verdict: str) -> None:
    assert sbrt.cord_dmax_check(dmax, fractions).verdict == verdict


# ---- RT-REIRR: EQD2 (LQ, alpha/beta 2 Gy) and the four Sahgal criteria, L2078-2094 -------------------------------
@pytest.mark.parametrize(
    ("total", "fractions", "ab", "expected"),
    [
        (30.0, 10, 2.0, 37.5),  # 30 x (3 + 2) / 4
        (20.0, 5, 2.0, 30.0),
        (8.0, 1, 2.0, 20.0),
        (2.0, 1, 2.0, 2.0),  # 2-Gy fractions are their own EQD2
        (30.0, 10, 0.87, 30.0 * (3 + 0.87) / 2.87),  # another convention gives another value
    ],
)
def test_rt_reirr_eqd2_from_physical_dose(total: float, fractions: int, ab: float, expected: float) -> None:
    assert irradiation.eqd2(total, fractions, ab) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("cumulative", "new", "verdicts"),
    [
        (69.99, 20.0, ("pass", "pass", "pass")),  # ratio 0.286
        (70.0, 20.0, ("fail", "pass", "pass")),  # < 70 Gy strictly
        (60.0, 24.99, ("pass", "pass", "pass")),
        (60.0, 25.0, ("pass", "fail", "pass")),  # < 25 Gy strictly
        (40.0, 20.0, ("pass", "pass", "pass")),  # ratio exactly 0.5 passes (<= 0.5)
        (40.0, 20.01, ("pass", "pass", "fail")),
    ],
)
def test_rt_reirr_eqd2_thresholds_70_25_and_ratio_0_5(
    cumulative: float, new: float, verdicts: tuple[str, str, str]
) -> None:
    got = reirradiation.criteria(cumulative, new, D, add_months(D, 6))
    assert tuple(c.verdict for c in got[:3]) == verdicts
    assert got[3].verdict == "pass"


@pytest.mark.parametrize(
    ("planned", "verdict"),
    [
        (add_months(D, 5), "pass"),  # 5 months exactly
        (add_months(D, 5) - timedelta(days=1), "fail"),
        (add_months(D, 7), "pass"),
        (add_months(D, 4), "fail"),
    ],
)
def test_rt_reirr_interval_of_5_months(planned: date, verdict: str) -> None:
    assert reirradiation.criteria(50.0, 10.0, D, planned)[3].verdict == verdict


def test_rt_reirr_assess_from_physical_doses_shows_each_course_and_never_guesses() -> None:
    prior = irradiation.Course(30.0, 10, D, D + timedelta(days=12))  # EQD2 37.5
    a = reirradiation.assess([prior], irradiation.Course(9.0, 3, add_months(D + timedelta(days=12), 7)))
    assert a.previous[0].eqd2_gy == pytest.approx(37.5)
    assert a.new.eqd2_gy == pytest.approx(9.0 * (3 + 2) / 4)  # 11.25
    assert a.cumulative_eqd2_gy == pytest.approx(48.75)
    assert a.all_met and a.alpha_beta_gy == 2.0
    unknown = reirradiation.assess([irradiation.Course(None, 10, D)], irradiation.Course(9.0, 3, D))
    assert unknown.cumulative_eqd2_gy is None and not unknown.all_met and unknown.missing


# ---- RT-SBRT-CI, L1629-1636 --------------------------------------------------------------------------------------
def _ci(**over: object) -> sbrt.SbrtContraindications:
    args: dict[str, object] = {
        "spine": True,
        "cord_compression": False,
        "compression_operated": False,
        "neurological_deficit": False,
        "sins_band": "stable",
        "sins_floor": 5,
        "metabolic_rt_on": None,
        "metabolic_rt_known": True,
        "last_rt_on": None,
        "planned_on": D,
        "life_expectancy_months": 12.0,
        "canal_narrowing_pct": 10.0,
        "tumour_cord_distance_mm": 8.0,
        "mri_contraindicated": False,
    }
    args.update(over)
    return sbrt.sbrt_contraindications(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("over", "name", "absolute", "present"),
    [
        ({"sins_band": "unstable"}, "vertebral_instability", True, True),
        ({"sins_band": None, "sins_floor": 13}, "vertebral_instability", True, True),  # bound of a partial SINS
        ({"sins_band": "potentially_unstable"}, "vertebral_instability", True, None),  # surgeon decides
        ({"cord_compression": True}, "cord_compression", True, True),  # not operated
        ({"cord_compression": True, "compression_operated": True}, "cord_compression", True, False),
        (
            {"cord_compression": True, "compression_operated": True, "neurological_deficit": True},
            "cord_compression",
            True,
            True,
        ),
        ({"metabolic_rt_on": D - timedelta(days=400)}, "metabolic_radiotherapy", True, True),
        ({"last_rt_on": add_months(D, -3)}, "radiotherapy_lt_3_months", True, False),  # 3 months exactly
        ({"last_rt_on": add_months(D, -3) + timedelta(days=1)}, "radiotherapy_lt_3_months", True, True),
        ({"life_expectancy_months": 3.0}, "life_expectancy_lt_3_months", True, False),
        ({"life_expectancy_months": 2.9}, "life_expectancy_lt_3_months", True, True),
        ({"life_expectancy_months": None}, "life_expectancy_lt_3_months", True, None),
        ({"canal_narrowing_pct": 25.0}, "canal_narrowing_gt_25_pct", False, False),
        ({"canal_narrowing_pct": 25.1}, "canal_narrowing_gt_25_pct", False, True),
        ({"tumour_cord_distance_mm": 5.0}, "tumour_cord_distance_lt_5_mm", False, False),
        ({"tumour_cord_distance_mm": 4.9}, "tumour_cord_distance_lt_5_mm", False, True),
        ({"mri_contraindicated": True}, "mri_contraindicated", False, True),
    ],
)
def test_rt_sbrt_ci_each_contraindication_with_its_input(
    over: dict[str, object], name: str, absolute: bool, present: bool | None
) -> None:
    result = _ci(**over)
    [ci] = [c for c in result.items if c.name == name]
    assert (ci.absolute, ci.present) == (absolute, present)
    assert ci.finding.input_name is not None
    expected = (
        "contraindicated" if absolute and present else "cannot_decide" if absolute and present is None else "possible"
    )
    assert result.outcome == expected


# ---- RT-SBRT-DOSE, L1658-1665 and Tableau 5 ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spine", "total", "fx", "reirr", "oligo", "verdict"),
    [
        (True, 18.0, 1, False, False, "within"),
        (True, 17.9, 1, False, False, "outside"),
        (True, 24.0, 2, False, False, "within"),
        (True, 24.1, 2, False, False, "outside"),
        (True, 27.0, 3, False, False, "within"),
        (True, 30.1, 3, False, False, "outside"),
        (True, 35.0, 5, False, False, "within"),
        (True, 35.0, 7, False, False, "outside"),
        (True, 35.0, 7, False, True, "within"),  # Tableau 5, oligometastatic
        (True, 27.0, 3, True, False, "within"),  # Tableau 5, re-irradiation
        (False, 25.0, 1, False, False, "within"),
        (False, 25.1, 1, False, False, "outside"),
        (False, 50.0, 5, False, False, "within"),
        (False, 23.9, 3, False, False, "outside"),
        (True, None, None, False, False, "unknown"),
    ],
)
def test_rt_sbrt_dose_ranges(
    spine: bool, total: float | None, fx: int | None, reirr: bool, oligo: bool, verdict: str
) -> None:
    assert sbrt.sbrt_dose_check(spine, total, fx, reirr, oligo).verdict == verdict


# ---- RT-SBRT-FX, L1758-1766 --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("level", "lesion", "body", "total", "fx", "factors"),
    [
        ("T9", "blastic", 0.20, 40.0, 2, set()),
        ("T10", "blastic", 0.20, 40.0, 2, {"vertebral_level"}),
        ("T9", "lytic", 0.20, 40.0, 2, {"lesion_type"}),
        ("T9", "blastic", 0.21, 40.0, 2, {"vertebral_body_involvement_fraction"}),
        ("T9", "blastic", 0.20, 21.0, 1, {"dose_per_fraction_gy"}),
    ],
)
def test_rt_sbrt_fx_fracture_risk_factors(
    level: str, lesion: str, body: float, total: float, fx: int, factors: set[str]
) -> None:
    found, missing = sbrt.fracture_risk_factors(level, False, lesion, body, total, fx)
    assert {f.input_name for f in found} == factors and missing == []


# ---- RT-FRACT-PALL / RT-FRACTURE-RISK ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "rule_id", "preferred", "cortico", "surgery_first"),
    [
        ({"fracture_risk": True}, "RT-FRACTURE-RISK", (30.0, 10), False, True),
        ({"complications": ("épidurite",)}, "RT-FRACT-PALL", (30.0, 10), False, False),
        ({"life_expectancy_months": 2.0}, "RT-FRACT-PALL", (8.0, 1), True, False),  # long/flat bone
        (
            {"life_expectancy_months": 2.0, "spine": True},
            "RT-FRACT-PALL",
            (20.0, 5),
            False,
            False,
        ),  # spine: fractionate
        ({"hard_to_move": True}, "RT-FRACT-PALL", (8.0, 1), True, False),
        ({"frail": True}, "RT-FRACT-PALL", (20.0, 5), False, False),
        ({}, "RT-FRACT-PALL", (30.0, 10), False, False),
    ],
)
def test_rt_fract_pall_scheme(
    kw: dict[str, object], rule_id: str, preferred: tuple[float, int], cortico: bool, surgery_first: bool
) -> None:
    args: dict[str, object] = {
        "spine": False,
        "complications": (),
        "fracture_risk": False,
        "life_expectancy_months": 12.0,
        "frail": False,
        "hard_to_move": False,
    }
    args.update(kw)
    p = conv.palliative_scheme(**args)  # type: ignore[arg-type]
    assert (p.rule_id, p.preferred, p.corticosteroids_48_72h, p.rule_out_surgery_first) == (
        rule_id,
        preferred,
        cortico,
        surgery_first,
    )


def test_rt_fracture_risk_unknown_is_named_missing() -> None:
    p = conv.palliative_scheme(
        spine=False, complications=(), fracture_risk=None, life_expectancy_months=12, frail=False, hard_to_move=False
    )
    assert any("Mirels" in m for m in p.missing)


# ---- RT-DRUG, Tableau 6 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("drug", "days_since", "urgent", "delays", "earliest_after"),
    [
        ("gemcitabine", 27, False, True, 28),
        ("gemcitabine", 28, False, False, 28),
        ("gemcitabine", 10, False, True, 28),
        ("gemcitabine", 7, True, True, 8),  # emergency: at least 8 days
        ("gemcitabine", 8, True, False, 8),
        ("doxorubicin", 7, False, True, 8),
        ("doxorubicin", 8, False, False, 8),
        ("bevacizumab", 27, False, True, 28),
        ("bevacizumab", 28, False, False, 28),
    ],
)
def test_rt_drug_windows_in_days(drug: str, days_since: int, urgent: bool, delays: bool, earliest_after: int) -> None:
    last = D - timedelta(days=days_since)
    d = drugs.drug_rt_window(drug, last, False, D, urgent)
    assert d is not None and d.delays_rt is delays and d.earliest_rt_start == last + timedelta(days=earliest_after)
    # Tableau 6's asterisk (urgency, at least 8 days) stands on gemcitabine's "after" line too (issue 18)
    resume = {"gemcitabine": 8 if urgent else 28, "doxorubicin": 8, "bevacizumab": 28}[drug]
    assert d.resume_after_rt_days == resume


@pytest.mark.parametrize(
    "drug", ["carboplatin", "cisplatin", "vinorelbine", "paclitaxel", "etoposide", "pemetrexed", "docetaxel"]
)
def test_rt_drug_no_window_is_said_explicitly(drug: str) -> None:
    d = drugs.drug_rt_window(drug, D, True, D, False)
    assert d is not None and d.rt_class == "no_window" and "pas de fenêtre" in d.text_fr and d.delays_rt is False


@pytest.mark.parametrize(
    "drug", ["pembrolizumab", "nivolumab", "atezolizumab", "durvalumab", "ipilimumab", "osimertinib"]
)
def test_rt_drug_immunotherapy_and_tki_precaution(drug: str) -> None:
    d = drugs.drug_rt_window(drug, D, True, D, False)
    assert d is not None and d.rt_class == "precaution_rcp" and "RCP" in d.text_fr


def test_rt_drug_window_drug_without_last_dose_is_missing_and_supportive_ignored() -> None:
    d = drugs.drug_rt_window("gemcitabine", None, True, D, False)
    assert d is not None and d.delays_rt is None and d.missing
    assert drugs.drug_rt_window("paracetamol", D, True, D, False) is None


# ---- SURG-LE, L2802-2818 -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("months", "band"),
    [
        (41.9 / DAYS_PER_MONTH, "no_surgery"),
        (42.0 / DAYS_PER_MONTH, "osteosynthesis"),  # 6 weeks exactly: not "less than 6 weeks"
        (1.0, "no_surgery"),
        (12.0, "osteosynthesis"),  # 1 year exactly: not "more than 1 year"
        (12.1, "resection_reconstruction"),
    ],
)
def test_surg_le_bands_at_6_weeks_and_1_year(months: float, band: str) -> None:
    assert surgery.surgery_band(months) == band


def test_surg_le_resumption_3_weeks_or_15_days() -> None:
    r = surgery.resumption_after(D)
    assert (r.standard - D, r.relative_emergency - D) == (timedelta(weeks=3), timedelta(days=15))


def test_rt_postop_window_15_days_to_3_weeks() -> None:
    assert conv.postop_plan(D).start_between == (D + timedelta(days=15), D + timedelta(days=21))


# ---- RT-SBRT-IND, L1615-1625 --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("irradiated", "excludes", "oligo", "curative", "vertebrae", "residue", "indicated"),
    [
        # (1) previously irradiated territory whose cord dose rules out conventional RT (L1617-1619, issue 18)
        (True, True, False, False, None, False, True),
        (True, None, False, False, None, False, None),  # the cord-dose condition unknown: named missing
        (True, False, False, False, None, False, False),  # conventional RT still possible: not case (1)
        (False, None, True, True, 3, False, True),  # (2) oligometastatic, curative, at most 3 adjacent vertebrae
        (False, None, True, True, 4, False, False),
        (False, None, True, True, 4, True, True),  # or a post-operative residue
        (False, None, True, False, 1, False, False),  # not curative intent
        (False, None, None, True, 1, False, None),  # oligometastatic status unknown: named missing
    ],
)
def test_rt_sbrt_ind_the_two_cases_of_the_text(
    irradiated: bool,
    excludes: bool | None,
    oligo: bool | None,
    curative: bool,
    vertebrae: int | None,
    residue: bool,
    indicated: bool | None,
) -> None:
    ind = sbrt.sbrt_indication(
        previously_irradiated=irradiated,
        cord_dose_excludes_conventional=excludes,
        oligometastatic=oligo,
        curative_intent=curative,
        adjacent_vertebrae=vertebrae,
        postoperative_residue=residue,
    )
    assert ind.indicated is indicated
    assert bool(ind.missing) is (indicated is None)
