"""Pure lab rules: unit conversion (LAB-UNITS), plausibility, corrected calcium
(LAB-CA-CORR). No I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Final, Literal, TypeVar
from zoneinfo import ZoneInfo

from contracts.clinical import Analyte
from contracts.hospital import Comparator
from services.lab_normalisation.units import UNITS, Conversion, UnitRejection, conversion

#: analyte -> canonical unit (LAB-UNITS; conversions in units.py, by UCUM)
CANONICAL_UNIT: Final[dict[Analyte, str]] = {a: u.canonical for a, u in UNITS.items()}

#: Physiological plausibility in canonical units: outside this a value is a unit or entry error.
PLAUSIBLE: Final[dict[Analyte, tuple[float, float]]] = {
    "total_calcium": (0.5, 6.0),
    "ionised_calcium": (0.2, 3.5),
    "albumin": (5.0, 80.0),
    "creatinine": (10.0, 3000.0),
    "vitamin_d_25oh": (0.0, 400.0),
    "ctx_serum": (0.0, 20_000.0),
    "ntx_urine": (0.0, 3000.0),
    "platelets": (0.0, 3000.0),
    "prothrombin_pct": (0.0, 150.0),
    "alkaline_phosphatase": (0.0, 10_000.0),
    "body_weight": (20.0, 350.0),
}

#: LAB-CA-CORR: default pairing window between calcium and albumin draws.
CA_ALBUMIN_WINDOW: Final = timedelta(hours=48)


class LabRejection(ValueError):
    """The result cannot be normalised safely; the reason says precisely why."""


def to_canonical(analyte: Analyte, value: float, unit: str | None) -> tuple[float, str, Conversion]:
    """LAB-UNITS: convert to the canonical unit. Unknown or missing units are rejected, never guessed."""
    if unit is None or not unit.strip():
        raise LabRejection(f"{analyte}: unit missing; a unit is never assumed")
    try:
        conv = conversion(analyte, unit)
    except UnitRejection as exc:
        raise LabRejection(str(exc)) from exc
    canonical = value * conv.factor
    low, high = PLAUSIBLE[analyte]
    if not low <= canonical <= high:
        raise LabRejection(
            f"{analyte}: {canonical:.4g} {CANONICAL_UNIT[analyte]} is outside the plausible range "
            f"{low:g}-{high:g}; check the value and its unit"
        )
    return canonical, CANONICAL_UNIT[analyte], conv


def corrected_calcium(total_calcium_mmol_l: float, albumin_g_l: float) -> float:
    """LAB-CA-CORR (L316): measured Ca + (40 − albumin g/L) / 40, in mmol/L."""
    return total_calcium_mmol_l + (40.0 - albumin_g_l) / 40.0


T = TypeVar("T")


def closest_within(at: datetime, candidates: Iterable[tuple[datetime, T]], window: timedelta) -> T | None:
    """LAB-CA-CORR pairing: the candidate closest in time to `at`, no further than `window`.
    Ties go to the earlier draw (deterministic)."""
    best: tuple[timedelta, datetime, T] | None = None
    for when, item in candidates:
        gap = abs(when - at)
        if gap > window:
            continue
        if best is None or (gap, when) < (best[0], best[1]):
            best = (gap, when, item)
    return None if best is None else best[2]


# ---- LAB-CRCL (L1153-1156) -------------------------------------------------------------------------
def age_in_years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def cockcroft_gault(age_years: int, weight_kg: float, creatinine_umol_l: float, female: bool) -> float:
    """LAB-CRCL: (140 − age) × weight / (0.815 × creatinine µmol/L), × 0.85 for a woman; mL/min."""
    clearance = (140 - age_years) * weight_kg / (0.815 * creatinine_umol_l)
    return clearance * 0.85 if female else clearance


# ---- LAB-VITD, Tableau 1 (L819-836) ----------------------------------------------------------------
VitaminDClass = Literal["deficiency", "insufficiency", "recommended", "above_recommended", "possible_intoxication"]


#: Tableau 1 bounds in each of its two units: (deficiency below, insufficiency below, recommended up to,
#: possible intoxication above). The table gives both columns, so a result is classed in the unit it was
#: measured in: 24.99 nmol/L is a deficiency (< 25 nmol/L) although it converts to 10.01 ng/mL.
VITAMIN_D_BOUNDS: Final[dict[str, tuple[float, float, float, float]]] = {
    "ng/mL": (10, 30, 70, 150),
    "nmol/L": (25, 75, 175, 375),
}


def vitamin_d_class(value: float, unit: Literal["ng/mL", "nmol/L"] = "ng/mL") -> VitaminDClass:
    """Tableau 1 (L819-836): < 10 ng/mL (< 25 nmol/L) deficiency; 10 to < 30 (25 to < 75) insufficiency;
    30 to 70 (75 to 175) recommended; > 150 (> 375) possible intoxication. The table names no class between
    70 and 150 ng/mL (175 and 375 nmol/L): reported as above the recommended range. Strict comparisons on
    the unrounded value."""
    deficiency, insufficiency, recommended, intoxication = VITAMIN_D_BOUNDS[unit]
    if value < deficiency:
        return "deficiency"
    if value < insufficiency:
        return "insufficiency"
    if value <= recommended:
        return "recommended"
    if value <= intoxication:
        return "above_recommended"
    return "possible_intoxication"


def vitamin_d_bounded_class(
    value: float, unit: Literal["ng/mL", "nmol/L"], comparator: str | None
) -> VitaminDClass | None:
    """The Tableau 1 class of a censored result when its bound settles it ("< 10 ng/mL" is a deficiency), else
    None ("< 20 ng/mL" may be a deficiency or an insufficiency). A censored value is never classed as exact."""
    if comparator is None:
        return vitamin_d_class(value, unit)
    if comparator in ("<", "<="):
        top = value if comparator == "<=" else math.nextafter(value, -math.inf)
        low, high = vitamin_d_class(0.0, unit), vitamin_d_class(max(top, 0.0), unit)
    else:
        bottom = value if comparator == ">=" else math.nextafter(value, math.inf)
        low, high = vitamin_d_class(bottom, unit), vitamin_d_class(math.inf, unit)
    return low if low == high else None


# ---- censored values (issue 12) -------------------------------------------------------------------------
def flip(comparator: Comparator | None) -> Comparator | None:
    """The bound on a quantity that decreases when this input increases."""
    return {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(comparator or "")  # type: ignore[return-value]


def combine_bounds(bounds: list[Comparator | None]) -> tuple[Comparator | None, bool]:
    """The bound on a quantity increasing in every input, each given as its bound direction (already flipped
    for decreasing inputs). Returns (comparator, True), or (None, False) when the directions disagree."""
    given = [b for b in bounds if b is not None]
    if not given:
        return None, True
    directions = {b[0] for b in given}
    if len(directions) > 1:
        return None, False
    direction = directions.pop()
    strict = any(len(b) == 1 for b in given)
    return (direction if strict else f"{direction}="), True  # type: ignore[return-value]


# ---- LAB-CTX (L225-240) -------------------------------------------------------------------------------
CTX_LATEST_LOCAL_HOUR: Final = time(9, 0)


def ctx_interpretability(collected_at: datetime, fasting: bool | None, tz: ZoneInfo) -> tuple[bool, str | None]:
    """Serum CTX is valid only drawn fasting before 09:00 local time. Returns (interpretable, why not)."""
    local = collected_at.astimezone(tz).time()
    if local >= CTX_LATEST_LOCAL_HOUR:
        return False, f"prélevé à {local:%H:%M} (après 09:00)"
    if fasting is None:
        return False, "statut à jeun inconnu"
    if not fasting:
        return False, "prélèvement non à jeun"
    return True, None
