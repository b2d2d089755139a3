"""LAB-UNITS with UCUM: every unit a lab sends is parsed by a maintained UCUM implementation (`ucumvert`, the
UCUM 2.2 grammar and unit table on top of `pint`), and converted by dimension. What UCUM cannot know is kept
here, per analyte: the canonical unit, the molar factor between a mass and a substance concentration (from
RULES.md LAB-UNITS), and the few non-UCUM spellings French labs use (G/L, UI/L, nmol BCE/mmol creatinine).
A unit is never guessed: a unit that is not UCUM (even after a case fold) and not one of those spellings, or
that is not of the analyte's dimension, is rejected with the reason. Pure, no I/O."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from ucumvert import PintUcumRegistry

from contracts.clinical import Analyte


class UnitRejection(ValueError):
    pass


@dataclass(frozen=True)
class Conversion:
    factor: float
    source: str  # where the factor comes from


@dataclass(frozen=True)
class AnalyteUnits:
    canonical: str  #: the unit published in NormalisedLab
    ucum: str  #: the same in UCUM
    #: the other dimension a lab may use (mass <-> substance): (UCUM reference unit, factor to canonical, source)
    molar: tuple[str, float, str] | None = None
    #: non-UCUM spellings (lower case, spaces collapsed) -> UCUM
    aliases: dict[str, str] = field(default_factory=dict)


_PER_L = {"g/l": "10*9/L", "giga/l": "10*9/L", "10^9/l": "10*9/L", "10^3/ul": "10*3/uL", "10^3/mm3": "10*3/mm3"}
_NTX = "nmol{BCE}/mmol{creat}"
UNITS: Final[dict[Analyte, AnalyteUnits]] = {
    "total_calcium": AnalyteUnits(
        "mmol/L", "mmol/L", ("mg/dL", 1 / 4.008, "Ca 40.08 g/mol: mg/dL ÷ 4.008 = mmol/L (RULES.md LAB-UNITS)")
    ),
    "ionised_calcium": AnalyteUnits(
        "mmol/L", "mmol/L", ("mg/dL", 1 / 4.008, "Ca 40.08 g/mol: mg/dL ÷ 4.008 = mmol/L (RULES.md LAB-UNITS)")
    ),
    "albumin": AnalyteUnits("g/L", "g/L"),
    "creatinine": AnalyteUnits(
        "umol/L", "umol/L", ("mg/dL", 88.42, "creatinine 113.1 g/mol: mg/dL × 88.42 = µmol/L (RULES.md LAB-UNITS)")
    ),
    "vitamin_d_25oh": AnalyteUnits(
        "ng/mL", "ng/mL", ("nmol/L", 1 / 2.496, "25-OH-D 400.6 g/mol: nmol/L ÷ 2.496 = ng/mL (RULES.md LAB-UNITS)")
    ),
    "ctx_serum": AnalyteUnits("pg/mL", "pg/mL"),
    "ntx_urine": AnalyteUnits(
        "nmol BCE/mmol creatinine",
        _NTX,
        aliases={"nmol bce/mmol creatinine": _NTX, "nmol bce/mmol creat": _NTX, "nmol bce/mmol cr": _NTX},
    ),
    # "G/L" (giga per litre) is how French labs write 10*9/L; in UCUM "G" is the gauss
    "platelets": AnalyteUnits("G/L", "10*9/L", aliases=_PER_L),
    "prothrombin_pct": AnalyteUnits("%", "%"),
    # the international unit of an enzyme is the enzyme unit U (IUB): IU/L, UI/L, [IU]/L = U/L
    "alkaline_phosphatase": AnalyteUnits("U/L", "U/L", aliases={"iu/l": "U/L", "ui/l": "U/L", "[iu]/l": "U/L"}),
    "body_weight": AnalyteUnits("kg", "kg"),
    "corrected_calcium": AnalyteUnits("mmol/L", "mmol/L"),
    "creatinine_clearance": AnalyteUnits("mL/min", "mL/min"),
}


@cache
def registry() -> Any:
    """The UCUM registry (loads the UCUM table once, ~0.5 s)."""
    return PintUcumRegistry()


def _key(unit: str) -> str:
    return " ".join(unit.strip().replace("µ", "u").replace("μ", "u").split())


def _fold(unit: str) -> str:
    """The case-sensitive UCUM spelling of a case variant (MMOL/L, MG/DL, KG, [LB_AV]): lower case, but the
    enzyme unit U stays upper case."""
    return re.sub(r"(?<![a-z\[])u(?=/|$)", "U", unit.lower())


def _parse(unit: str) -> Any | None:
    try:
        return registry().from_ucum(unit)
    except Exception:  # the parser raises its own error types on non-UCUM text
        return None


def _ratio(q: Any, ref: str) -> float | None:
    try:
        return float((q / registry().from_ucum(ref)).to("dimensionless").magnitude)
    except Exception:  # dimensionality error: not the same kind of quantity
        return None


def _clean(factor: float) -> float:
    """Powers of ten computed in binary floating point (0.9999999999999999): 12 significant digits."""
    return float(f"{factor:.12g}")


#: pint's registry and the UCUM parser are not thread-safe, and decoding runs in worker threads: one parse at a time
#: (conversions are cached, so the lock is taken once per distinct unit).
_UCUM_LOCK = threading.Lock()


@cache
def conversion(analyte: Analyte, unit: str) -> Conversion:
    """Factor from `unit` to the analyte's canonical unit. Raises UnitRejection."""
    with _UCUM_LOCK:
        return _conversion(analyte, unit)


def _conversion(analyte: Analyte, unit: str) -> Conversion:
    spec = UNITS[analyte]
    key = _key(unit)
    if re.search(r"eq\b|eq/", key, re.IGNORECASE):  # UCUM makes 1 eq = 1 mol, but 1 mEq of Ca2+ is 0.5 mmol
        raise UnitRejection(
            f"{analyte}: unit {unit!r} counts equivalents, which depend on the ion's charge; never converted"
        )
    tried: list[str] = []
    alias = spec.aliases.get(key.lower())
    for ucum in [alias] if alias else dict.fromkeys([key, _fold(key)]):
        q = _parse(ucum)
        if q is None:
            continue
        tried.append(ucum)
        factor = _ratio(q, spec.ucum)
        if factor is not None:
            return Conversion(_clean(factor), f"UCUM: {ucum} -> {spec.ucum}")
        if spec.molar is not None and (f := _ratio(q, spec.molar[0])) is not None:
            return Conversion(_clean(f) * spec.molar[1], f"UCUM: {ucum} -> {spec.molar[0]}; {spec.molar[2]}")
    accepted = spec.ucum + (f" or {spec.molar[0]}" if spec.molar else "")
    if not tried:
        raise UnitRejection(f"{analyte}: unknown unit {unit!r} (not UCUM); accepted: units of {accepted}")
    raise UnitRejection(f"{analyte}: unit {unit!r} is not a unit of {accepted}")


def value_in(analyte: Analyte, value: float, unit: str, target: str) -> float | None:
    """`value` (in `unit`) expressed in the UCUM unit `target` when both are of one dimension, else None
    (e.g. a vitamin D sent in nmol/L read in nmol/L, never through the molar factor)."""
    factor = _factor_to(analyte, unit, target)
    return None if factor is None else value * factor


@cache
def _factor_to(analyte: Analyte, unit: str, target: str) -> float | None:
    spec = UNITS[analyte]
    key = _key(unit)
    with _UCUM_LOCK:
        for ucum in [spec.aliases.get(key.lower()) or key, _fold(key)]:
            q = _parse(ucum)
            if q is not None and (f := _ratio(q, target)) is not None:
                return _clean(f)
    return None
