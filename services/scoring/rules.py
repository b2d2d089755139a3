"""Pure scoring rules: LAB-CA-CRISIS, SCORE-MIRELS, SCORE-SINS, CLASS-OLIGO, IMG-FLARE. No I/O.

Each score returns its components with their points; a missing input gives a component with no points,
and the score is then incomplete: its total is None, never a partial sum shown as complete."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Final, Literal

from contracts import drugs
from shared.dates import add_months

SERVICE: Final = "scoring"

# ---- LAB-CA-CRISIS (L313-315) --------------------------------------------------------------------------
#: corrected calcium strictly above 3.5 mmol/L is an acute hypercalcaemic crisis.
CRISIS_CORRECTED_CALCIUM_MMOL_L: Final = 3.5


def is_hypercalcaemic_crisis(corrected_calcium_mmol_l: float) -> bool:
    return corrected_calcium_mmol_l > CRISIS_CORRECTED_CALCIUM_MMOL_L


@dataclass(frozen=True)
class Item:
    """One scored component: the value it was given and its points (None when the value is missing)."""

    name: str
    value: str | float | bool | None
    points: int | None


@dataclass(frozen=True)
class Scored:
    items: tuple[Item, ...]
    missing: tuple[str, ...] = ()

    @cached_property
    def complete(self) -> bool:
        return all(i.points is not None for i in self.items)

    @cached_property
    def total(self) -> int | None:
        return sum(i.points for i in self.items if i.points is not None) if self.complete else None

    @cached_property
    def known_points(self) -> int:
        return sum(i.points for i in self.items if i.points is not None)


def _item(name: str, value: str | float | bool | None, table: dict[str, int], missing: list[str]) -> Item:
    if value is None or str(value) not in table:
        missing.append(name)
        return Item(name, value, None)
    return Item(name, value, table[str(value)])


# ---- SCORE-MIRELS, Tableau 3 (L1308-1372) ----------------------------------------------------------------
MIRELS_SITE: Final = {
    "humerus": 1,
    "radius_ulna": 1,
    "other_upper_limb": 1,
    "femur_neck": 2,
    "femur_shaft": 2,
    "tibia_fibula": 2,
    "other_lower_limb": 2,
    "femur_trochanteric": 3,
}
LONG_BONE_SITES: Final = frozenset(MIRELS_SITE)
MIRELS_TYPE: Final = {"blastic": 1, "mixed": 2, "lytic": 3}
#: Tableau 3 pain: légère 1, modérée 2, handicapante 3. A painless lesion takes the lowest item.
MIRELS_PAIN: Final = {"none": 1, "mild": 1, "moderate": 2, "functional": 3}


def mirels_size_points(cortex_fraction: float) -> int:
    """< 1/3 of the cortex: 1; 1/3 to 2/3: 2; > 2/3: 3."""
    if cortex_fraction < 1 / 3:
        return 1
    return 2 if cortex_fraction <= 2 / 3 else 3


def mirels(site: str, cortex_fraction: float | None, lesion_type: str | None, pain: str | None) -> Scored:
    """SCORE-MIRELS: the sum of four items, 4 to 12 (the text says 3 to 12; each item is at least 1)."""
    missing: list[str] = []
    size = (
        Item("size", cortex_fraction, mirels_size_points(cortex_fraction))
        if cortex_fraction is not None
        else Item("size", None, None)
    )
    if cortex_fraction is None:
        missing.append("size")
    items = (
        _item("site", site, MIRELS_SITE, missing),
        size,
        _item("lesion_type", lesion_type, MIRELS_TYPE, missing),
        _item("pain", pain, MIRELS_PAIN, missing),
    )
    return Scored(items, tuple(missing))


MirelsDecision = Literal["low", "rcp", "fixation", "high_short_survival", "high_survival_unknown"]


def mirels_decision(total: int, life_expectancy_months: float | None) -> tuple[str, MirelsDecision]:
    """MIRELS-LOW (<= 7), MIRELS-8 (= 8), MIRELS-HIGH (>= 9 and life expectancy > 3 months)."""
    if total <= 7:
        return "MIRELS-LOW", "low"
    if total == 8:
        return "MIRELS-8", "rcp"
    if life_expectancy_months is None:
        return "MIRELS-HIGH", "high_survival_unknown"
    return ("MIRELS-HIGH", "fixation") if life_expectancy_months > 3 else ("MIRELS-HIGH", "high_short_survival")


def ct_osteolysis_criterion(axial_pct: float | None, circumferential_pct: float | None) -> bool | None:
    """MIRELS-HIGH CT criterion. The French text (L1329-1331) requires cortical osteolysis > 30 % in the axial
    plane AND > 50 % of the circumference (RULES.md says "or"; the French text decides). None: not measured."""
    if axial_pct is None or circumferential_pct is None:
        return None
    return axial_pct > 30 and circumferential_pct > 50


# ---- SCORE-SINS (L1375-1392, Fisher 2010) -------------------------------------------------------------------
SINS_PAIN: Final = {"mechanical": 3, "non_mechanical": 1, "neuropathic": 1, "none": 0}
SINS_LESION: Final = {"lytic": 2, "mixed": 1, "blastic": 0}
SINS_ALIGNMENT: Final = {"subluxation_translation": 4, "de_novo_deformity": 2, "normal": 0}
SINS_COLLAPSE: Final = {"gt_50": 3, "lt_50": 2, "none_body_involved_gt_50": 1, "none": 0}
SINS_POSTEROLATERAL: Final = {"bilateral": 3, "unilateral": 1, "none": 0}
SinsLocation = Literal["junctional", "mobile", "semi_rigid", "rigid"]
SINS_LOCATION_POINTS: Final = {"junctional": 3, "mobile": 2, "semi_rigid": 1, "rigid": 0}


def sins_location(level: str) -> SinsLocation | None:
    """Junctional: occiput-C2, C7-T2, T11-L1, L5-S1; mobile: C3-C6, L2-L4; semi-rigid: T3-T10;
    rigid: S2-S5. The coccyx is outside SINS (None)."""
    m = re.fullmatch(r"([CTLS])(\d+)", level)
    if m is None:
        return None
    region, n = m.group(1), int(m.group(2))
    if (region == "C" and (n <= 2 or n == 7)) or (region == "T" and (n <= 2 or n >= 11)):
        return "junctional"
    if (region == "L" and n in (1, 5)) or (region == "S" and n == 1):
        return "junctional"
    if region == "C" or (region == "L" and 2 <= n <= 4):
        return "mobile"
    if region == "T":
        return "semi_rigid"
    return "rigid"


SinsBand = Literal["stable", "potentially_unstable", "unstable"]


def sins_band(total: int) -> SinsBand:
    """0-6 stable, 7-12 potentially unstable, 13-18 unstable."""
    if total <= 6:
        return "stable"
    return "potentially_unstable" if total <= 12 else "unstable"


def sins(
    level: str | None,
    pain: str | None,
    lesion_type: str | None,
    alignment: str | None,
    collapse: str | None,
    posterolateral: str | None,
) -> Scored:
    missing: list[str] = []
    location = sins_location(level) if level else None
    items = (
        _item("location", location, SINS_LOCATION_POINTS, missing),
        _item("pain", pain, SINS_PAIN, missing),
        _item("bone_lesion", lesion_type, SINS_LESION, missing),
        _item("alignment", alignment, SINS_ALIGNMENT, missing),
        _item("vertebral_collapse", collapse, SINS_COLLAPSE, missing),
        _item("posterolateral_involvement", posterolateral, SINS_POSTEROLATERAL, missing),
    )
    return Scored(items, tuple(missing))


# ---- CLASS-OLIGO (L1472-1476, L1621-1625, L2163-2168) --------------------------------------------------------
@dataclass(frozen=True)
class Criterion:
    name: str
    value: str | float | bool | None
    met: bool | None  # None: cannot be judged (missing data)


@dataclass(frozen=True)
class OligoStatus:
    criteria: tuple[Criterion, ...]
    status: Literal["oligometastatic", "multi_metastatic", "undetermined"]
    failing: tuple[str, ...] = field(default=())
    missing: tuple[str, ...] = field(default=())


def oligometastatic(
    sites: int, lesions: int, sizes_cm: list[float | None], primary_controlled: bool | None
) -> OligoStatus:
    """1 to 3 sites, 1 to 5 metastases, each < 5 cm, primary cancer controlled or stable."""
    unknown_sizes = sum(1 for s in sizes_cm if s is None)
    largest = max((s for s in sizes_cm if s is not None), default=None)
    if largest is not None and largest >= 5:
        size_ok: bool | None = False
    elif unknown_sizes or not sizes_cm:
        size_ok = None
    else:
        size_ok = True
    criteria = (
        Criterion("sites_1_to_3", sites, 1 <= sites <= 3),
        Criterion("metastases_1_to_5", lesions, 1 <= lesions <= 5),
        Criterion("each_under_5_cm", largest, size_ok),
        Criterion("primary_controlled", primary_controlled, primary_controlled),
    )
    failing = tuple(c.name for c in criteria if c.met is False)
    missing = tuple(c.name for c in criteria if c.met is None)
    status: Literal["oligometastatic", "multi_metastatic", "undetermined"] = (
        "multi_metastatic" if failing else "undetermined" if missing else "oligometastatic"
    )
    return OligoStatus(criteria, status, failing, missing)


# ---- IMG-FLARE (L357-405, L648-672, L770-772) -----------------------------------------------------------------
EGFR_TKIS: Final = drugs.EGFR_TKIS
ANTIRESORPTIVES: Final = drugs.ANTIRESORPTIVES
METABOLIC_MODALITIES: Final = frozenset({"bone_scan", "fdg_pet", "naf_pet"})
FLARE_WINDOW_MONTHS: Final = 6


def within_flare_window(treatment_started: date, imaging_on: date) -> bool:
    """New foci less than 6 months after an effective treatment started may be a flare."""
    return treatment_started <= imaging_on < add_months(treatment_started, FLARE_WINDOW_MONTHS)
