"""SURG-LE: surgery and life expectancy; resumption of chemotherapy and RT after surgery. Pure, no I/O.

Chirurgie des métastases osseuses des membres: L2802-2818 (life-expectancy bands), L2855-2861 (pathological
fracture), L2932-2956 (chemotherapy and RT resume 3 weeks after surgery; 15 days in a relative emergency, healed
skin, with the surgeon's agreement)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

from services.radiotherapy_planner.rules.common import DAYS_PER_MONTH

NO_SURGERY_BELOW: Final = timedelta(weeks=6)  # "moins de 6 semaines" (L2804)
RESECTION_ABOVE_MONTHS: Final = 12.0  # "supérieure à 1 an" (L2810)
RESUME_AFTER: Final = timedelta(weeks=3)  # L2935-2937
RESUME_AFTER_RELATIVE_EMERGENCY: Final = timedelta(days=15)  # L2955-2956

SurgeryBand = Literal["no_surgery", "osteosynthesis", "resection_reconstruction"]


def life_expectancy_days(months: float) -> float:
    return months * DAYS_PER_MONTH


def surgery_excluded(life_expectancy_months: float) -> bool:
    """< 6 weeks of expected survival: no surgery, and no urgent local procedure (analgesia, perhaps RT)."""
    return life_expectancy_days(life_expectancy_months) < NO_SURGERY_BELOW.days


def surgery_band(life_expectancy_months: float) -> SurgeryBand:
    """< 6 weeks: none; > 1 year: resection-reconstruction; in between: osteosynthesis / stabilisation."""
    if surgery_excluded(life_expectancy_months):
        return "no_surgery"
    if life_expectancy_months > RESECTION_ABOVE_MONTHS:
        return "resection_reconstruction"
    return "osteosynthesis"


BAND_TEXT: Final[dict[SurgeryBand, str]] = {
    "no_surgery": (
        "Espérance de vie inférieure à 6 semaines : aucun bénéfice attendu d'une chirurgie ni d'un geste local "
        "urgent ; antalgie efficace, éventuellement radiothérapie."
    ),
    "osteosynthesis": (
        "Espérance de vie intermédiaire (6 semaines à 1 an) : ostéosynthèse ou stabilisation, techniques moins "
        "agressives."
    ),
    "resection_reconstruction": (
        "Espérance de vie supérieure à 1 an : une chirurgie de résection-reconstruction assure une stabilisation "
        "durable et un contrôle local prolongé."
    ),
}


@dataclass(frozen=True)
class Resumption:
    """When chemotherapy and RT may resume after surgery."""

    standard: date
    relative_emergency: date


def resumption_after(surgery_on: date) -> Resumption:
    return Resumption(surgery_on + RESUME_AFTER, surgery_on + RESUME_AFTER_RELATIVE_EMERGENCY)
