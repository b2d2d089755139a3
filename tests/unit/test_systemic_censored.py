"""Issue 12, systemic planner: a censored lab value is an interval, and a threshold rule decides only when the whole
interval lies on one side of it (or in one band of a table); otherwise "insufficient data", naming the censored
value, and no order. Table-driven from the guideline's own thresholds:
- SYS-ZA-DOSE, Tableau 2 (L1159-1178): > 60 4.0 mg | 50-60 3.5 | 40-49 3.3 | 30-39 3.0; < 30 contraindicated
  (L1155-1156); SYS-DENO "< 30 ml/mn" (L1215-1216); SYS-RENAL-TOX (L742).
- SYS-VITD-CORR (L849-855): < 20 ng/mL 8 weekly doses, 20-30 4 doses; Tableau 1 (L821-831): 30-70 recommended,
  > 150 possible intoxication; < 10 deficiency (the severe one, L795-797).
- LAB-CA-CRISIS (L304-306): corrected calcium > 3.5 mmol/L (the only emergency that waives prerequisites).
- SYS-REVIEW-2Y / SYS-DENO-STOP: the CTX trend (L1244, L1253-1255) only when certain."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from contracts.clinical import NormalisedLab
from contracts.hospital import Comparator
from services.systemic_planner.follow_up import ctx_reading
from services.systemic_planner.labs import calcium
from tests.unit.test_systemic_rules import T0, as_of, drug, env, items, lab, le, met, oligo, ready, run

DAY = 24 * 60


def crcl(minutes: int, value: float, comparator: Comparator | None, creatinine: tuple[float, Comparator | None]) -> Any:
    """A clearance as LAB-CRCL publishes it: bounded by its censored creatinine (flipped: inversely proportional)."""
    at = T0 + timedelta(minutes=minutes)
    return NormalisedLab.model_validate(
        {
            **env(minutes),
            "source": "lab-normalisation",
            "analyte": "creatinine_clearance",
            "result_id": f"crcl-{minutes}",
            "value": value,
            "unit": "mL/min",
            "comparator": comparator,
            "derived_from": [
                {
                    "event_id": uuid.uuid4(),
                    "analyte": "creatinine",
                    "value": creatinine[0],
                    "unit": "µmol/L",
                    "occurred_at": at,
                    "comparator": creatinine[1],
                },
                {"event_id": uuid.uuid4(), "analyte": "body_weight", "value": 70.0, "unit": "kg", "occurred_at": at},
            ],
        }
    )


BASE = [met(), le(1, 12), oligo(3, "multi_metastatic"), *ready()]


@pytest.mark.parametrize(
    ("value", "comparator", "creatinine", "expected"),
    [
        (45.0, None, (106.0, None), 3.3),  # exact: Tableau 2 as before
        (171.8, ">", (40.0, "<"), 4.0),  # creatinine < 40 µmol/L: CrCl > 171.8, above 60 whatever it is
        (60.0, ">", (110.0, "<"), 4.0),  # > 60 is the 4 mg band
        (60.0, ">=", (110.0, "<="), "insufficient"),  # may be exactly 60 (3.5 mg) or more (4 mg)
        (45.0, ">", (150.0, "<"), "insufficient"),  # 3.3, 3.5 or 4 mg
        (38.0, "<", (180.0, ">"), "insufficient"),  # 3.0 mg, or contraindicated below 30
        (13.7, "<", (500.0, ">"), "contraindicated"),  # < 30 whatever it is: SYS-DENO caution, no order
    ],
)
def test_SYS_ZA_DOSE_from_a_censored_clearance_only_when_one_band(
    value: float, comparator: Comparator | None, creatinine: tuple[float, Comparator | None], expected: object
) -> None:
    s, _ = run([*BASE, crcl(2, value, comparator, creatinine)])
    plan = items(s)
    ar = plan["antiresorptive"]
    if isinstance(expected, float):
        [order] = ar.orders
        assert (order.drug, order.dose) == ("zoledronic_acid", expected)
        assert plan["prerequisites"].checks[1].status == "done"
    elif expected == "contraindicated":
        assert ar.orders == [] and ar.rule_id == "SYS-DENO" and f"< {value:g} mL/min" in ar.title
        assert plan["severe-renal-failure"].status == "warning"
    else:
        assert ar.orders == [] and ar.status == "cannot_decide" and ar.severity == "warning"
        assert f"{comparator} {value:g} mL/min" in ar.title and "Données insuffisantes" in ar.text_fr
        reported = f"creatinine {creatinine[1]} {creatinine[0]:g} µmol/L"
        assert ar.missing == [f"exact value: {reported} is censored, measure again"]
        assert reported in ar.text_fr
        renal = next(c for c in plan["prerequisites"].checks if c.name == "renal_function")
        assert renal.status == "cannot_decide" and reported in renal.detail_fr
        assert ar.inputs[0].comparator == comparator
    assert ("severe-renal-failure" in plan) is (expected == "contraindicated" or (value, comparator) == (38.0, "<"))


def test_SYS_RENAL_TOX_a_clearance_possibly_below_30_is_said_not_asserted() -> None:
    s, _ = run([*BASE, crcl(2, 38.0, "<", (180.0, ">")), drug(4, "cisplatin", "started", "2026-10-20")])
    item = items(s)["severe-renal-failure"]
    assert item.status == "cannot_decide" and "< 38 mL/min" in item.title and "possible" in item.title
    assert item.missing == ["exact value: creatinine > 180 µmol/L is censored, measure again"]


@pytest.mark.parametrize(
    ("value", "comparator", "expected"),
    [
        (25.0, None, (4, "info")),  # exact: 20 to 30, 4 weekly doses
        (8.0, "<", (8, "warning")),  # < 8: a severe deficiency whatever it is
        (15.0, "<", (8, "info")),  # < 15: below 20 (8 doses) but maybe not < 10: not called severe
        (25.0 / 2.496, "<", (8, "info")),  # < 25 nmol/L = < 10.016 ng/mL: below 20 (8 doses); the bound scaled to
        # ng/mL (both ends) may be 10.01, so it is not called severe here
        (25.0, "<", None),  # < 25: 8 or 4 doses
        (35.0, ">", None),  # > 35: maintenance, or no supplement above 70
        (150.0, ">", "intoxication"),
        (100.0, ">", None),  # above 70 but maybe not an intoxication
    ],
)
def test_SYS_VITD_CORR_from_a_censored_vitamin_d_only_when_one_band(
    value: float, comparator: Comparator | None, expected: object
) -> None:
    s, _ = run(
        [
            *BASE,
            lab(2, "creatinine_clearance", 75.0, "mL/min"),
            lab(60, "vitamin_d_25oh", value, "ng/mL", comparator=comparator),
        ]
    )
    plan = items(s)
    item = plan["vitamin-d"]
    check = next(c for c in plan["prerequisites"].checks if c.name == "vitamin_d")
    if expected is None:
        assert item.status == "cannot_decide" and item.orders == [] and "censuré" in item.title
        assert item.missing == [f"exact value: 25-OH vitamin D {comparator} {value:g} ng/mL is censored, measure again"]
        assert check.status == "to_do" and "valeur exacte" in check.detail_fr
        assert plan["antiresorptive"].orders == []  # SYS-AR-PREREQ: no order while the prerequisite is unknown
    elif expected == "intoxication":
        assert item.severity == "critical" and item.orders == [] and "> 150 ng/mL" in item.text_fr
    else:
        assert isinstance(expected, tuple)
        weeks, severity = expected
        assert item.orders[0].count == weeks and item.severity == severity
        shown = f"{value:g}" if comparator is None else f"{comparator} {value:g}"
        assert f"25-OH vitamine D {shown} ng/mL" in item.text_fr


@pytest.mark.parametrize(
    ("value", "comparator", "emergency", "hold", "uncertain"),
    [
        (3.6, ">", True, True, False),  # a crisis whatever it is
        (3.0, ">", False, True, False),  # above normal for certain, maybe not a crisis: never an emergency
        (3.6, None, True, True, False),
        (2.0, "<", False, False, False),
        (2.5, ">", False, False, True),  # may be normal or high
        (2.7, "<", False, False, True),
    ],
)
def test_corrected_calcium_thresholds_on_a_censored_value(
    value: float, comparator: Comparator | None, emergency: bool, hold: bool, uncertain: bool
) -> None:
    s, _ = run(
        [
            *BASE,
            lab(2, "creatinine_clearance", 75.0, "mL/min"),
            lab(60, "corrected_calcium", value, "mmol/L", comparator=comparator),
        ]
    )
    ca = calcium(s, as_of())
    assert (ca.emergency, ca.hold_supplements, ca.uncertain is not None) == (emergency, hold, uncertain)
    item = items(s)["vitamin-d"]
    if uncertain:
        assert item.status == "cannot_decide" and item.orders == [] and "mg/j" not in item.text_fr
        assert item.missing == [
            f"exact value: corrected_calcium {comparator} {value:g} mmol/L is censored, measure again"
        ]


@pytest.mark.parametrize(
    ("previous", "last", "trend"),
    [
        ((300.0, None), (520.0, None), "en hausse"),
        ((300.0, None), (200.0, "<"), "sans hausse"),
        ((300.0, None), (300.0, ">"), "en hausse"),
        ((300.0, None), (250.0, ">"), "évolution indéterminée"),
        ((100.0, "<"), (150.0, None), "en hausse"),
        ((100.0, "<"), (80.0, None), "évolution indéterminée"),
    ],
)
def test_ctx_trend_only_when_certain(
    previous: tuple[float, Comparator | None], last: tuple[float, Comparator | None], trend: str
) -> None:
    def ctx(minutes: int, value: float, comparator: Comparator | None) -> Any:
        return lab(minutes, "ctx_serum", value, "pg/mL", interpretation="interpretable", comparator=comparator)

    s, _ = run([ctx(-60 * DAY, *previous), ctx(200, *last)])
    text = ctx_reading(s, as_of()).text_fr
    assert trend in text
    assert f"CTX sérique {last[1] + ' ' if last[1] else ''}{last[0]:g} pg/mL" in text
