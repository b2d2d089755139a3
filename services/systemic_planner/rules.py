"""Pure systemic-treatment rules (SYS-*). No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

from contracts import drugs
from shared.dates import add_months

ANTIRESORPTIVES: Final = drugs.ANTIRESORPTIVES
BISPHOSPHONATES: Final = drugs.BISPHOSPHONATES
PLATINUM: Final = frozenset({"cisplatin", "carboplatin", "oxaliplatin"})
NEPHROTOXIC_CHEMO: Final = PLATINUM | {"pemetrexed"}
TKIS: Final = frozenset(
    {
        "osimertinib",
        "gefitinib",
        "erlotinib",
        "afatinib",
        "dacomitinib",
        "alectinib",
        "brigatinib",
        "lorlatinib",
        "crizotinib",
        "ceritinib",
        "entrectinib",
        "capmatinib",
        "tepotinib",
        "selpercatinib",
        "pralsetinib",
        "sotorasib",
        "adagrasib",
        "dabrafenib",
        "trametinib",
        "lazertinib",
    }
)

#: SYS-AR-START: life expectancy threshold (months), strictly above.
AR_START_MIN_LIFE_EXPECTANCY_MONTHS: Final = 3.0


@dataclass(frozen=True)
class ArStartDecision:
    """SYS-AR-START outcome. `trigger` names why ("sre" or "bone_metastasis")."""

    outcome: Literal["start", "not_indicated", "insufficient_data", "already_treated", "no_trigger"]
    trigger: Literal["sre", "bone_metastasis"] | None
    missing: tuple[str, ...] = ()


def antiresorptive_start(
    *, has_sre: bool, bone_metastasis: bool, life_expectancy_months: float | None, on_antiresorptive: bool
) -> ArStartDecision:
    """SYS-AR-START (L1068-1084): after any SRE start whatever the survival; otherwise start at the
    discovery of a bone metastasis when life expectancy is > 3 months."""
    if on_antiresorptive:
        return ArStartDecision("already_treated", None)
    if has_sre:
        return ArStartDecision("start", "sre")
    if not bone_metastasis:
        return ArStartDecision("no_trigger", None)
    if life_expectancy_months is None:
        return ArStartDecision("insufficient_data", "bone_metastasis", ("life expectancy estimate",))
    if life_expectancy_months > AR_START_MIN_LIFE_EXPECTANCY_MONTHS:
        return ArStartDecision("start", "bone_metastasis")
    return ArStartDecision("not_indicated", "bone_metastasis")


# ---- SYS-ZA-DOSE, Tableau 2 (L1153-1182): half-open bands on the initial Cockcroft-Gault clearance ----------
@dataclass(frozen=True)
class ZaDose:
    dose_mg: float | None  # None: contraindicated
    band: str
    next_band_fr: str  # what would change it


def zoledronic_acid_dose(crcl_ml_min: float) -> ZaDose:
    """> 60 -> 4.0 mg; 50-60 -> 3.5; 40 to < 50 -> 3.3; 30 to < 40 -> 3.0; < 30 contraindicated."""
    if crcl_ml_min > 60:
        return ZaDose(4.0, "> 60 mL/min", "la dose baisse à 3,5 mg si la clairance passe à 60 mL/min ou moins")
    if crcl_ml_min >= 50:
        return ZaDose(3.5, "50-60 mL/min", "la dose passe à 4 mg si la clairance dépasse 60 mL/min, à 3,3 mg sous 50")
    if crcl_ml_min >= 40:
        return ZaDose(3.3, "40-49 mL/min", "la dose passe à 3,5 mg à partir de 50 mL/min, à 3,0 mg sous 40")
    if crcl_ml_min >= 30:
        return ZaDose(3.0, "30-39 mL/min", "la dose passe à 3,3 mg à partir de 40 mL/min ; contre-indication sous 30")
    return ZaDose(None, "< 30 mL/min", "l'acide zolédronique redevient possible si la clairance atteint 30 mL/min")


# ---- SYS-VITD-CORR (L837-868, L1124-1127) -------------------------------------------------------------------
VITD_DOSE_IU: Final = 50_000
CALCIUM_INTAKE_MG_DAY: Final = (1000, 1500)


@dataclass(frozen=True)
class VitaminDPlan:
    loading_weekly_doses: int  # 8, 4 or 0 (maintenance only)
    severe_deficiency: bool  # Tableau 1 deficiency (< 10 ng/mL): deep, prolonged hypocalcaemia risk
    what_would_change_fr: str


def vitamin_d_correction(ng_ml: float) -> VitaminDPlan:
    """< 20 ng/mL: 8 weekly 50 000 IU; 20 to < 30: 4 weekly; >= 30: monthly maintenance only."""
    if ng_ml < 20:
        return VitaminDPlan(8, ng_ml < 10, "4 prises seulement si le taux est entre 20 et 30 ng/mL")
    if ng_ml < 30:
        return VitaminDPlan(4, False, "8 prises si le taux est < 20 ng/mL ; entretien seul à partir de 30 ng/mL")
    return VitaminDPlan(0, False, "recharge si le taux redescend sous 30 ng/mL")


# ---- SYS-SCHEDULE (L1128-1136, L1273-1277) ------------------------------------------------------------------
Schedule = Literal["za_3_monthly_2_years", "monthly", "za_spaced_3_monthly"]


def schedule(oligometastatic: bool, good_response: bool, drug: str) -> Schedule:
    """Oligometastatic: zoledronic acid every 3 months for 2 years. Multi-metastatic: monthly; after a complete
    or good response zoledronic acid (not denosumab) may be spaced to every 3 months."""
    if oligometastatic and drug == "zoledronic_acid":
        return "za_3_monthly_2_years"
    if good_response and drug == "zoledronic_acid":
        return "za_spaced_3_monthly"
    return "monthly"


# ---- dates ---------------------------------------------------------------------------------------------------
#: SYS-AR-PREREQ: after an extraction, start once healed, at least 3 weeks to 1 month later.
EXTRACTION_HEALING: Final = (timedelta(weeks=3), 1)  # (minimum, months)
DENTAL_REVIEW_MONTHS: Final = 6
REVIEW_AFTER_YEARS: Final = 2
#: SYS-ONJ: exposed jaw bone for more than 8 weeks despite adequate care.
ONJ_EXPOSURE_WEEKS: Final = 8


def extraction_window(extracted_on: date) -> tuple[date, date]:
    return extracted_on + EXTRACTION_HEALING[0], add_months(extracted_on, EXTRACTION_HEALING[1])


def is_osteonecrosis_of_the_jaw(
    exposure_weeks: float, on_or_after_antiresorptive: bool, craniofacial_irradiation: bool | None
) -> bool | None:
    """SYS-ONJ definition. None when the irradiation history, which the definition excludes, is unknown."""
    if exposure_weeks <= ONJ_EXPOSURE_WEEKS or not on_or_after_antiresorptive:
        return False
    if craniofacial_irradiation is None:
        return None
    return not craniofacial_irradiation
