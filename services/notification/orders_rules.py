"""The guideline's tables and thresholds the order checks read (CDS Hooks `order-sign` / `order-select`). Pure.

Tableau 2 is the systemic planner's too (services/systemic_planner/rules.py, which notification may not import):
tests/unit/test_cds_orders.py checks both give the same dose on every band and edge, so they cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from contracts.hospital import Comparator
from shared.clinical.censored import Side, Strictness, band, interval, side_of

#: SYS-ZA-DOSE, Tableau 2 (L1159-1178): cut points of the initial Cockcroft-Gault clearance, ascending, with how each
#: band's lower bound is stated: < 30 | 30-39 | 40-49 | 50-60 | > 60 ("contre-indiqué ... < 30 ml/mn", L1155-1156).
ZA_CUTS: Final[list[tuple[float, Strictness]]] = [(30.0, ">="), (40.0, ">="), (50.0, ">="), (60.0, ">")]
#: the dose of each band (mg), None = contraindicated (L1155-1156); the band's label as Tableau 2 prints it
ZA_BANDS: Final[list[tuple[float | None, str]]] = [
    (None, "< 30 mL/min"),
    (3.0, "30-39 mL/min"),
    (3.3, "40-49 mL/min"),
    (3.5, "50-60 mL/min"),
    (4.0, "> 60 mL/min"),
]
#: SYS-DENO (L1215-1218) and SYS-ZA-DOSE (L1155-1156): severe renal failure is "< 30 ml/mn"
SEVERE_RENAL_FAILURE_ML_MIN: Final = 30.0
#: How old a clearance may be and still count as current: 30 days, as the systemic planner's recency (zoledronic acid
#: is dosed on renal function and given monthly, Tableau 2 L1153-1184; renal function checked before each infusion,
#: L770-772). Older: insufficient data, never a dose.
CRCL_MAX_AGE: Final = timedelta(days=30)
#: a clinical time later than now by more than this is not current (clock skew between hospital systems)
FUTURE_TOLERANCE: Final = timedelta(minutes=10)
#: SYS-ZA-DOSE: Tableau 2 is the dose "à administrer mensuellement" (L1182; "mensuel", L1136); spacing to every three
#: months is allowed (L1132, L1139-1140). An interval shorter than four weeks (28 days) is outside the text.
ZA_MIN_INTERVAL_DAYS: Final = 28.0
#: SYS-DENO: "la dose est de 120 mg mensuel par voie sous-cutanée" (L1210), and "pas suffisamment de données pour
#: espacer les injections de denosumab" (L1136, L1140-1142): 120 mg every four weeks to one month (28 to 31 days)
DENO_DOSE_MG: Final = 120.0
DENO_INTERVAL_DAYS: Final = (28.0, 31.0)
#: the timing a corrected order gets: monthly (L1182, L1210)
MONTHLY: Final = {"frequency": 1, "period": 1, "periodUnit": "mo"}
#: Osteoporosis products of the same substances (5 mg yearly; 60 mg every 6 months), by brand name: not the
#: oncology forms the text doses (Zometa® 4 mg, L1153, L1168-1170; Xgeva® 120 mg, L1210). Their dose is never
#: "corrected" in place ("Aclasta 4 mg" is no product).
OSTEOPOROSIS_FORMS: Final[dict[str, tuple[str, str]]] = {
    "aclasta": ("zoledronic_acid", "Aclasta®"),
    "reclast": ("zoledronic_acid", "Reclast®"),
    "prolia": ("denosumab", "Prolia®"),
    "obodence": ("denosumab", "Obodence®"),
    "jubbonti": ("denosumab", "Jubbonti®"),
    "stoboclo": ("denosumab", "Stoboclo®"),
    "conexxence": ("denosumab", "Conexxence®"),
}
#: LAB-CA-CRISIS (L304-306): "crise aiguë hypercalcémique ... lorsque la calcémie corrigée est supérieure à
#: 3,5 mmol/L"; the crisis is current while its newest value is no older than scoring's currency (72 h, services/
#: scoring/rules.py Policy.calcium_current): scoring keeps an ended episode's alert as it was
CRISIS_CALCIUM_MMOL_L: Final = 3.5
CALCIUM_CURRENT: Final = timedelta(hours=72)
#: SYS-AR-PREREQ (L795-801, L1086-1100, L1267-1273): the checks that hold an anti-resorptive unless an emergency
HOLDING_PREREQUISITES: Final = ("vitamin_d", "dental_assessment", "extraction_healing")
#: the check the systemic plan lists only for a patient already under an anti-resorptive (SYS-AR-PREREQ, L1098-1100)
ON_TREATMENT_CHECK: Final = "dental_review_6_months"


#: French names of the drugs the cards name (others: as the prescriber wrote them in the draft)
DRUG_FR: Final[dict[str, str]] = {
    "zoledronic_acid": "acide zolédronique",
    "denosumab": "dénosumab",
    "pamidronate": "pamidronate",
    "ibandronic_acid": "acide ibandronique",
    "clopidogrel": "clopidogrel",
    "aspirin": "aspirine",
    "gemcitabine": "gemcitabine",
    "doxorubicin": "doxorubicine",
    "bevacizumab": "bévacizumab",
}


@dataclass(frozen=True)
class ZaBand:
    dose_mg: float | None  # None: contraindicated
    label: str


def za_band(crcl_ml_min: float, comparator: Comparator | None) -> ZaBand | None:
    """SYS-ZA-DOSE, Tableau 2: the band a clearance lies wholly in; None when a censored value spans two bands (issue
    12: "> 45" may be 3.3, 3.5 or 4.0 mg: no dose is chosen from a bound)."""
    if math.isnan(crcl_ml_min):
        return None
    b = band(interval(crcl_ml_min, comparator), ZA_CUTS)
    if b is None:
        return None
    dose, label = ZA_BANDS[b]
    return ZaBand(dose, label)


def severe_renal_failure(crcl_ml_min: float, comparator: Comparator | None) -> Side:
    """ "below" = CrCl < 30 whatever the censored value is, "above" = certainly not, "straddles" = undecided."""
    return side_of(crcl_ml_min, comparator, SEVERE_RENAL_FAILURE_ML_MIN, ">=")


#: RT-DRUG, Tableau 6 (L2264-2312): "Compatible — Pas de fenêtre" with a palliative radiotherapy (L1974-1976); the
#: radiotherapy planner's NO_WINDOW (services/radiotherapy_planner/rules/drugs.py; a test keeps both equal)
TABLEAU_6_NO_WINDOW: Final = frozenset(
    {"carboplatin", "cisplatin", "vinorelbine", "paclitaxel", "etoposide", "pemetrexed", "docetaxel"}
)


#: SYS-RENAL-TOX (L770-772): "utilisation concomitante des sels de platine, du pemetrexed et des biphosphonates en
#: raison d'une néphrotoxicité cumulative"; the systemic planner's NEPHROTOXIC_CHEMO (a test keeps both equal)
NEPHROTOXIC_WITH_BISPHOSPHONATES: Final = frozenset({"cisplatin", "carboplatin", "oxaliplatin", "pemetrexed"})


#: IR-CEMENT haemostasis (L2626-2640): what the text says of each antithrombotic before a cementoplasty.
CEMENT_STOP_FR: Final[dict[str, str]] = {
    "clopidogrel": "arrêt du clopidogrel cinq jours avant le geste",
    "doac": "arrêt des anticoagulants oraux directs 48 h avant le geste",
    "vka": "anticoagulant oral : relais par une héparine de bas poids moléculaire, arrêtée la veille du geste",
    "lmwh": "héparine de bas poids moléculaire (relais d'un anticoagulant oral) : arrêt la veille du geste",
    "aspirin": "l'aspirine à moins de 160 mg par jour peut être poursuivie ; sinon, arrêt cinq jours avant le geste",
}
#: IR-CEMENT (L2638): "L'aspirine à une dose inférieure à 160 mg par jour peut être poursuivie" (160 itself: stopped)
ASPIRIN_CONTINUE_BELOW_MG: Final = 160.0
#: the "nouveaux anticoagulants oraux" the text names (L2636), and the vitamin K antagonists (L2630)
DOACS: Final = frozenset({"dabigatran", "rivaroxaban", "apixaban", "edoxaban"})
VKAS: Final = frozenset({"warfarin", "acenocoumarol", "fluindione"})
#: the "héparines de bas poids moléculaire" of the relay, stopped "la veille du geste" (L2630)
LMWHS: Final = frozenset({"enoxaparin", "tinzaparin", "dalteparin", "nadroparin"})


def cement_stop_fr(drug: str, group: str | None) -> str:
    """The haemostasis instruction of IR-CEMENT for one antithrombotic (by INN, else by its group)."""
    if drug == "clopidogrel":
        return CEMENT_STOP_FR["clopidogrel"]
    if drug == "aspirin":
        return CEMENT_STOP_FR["aspirin"]
    if drug in DOACS or group == "doac":
        return CEMENT_STOP_FR["doac"]
    if drug in VKAS or group == "vka":
        return CEMENT_STOP_FR["vka"]
    if drug in LMWHS:
        return CEMENT_STOP_FR["lmwh"]
    return (
        "le référentiel ne donne pas de délai d'arrêt pour ce médicament avant une cimentoplastie : à fixer avec "
        "l'équipe de radiologie interventionnelle (plaquettes > 50 G/L et TP > 50 % exigés)"
    )
