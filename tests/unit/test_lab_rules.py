"""LAB-UNITS, LAB-CA-CORR: table-driven from RULES.md and the guideline (L316)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.lab_normalisation.rules import (
    CA_ALBUMIN_WINDOW,
    LabRejection,
    closest_within,
    corrected_calcium,
    to_canonical,
)

# analyte, value, unit as the lab sends it, expected canonical value, canonical unit
CONVERSIONS = [
    ("total_calcium", 2.40, "mmol/L", 2.40, "mmol/L"),
    ("total_calcium", 9.6, "mg/dL", 9.6 / 4.008, "mmol/L"),
    ("total_calcium", 13.6, "mg/dl", 13.6 / 4.008, "mmol/L"),
    ("ionised_calcium", 1.25, "mmol/L", 1.25, "mmol/L"),
    ("ionised_calcium", 5.0, "mg/dL", 5.0 / 4.008, "mmol/L"),
    ("albumin", 28, "g/L", 28, "g/L"),
    ("albumin", 3.0, "g/dL", 30.0, "g/L"),
    ("creatinine", 80, "µmol/L", 80, "umol/L"),
    ("creatinine", 80, "umol/L", 80, "umol/L"),
    ("creatinine", 1.2, "mg/dL", 1.2 * 88.42, "umol/L"),
    ("vitamin_d_25oh", 25, "ng/mL", 25, "ng/mL"),
    ("vitamin_d_25oh", 49.92, "nmol/L", 20.0, "ng/mL"),
    ("vitamin_d_25oh", 74.88, "nmol/L", 30.0, "ng/mL"),
    ("platelets", 250, "G/L", 250, "G/L"),
    ("platelets", 50_000, "/mm3", 50, "G/L"),
    ("prothrombin_pct", 70, "%", 70, "%"),
    ("ctx_serum", 450, "pg/mL", 450, "pg/mL"),
    ("ctx_serum", 450, "ng/L", 450, "pg/mL"),
    ("ntx_urine", 60, "nmol BCE/mmol creatinine", 60, "nmol BCE/mmol creatinine"),
    ("body_weight", 71, "kg", 71, "kg"),
    # UCUM forms seen in real feeds (issue 12), converted by the UCUM library
    ("platelets", 250, "10*3/uL", 250, "G/L"),
    ("platelets", 250, "10*9/L", 250, "G/L"),
    ("platelets", 250, "/nL", 250, "G/L"),
    ("platelets", 250, "10^9/L", 250, "G/L"),
    ("creatinine", 0.08, "mmol/L", 80, "umol/L"),
    ("body_weight", 154, "[lb_av]", 154 * 0.45359237, "kg"),
    ("body_weight", 71000, "g", 71, "kg"),
    ("total_calcium", 2.4, "MMOL/L", 2.4, "mmol/L"),  # UCUM case variants
    ("total_calcium", 9.6, "MG/DL", 9.6 / 4.008, "mmol/L"),
    ("albumin", 28, "G/L", 28, "g/L"),
    ("body_weight", 71, "KG", 71, "kg"),
    ("vitamin_d_25oh", 25, "ug/L", 25, "ng/mL"),
    ("alkaline_phosphatase", 120, "UI/L", 120, "U/L"),
    ("alkaline_phosphatase", 120, "U/L", 120, "U/L"),
]


@pytest.mark.parametrize(("analyte", "value", "unit", "expected", "canonical"), CONVERSIONS)
def test_conversion_to_canonical_units(analyte: str, value: float, unit: str, expected: float, canonical: str) -> None:
    got, got_unit, conv = to_canonical(analyte, value, unit)  # type: ignore[arg-type]
    assert got == pytest.approx(expected, rel=1e-9)
    assert got_unit == canonical
    assert conv.source


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "reason"),
    [
        ("total_calcium", 2.4, None, "unit missing"),
        ("total_calcium", 2.4, "  ", "unit missing"),
        ("total_calcium", 2.4, "mg", "unit 'mg' is not a unit of mmol/L or mg/dL"),
        ("albumin", 28, "mmol/L", "not a unit of g/L"),
        ("total_calcium", 2.4, "mmol/L/furlong", "unknown unit 'mmol/L/furlong' \\(not UCUM\\)"),
        ("total_calcium", 2.4, "Mmol/L", "outside the plausible range"),  # megamole: never read as mmol
        ("total_calcium", 24, "mmol/L", "outside the plausible range"),  # mg/dL sent as mmol/L
        ("albumin", 280, "g/L", "outside the plausible range"),
        ("creatinine", 0.9, "umol/L", "outside the plausible range"),  # mg/dL value with a µmol/L unit
    ],
)
def test_unknown_missing_or_implausible_is_rejected(analyte: str, value: float, unit: str | None, reason: str) -> None:
    with pytest.raises(LabRejection, match=reason):
        to_canonical(analyte, value, unit)  # type: ignore[arg-type]


# L316: corrected Ca = measured Ca + (40 - albumin) / 40
@pytest.mark.parametrize(
    ("ca", "albumin", "expected"),
    [
        (3.30, 28, 3.60),  # the case
        (2.40, 40, 2.40),  # normal albumin: no correction
        (2.40, 44, 2.30),  # high albumin lowers it
        (3.40, 30, 3.65),
        (13.6 / 4.008, 30, 13.6 / 4.008 + 0.25),  # 13.6 mg/dL with 3.0 g/dL
    ],
)
def test_corrected_calcium(ca: float, albumin: float, expected: float) -> None:
    assert corrected_calcium(ca, albumin) == pytest.approx(expected)


T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offsets_h", "expected"),
    [
        ([0], 0),
        ([47, -10], -10),  # closest wins
        ([48], 48),  # exactly the 48 h window: still paired
        ([48.001], None),  # just outside
        ([-48.001, 60], None),
        ([-5, 5], -5),  # tie: the earlier draw, deterministically
    ],
)
def test_albumin_pairing_window(offsets_h: list[float], expected: float | None) -> None:
    cands = [(T0 + timedelta(hours=h), h) for h in offsets_h]
    assert closest_within(T0, cands, CA_ALBUMIN_WINDOW) == expected


@given(st.floats(min_value=2.1, max_value=24.0, allow_nan=False))
def test_calcium_mg_dl_round_trip(mg_dl: float) -> None:
    mmol, _, conv = to_canonical("total_calcium", mg_dl, "mg/dL")
    assert mmol / conv.factor == pytest.approx(mg_dl, rel=1e-12)


@given(st.floats(min_value=0.5, max_value=8.0, allow_nan=False))
def test_albumin_g_dl_round_trip(g_dl: float) -> None:
    g_l, _, conv = to_canonical("albumin", g_dl, "g/dL")
    assert g_l == pytest.approx(g_dl * 10) and g_l / conv.factor == pytest.approx(g_dl)


@given(st.floats(min_value=1.0, max_value=990.0, allow_nan=False))
def test_vitamin_d_nmol_round_trip(nmol: float) -> None:
    ng, _, conv = to_canonical("vitamin_d_25oh", nmol, "nmol/L")
    assert ng * 2.496 == pytest.approx(nmol) and ng / conv.factor == pytest.approx(nmol)


def test_LAB_UNITS_conversions_are_thread_safe() -> None:
    """Decoding runs in worker threads: UCUM conversions from many threads at once give the single-thread answer."""
    from concurrent.futures import ThreadPoolExecutor

    from services.lab_normalisation import units

    cases = [("body_weight", "[lb_av]"), ("body_weight", "[LB_AV]"), ("creatinine", "mmol/L"), ("platelets", "10*3/uL")]
    units.conversion.cache_clear()
    units._factor_to.cache_clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda c: units.conversion(*c).factor, cases * 25))
    expected = [units.conversion(*c).factor for c in cases] * 25
    assert got == expected
