"""shared/clinical/censored.py: a censored value is an interval, and a threshold decides only when the whole interval
lies on one side of it (issue 12). Table-driven."""

from __future__ import annotations

import math

import pytest

from contracts.hospital import Comparator
from shared.clinical.censored import Interval, Side, Strictness, band, interval, shown, side, side_of


@pytest.mark.parametrize(
    ("value", "comparator", "expected"),
    [
        (3.6, None, Interval(3.6, 3.6)),
        (3.6, ">", Interval(3.6, math.inf, True, True)),
        (3.6, ">=", Interval(3.6, math.inf, False, True)),
        (40, "<", Interval(-math.inf, 40, True, True)),
        (40, "<=", Interval(-math.inf, 40, True, False)),
    ],
)
def test_a_reported_value_is_an_interval(value: float, comparator: Comparator | None, expected: Interval) -> None:
    assert interval(value, comparator) == expected
    assert interval(value, comparator).exact is (comparator is None)


# LAB-CA-CRISIS "> 3.5"; IR-CEMENT "> 50"; SYS-ZA-DOSE ">= 30" (Tableau 2: 30-39 is a dose band)
@pytest.mark.parametrize(
    ("value", "comparator", "threshold", "strictness", "expected"),
    [
        (3.6, ">", 3.5, ">", "above"),  # > 3.6 is above 3.5 whatever it is
        (3.5, ">", 3.5, ">", "above"),  # > 3.5 meets "> 3.5"
        (3.5, ">=", 3.5, ">", "straddles"),  # >= 3.5 may be exactly 3.5, which is not > 3.5
        (3.5, None, 3.5, ">", "below"),
        (3.504, None, 3.5, ">", "above"),
        (2.5, ">", 3.5, ">", "straddles"),  # > 2.5 may or may not be a crisis
        (2.0, "<", 3.5, ">", "below"),
        (3.6, "<", 3.5, ">", "straddles"),
        (3.5, "<=", 3.5, ">", "below"),
        (3.5, "<", 3.5, ">", "below"),
        (30, "<", 30, ">=", "below"),  # CrCl < 30: below the ">= 30" band
        (30, "<=", 30, ">=", "straddles"),  # <= 30 may be exactly 30
        (30, ">=", 30, ">=", "above"),
        (29, ">", 30, ">=", "straddles"),
        (30, None, 30, ">=", "above"),
        (50, ">", 50, ">", "above"),  # platelets > 50 G/L
        (50, ">=", 50, ">", "straddles"),
        (20, "<", 50, ">", "below"),
        (80, "<", 50, ">", "straddles"),
    ],
)
def test_side_of_a_threshold(
    value: float, comparator: Comparator | None, threshold: float, strictness: Strictness, expected: Side
) -> None:
    assert side_of(value, comparator, threshold, strictness) == expected


@pytest.mark.parametrize(
    ("iv", "factor", "expected"),
    [
        (interval(10, "<"), 2.496, Interval(-math.inf, 24.96, True, True)),  # 25-OH D ng/mL -> nmol/L
        (interval(14.4, ">"), 1 / 4.008, Interval(14.4 / 4.008, math.inf, True, True)),  # calcium mg/dL -> mmol/L
        (interval(40, ">="), -1 / 40, Interval(-math.inf, -1.0, True, False)),  # a decreasing term swaps the bounds
        (interval(5, None), 10, Interval(50, 50)),
    ],
)
def test_unit_conversion_scales_both_bounds(iv: Interval, factor: float, expected: Interval) -> None:
    got = iv.scaled(factor)
    assert (got.lo_open, got.hi_open) == (expected.lo_open, expected.hi_open)
    assert got.lo == pytest.approx(expected.lo) and got.hi == pytest.approx(expected.hi)


def test_a_scaled_bound_keeps_its_side() -> None:
    # < 10 ng/mL is below 25 nmol/L (Tableau 1 deficiency) in either unit
    assert side(interval(10, "<").scaled(2.496), 25, ">=") == "below"
    assert side(interval(10, "<=").scaled(2.5), 25, ">=") == "straddles"


def test_sum_of_intervals() -> None:
    # LAB-CA-CORR: Ca > 3.6 with albumin exactly 40 g/L: corrected > 3.6
    corrected = interval(3.6, ">").plus(interval(40, None).scaled(-1 / 40).shifted(1.0))
    assert corrected == Interval(3.6, math.inf, True, True)
    assert interval(3.6, "<").plus(interval(30, "<").scaled(-1 / 40)).lo == -math.inf


# Tableau 2 (SYS-ZA-DOSE) cuts: < 30 | 30-39 | 40-49 | 50-60 | > 60
ZA: list[tuple[float, Strictness]] = [(30.0, ">="), (40.0, ">="), (50.0, ">="), (60.0, ">")]


@pytest.mark.parametrize(
    ("value", "comparator", "expected"),
    [
        (45, None, 2),
        (60, None, 3),
        (60, ">", 4),
        (60, ">=", None),  # 60 (3.5 mg) or more (4 mg)
        (70, ">", 4),
        (30, "<", 0),
        (35, "<", None),
        (35, ">", None),
        (29.99, None, 0),
    ],
)
def test_band_only_when_the_interval_lies_in_one(
    value: float, comparator: Comparator | None, expected: int | None
) -> None:
    assert band(interval(value, comparator), ZA) == expected


def test_shown_keeps_the_comparator() -> None:
    assert shown(3.6, ">", "mmol/L") == "> 3.6 mmol/L"
    assert shown(40, "<", "µmol/L") == "< 40 µmol/L"
    assert shown(2.4, None, "mmol/L") == "2.4 mmol/L"
