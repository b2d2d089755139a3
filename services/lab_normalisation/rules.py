"""Pure lab rules: analyte mapping, unit conversion (LAB-UNITS), plausibility, corrected calcium
(LAB-CA-CORR). No I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final, Literal, TypeVar
from zoneinfo import ZoneInfo

from contracts.clinical import Analyte

LOINC: Final = "http://loinc.org"

#: LOINC code -> analyte. Local codes are added from configuration (see `AnalyteMap`).
LOINC_ANALYTES: Final[dict[str, Analyte]] = {
    "17861-6": "total_calcium",  # Calcium [Mass/volume] in Serum or Plasma
    "2000-8": "total_calcium",  # Calcium [Moles/volume] in Serum or Plasma
    "1994-3": "ionised_calcium",  # Calcium.ionized [Moles/volume] in Blood
    "17863-2": "ionised_calcium",  # Calcium.ionized [Mass/volume] in Serum or Plasma
    "1751-7": "albumin",  # Albumin [Mass/volume] in Serum or Plasma
    "2160-0": "creatinine",  # Creatinine [Mass/volume] in Serum or Plasma
    "14682-9": "creatinine",  # Creatinine [Moles/volume] in Serum or Plasma
    "1989-3": "vitamin_d_25oh",  # 25-Hydroxyvitamin D3+D2 [Mass/volume] in Serum or Plasma
    "14635-7": "vitamin_d_25oh",  # 25-Hydroxyvitamin D3 [Moles/volume] in Serum or Plasma
    "777-3": "platelets",  # Platelets [#/volume] in Blood by Automated count
    "5894-1": "prothrombin_pct",  # Prothrombin time (PT) actual/normal in Platelet poor plasma
    "6768-6": "alkaline_phosphatase",  # Alkaline phosphatase [Enzymatic activity/volume] in S/P
    "29463-7": "body_weight",  # Body weight
}


@dataclass(frozen=True)
class Conversion:
    factor: float
    source: str  # where the factor comes from


#: analyte -> canonical unit, and accepted unit (case-insensitive, normalised spelling) -> conversion.
CANONICAL_UNIT: Final[dict[Analyte, str]] = {
    "total_calcium": "mmol/L",
    "ionised_calcium": "mmol/L",
    "albumin": "g/L",
    "creatinine": "umol/L",
    "vitamin_d_25oh": "ng/mL",
    "ctx_serum": "pg/mL",
    "ntx_urine": "nmol BCE/mmol creatinine",
    "platelets": "G/L",
    "prothrombin_pct": "%",
    "alkaline_phosphatase": "U/L",
    "body_weight": "kg",
    "corrected_calcium": "mmol/L",
    "creatinine_clearance": "mL/min",
}
_CA = Conversion(1 / 4.008, "Ca molar mass 40.08 g/mol: mg/dL ÷ 4.008 = mmol/L (RULES.md LAB-UNITS)")
_ID = Conversion(1.0, "same unit")
CONVERSIONS: Final[dict[Analyte, dict[str, Conversion]]] = {
    "total_calcium": {"mmol/l": _ID, "mg/dl": _CA},
    "ionised_calcium": {"mmol/l": _ID, "mg/dl": _CA},
    "albumin": {"g/l": _ID, "g/dl": Conversion(10.0, "1 dL = 0.1 L: g/dL × 10 = g/L")},
    "creatinine": {
        "umol/l": _ID,
        "mg/dl": Conversion(88.42, "creatinine molar mass 113.12 g/mol: mg/dL × 88.42 = µmol/L"),
    },
    "vitamin_d_25oh": {
        "ng/ml": _ID,
        "ug/l": _ID,
        "nmol/l": Conversion(1 / 2.496, "25-OH-D molar mass 400.6 g/mol: nmol/L ÷ 2.496 = ng/mL"),
    },
    "ctx_serum": {"pg/ml": _ID, "ng/l": _ID},
    "ntx_urine": {"nmol bce/mmol creatinine": _ID, "nmol bce/mmol creat": _ID},
    "platelets": {"g/l": _ID, "10*9/l": _ID, "10^9/l": _ID, "/mm3": Conversion(1e-3, "1 /mm3 = 1e6 /L")},
    "prothrombin_pct": {"%": _ID},
    "alkaline_phosphatase": {"u/l": _ID, "iu/l": _ID},
    "body_weight": {"kg": _ID, "g": Conversion(1e-3, "1 g = 0.001 kg")},
}

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


def _unit_key(unit: str) -> str:
    return " ".join(unit.strip().lower().replace("µ", "u").replace("μ", "u").split())


def to_canonical(analyte: Analyte, value: float, unit: str | None) -> tuple[float, str, Conversion]:
    """LAB-UNITS: convert to the canonical unit. Unknown or missing units are rejected, never guessed."""
    if unit is None or not unit.strip():
        raise LabRejection(f"{analyte}: unit missing; a unit is never assumed")
    table = CONVERSIONS.get(analyte)
    if table is None:
        raise LabRejection(f"{analyte}: no conversion table")
    conv = table.get(_unit_key(unit))
    if conv is None:
        raise LabRejection(f"{analyte}: unknown unit {unit!r}; accepted: {', '.join(sorted(table))}")
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


def vitamin_d_class(ng_ml: float) -> VitaminDClass:
    """Tableau 1: < 10 deficiency; 10 to < 30 insufficiency; 30-70 recommended; > 150 possible
    intoxication. The table names no class between 70 and 150: reported as above the recommended range."""
    if ng_ml < 10:
        return "deficiency"
    if ng_ml < 30:
        return "insufficiency"
    if ng_ml <= 70:
        return "recommended"
    if ng_ml <= 150:
        return "above_recommended"
    return "possible_intoxication"


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
