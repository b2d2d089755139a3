"""The clinicians' page in French: one vocabulary for every code the services publish (analytes, units, score items,
statuses, lesion sites, override reasons, missing data...) and the rounding each value is shown with (issue 19).

Pure: no I/O. The services keep their codes (machines read them); only what a clinician reads goes through here.
A value is rounded to the precision its rule works at, and never onto a threshold it is not equal to (a clearance
of 29.6 mL/min is shown "29,6", not "30", beside the CrCl < 30 contraindication).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from contracts.lifecycle import OVERRIDE_REASONS
from services.notification.labels import ANALYTES as ANALYTES  # re-exported: the page lists them
from services.notification.labels import MISSING, UNITS
from services.notification.labels import NAMES as NAMES
from services.notification.labels import VALUES as VALUES
from shared.clinical.dates import HOSPITAL_TZ  # the page shows clinical times in the hospital's zone


@dataclass(frozen=True)
class Precision:
    """How a value is shown: `decimals` after the comma (`fixed`: trailing zeros kept, 3,60), and the thresholds its
    rules compare it with (rounding never lands on one of them unless the value is on it)."""

    decimals: int
    thresholds: tuple[float, ...] = ()
    fixed: bool = False


#: per analyte (or value name), the precision of the rule that uses it
PRECISION: Final[dict[str, Precision]] = {
    # LAB-CA-CORR (L316) and LAB-CA-CRISIS (> 3,5 mmol/L, L306): calcium in mmol/L to the hundredth
    "corrected_calcium": Precision(2, (3.5,), fixed=True),
    "total_calcium": Precision(2, (3.5,), fixed=True),
    "ionised_calcium": Precision(2, fixed=True),
    # LAB-CA-CORR (L316): albumin in g/L
    "albumin": Precision(1),
    # LAB-CRCL (L1153-1156): creatinine in µmol/L, weight in kg
    "creatinine": Precision(0),
    "body_weight": Precision(1),
    "weight": Precision(1),
    # SYS-ZA-DOSE Tableau 2 (L1153-1184): whole mL/min, bands 30-39, 40-49, 50-60, > 60; CrCl < 30 contraindicated
    "creatinine_clearance": Precision(0, (30.0, 40.0, 50.0, 60.0)),
    "initial_creatinine_clearance": Precision(0, (30.0, 40.0, 50.0, 60.0)),
    # LAB-VITD Tableau 1 (L819-836) and SYS-VITD-CORR (L837-868): whole ng/mL, classes < 10, < 20, < 30, 70, > 150
    "vitamin_d_25oh": Precision(0, (10.0, 20.0, 30.0, 70.0, 150.0)),
    "platelets": Precision(0),
    "prothrombin_pct": Precision(0),
    "alkaline_phosphatase": Precision(0),
    "ctx_serum": Precision(0),
    "ntx_urine": Precision(0),
}
#: anything else (doses in Gy, sizes in cm, months): one decimal, trailing zero dropped
DEFAULT_PRECISION: Final = Precision(1)


SKELETAL_SITES: Final[dict[str, str]] = {
    "humerus": "humérus",
    "radius_ulna": "radius ou ulna",
    "other_upper_limb": "autre os du membre supérieur",
    "femur_trochanteric": "fémur, région trochantérienne",
    "femur_neck": "col du fémur",
    "femur_shaft": "diaphyse fémorale",
    "tibia_fibula": "tibia ou fibula",
    "other_lower_limb": "autre os du membre inférieur",
    "spine": "rachis",
    "sacrum": "sacrum",
    "pelvis": "bassin",
    "acetabulum": "acétabulum",
    "rib": "côte",
    "sternum": "sternum",
    "scapula": "scapula",
    "clavicle": "clavicule",
    "skull": "crâne",
}

SEVERITIES: Final = {"critical": "Critique", "warning": "Avertissement", "info": "Information"}
ALERT_STATUSES: Final = {
    "active": "active",
    "acknowledged": "acquittée",
    "overridden": "passée outre",
    "resolved": "résolue",
    "withdrawn": "retirée",
}
ITEM_STATUSES: Final = {
    "recommended": "recommandé",
    "to_do": "à faire",
    "done": "fait",
    "waived": "levé (urgence)",
    "cannot_decide": "décision impossible (données manquantes)",
    "not_indicated": "non indiqué",
    "warning": "attention",
    "info": "information",
}


@dataclass(frozen=True)
class CheckStatus:
    """A plan check as a clinician reads it: a box that is ticked only when the check is done (or waived)."""

    label: str
    mark: str


CHECK_STATUSES: Final[dict[str, CheckStatus]] = {
    "done": CheckStatus("fait", "☑"),
    # SYS-AR-PREREQ "sauf urgence" (L1086-1100): waived in a crisis, not done, but nothing to do now
    "waived": CheckStatus("levé (urgence)", "⊘"),
    "to_do": CheckStatus("à faire", "☐"),
    "pending": CheckStatus("en attente", "⧖"),
    "cannot_decide": CheckStatus("décision impossible (données manquantes)", "?"),
    "declined": CheckStatus("refusé", "☒"),
}

SCORES: Final = {"mirels": "Score de Mirels", "sins": "Score SINS", "oligometastatic": "Statut oligométastatique"}
BANDS: Final = {
    "stable": "stable",
    "potentially_unstable": "potentiellement instable",
    "unstable": "instable",
    "oligometastatic": "oligométastatique",
    "multi_metastatic": "plurimétastatique",
    "undetermined": "indéterminé",
    "≥9": "≥ 9",
    "≤7": "≤ 7",
    "8": "8",
}
INTERPRETATIONS: Final = {
    # LAB-VITD Tableau 1 (L819-836)
    "deficiency": "carence",
    "insufficiency": "insuffisance",
    "recommended": "taux recommandé",
    "above_recommended": "au-dessus des taux recommandés",
    "possible_intoxication": "intoxication possible",
    # LAB-CTX (L225-240)
    "interpretable": "interprétable",
    "not_interpretable": "non interprétable",
}
PRODUCERS: Final = {
    "scoring": "service des scores",
    "systemic-planner": "planificateur du traitement systémique",
    "radiotherapy-planner": "planificateur du traitement local",
    "lab-normalisation": "normalisation de la biologie",
    "notification": "service des alertes",
    "lab-bus": "laboratoire",
    "dpi-bus": "dossier patient informatisé",
}
BOOLEANS: Final = {True: "oui", False: "non"}

#: the services' `missing` texts built with a value, by pattern (the value kept, in French)
MISSING_PATTERNS: Final[tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...]] = (
    (
        re.compile(r"oligometastatic criterion: (\w+)"),
        lambda m: f"critère oligométastatique : {NAMES.get(m.group(1), untranslated(m.group(1)))}",
    ),
    (
        re.compile(r"albumin drawn within (\d+) h of the calcium"),
        r"albuminémie prélevée à moins de \1 h de la calcémie",
    ),
    (re.compile(r"corrected calcium measured within (\d+) hours"), r"calcémie corrigée de moins de \1 heures"),
    (re.compile(r"25-OH vitamin D measured within (\d+) days"), r"25-OH vitamine D de moins de \1 jours"),
    (re.compile(r"creatinine measured within (\d+) days"), r"créatininémie de moins de \1 jours"),
    (re.compile(r"weight measured within (\d+) days"), r"poids de moins de \1 jours"),
    (
        re.compile(r"cord Dmax \(physical, Gy\) and fractions of earlier course (\d+)"),
        r"Dmax moelle (physique, Gy) et nombre de fractions de l'irradiation antérieure \1",
    ),
    (
        re.compile(r"date of the last fraction of the course of (\d{4})-(\d{2})-(\d{2})"),
        r"date de la dernière fraction de l'irradiation du \3/\2/\1",
    ),
    (re.compile(r"drug class of (.+)"), r"classe médicamenteuse de \1"),
    (
        re.compile(r"pain \(to reassess: the last one, (.+), dated (\d{4})-(\d{2})-(\d{2}), is not current\)"),
        r"douleur de la lésion (à réévaluer : la dernière, \1, du \4/\3/\2, n'est plus actuelle)",
    ),
    (
        re.compile(r"exact value: (.+) is censored, measure again"),
        lambda m: f"valeur exacte ({prose(m.group(1).replace('vitamin D', 'vitamine D'))} : résultat censuré, redoser)",
    ),
    (
        re.compile(
            r"weight to measure again \(last measured (\d{4})-(\d{2})-(\d{2}), over (\d+) days (before|after) "
            r"the creatinine\)"
        ),
        lambda m: (
            f"poids à mesurer à nouveau (dernier mesuré le {m.group(3)}/{m.group(2)}/{m.group(1)}, plus de "
            f"{m.group(4)} jours {'avant' if m.group(5) == 'before' else 'après'} la créatininémie)"
        ),
    ),
    (re.compile(r"(\w+) \(not current: restage\)"), r"\1 (non actuel : refaire le bilan)"),
)


def number(value: float, precision: Precision = DEFAULT_PRECISION) -> str:
    """A value with the decimal comma, rounded to `precision`; more decimals where the rounding would land on a
    threshold the value is not on (e.g. 3.504 mmol/L is "3,504", not "3,50", beside the > 3,5 crisis of L306)."""
    if isinstance(value, bool):
        return str(value)
    if not math.isfinite(value):  # review RD (HAZ-19-PAGE-R05): "nan" / "inf" never shown as a value
        return "non calculable"
    decimals = precision.decimals
    text = f"{value:.{decimals}f}"
    while decimals < 6 and any(value != t and float(text) == t for t in precision.thresholds):
        decimals += 1
        text = f"{value:.{decimals}f}"
    if (not precision.fixed or decimals > precision.decimals) and "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", "-0.0"):
        text = "0"
    return text.replace(".", ",")


def unit(code: str | None) -> str:
    return "" if not code else UNITS.get(code, code)


_FUTURE_DATED: Final = " (daté du futur)"


def name(code: str) -> str:
    """A datum's French name: "pain_intensity:T8-a" is "Intensité de la douleur (T8-a)"."""
    if code in NAMES:
        return NAMES[code]
    if code.endswith(_FUTURE_DATED):  # the radiotherapy planner's "<name> (daté du futur)" (HAZ-27-FUTURE-HIDES)
        return f"{name(code.removesuffix(_FUTURE_DATED))}{_FUTURE_DATED}"
    head, *rest = code.split(":")
    if rest and head in NAMES:
        parts = [NAMES.get(r) or value(r) for r in rest if r and r != "None"]
        return f"{NAMES[head]} ({', '.join(parts)})" if parts else NAMES[head]
    return untranslated(code)


def value(v: object, of: str | None = None, unit_code: str | None = None, comparator: str | None = None) -> str:
    """A value as shown: booleans oui/non, numbers rounded to the precision of `of`, codes in French; a censored value
    keeps its comparator (a bound, never exact)."""
    if v is None:
        return "manquant"
    if isinstance(v, float) and not math.isfinite(v):
        return "non calculable"  # no unit nor bound after it
    if isinstance(v, bool):
        text = BOOLEANS[v]
    elif isinstance(v, int | float):
        text = number(float(v), PRECISION.get(of or "", DEFAULT_PRECISION))
    else:
        s = str(v)
        text = VALUES.get(s) or SKELETAL_SITES.get(s) or _date(s) or prose(s)
    bound = f"{comparator} " if comparator else ""
    shown_unit = unit(unit_code)
    return f"{bound}{text}{' ' + shown_unit if shown_unit else ''}"


#: review RD (HAZ-19-PAGE-R03): the thresholds of a value in the unit a laboratory sent it in, where a rule names
#: them in that unit (LAB-VITD Tableau 1, L819-836: < 25, 25 à < 75, 75 à 175, > 375 nmol/L)
ORIGINAL_THRESHOLDS: Final[dict[tuple[str, str], tuple[float, ...]]] = {
    ("vitamin_d_25oh", "nmol/L"): (25.0, 75.0, 175.0, 375.0),
}


def original(v: object, analyte: str, unit_code: str | None, normalised_unit: str, comparator: str | None) -> str:
    """The value a laboratory sent, before conversion: in the normalised unit, at the analyte's precision (and never
    onto one of its thresholds); in another unit, as sent up to 3 decimals, never onto a threshold of that unit."""
    if unit_code == normalised_unit or not isinstance(v, int | float) or isinstance(v, bool):
        return value(v, analyte, unit_code, comparator)
    precision = Precision(3, ORIGINAL_THRESHOLDS.get((analyte, unit_code or ""), ()))
    bound = f"{comparator} " if comparator else ""
    shown_unit = unit(unit_code)
    return f"{bound}{number(float(v), precision)}{' ' + shown_unit if shown_unit else ''}"


def _date(text: str) -> str | None:
    """An ISO date or time given as a value, in French: 2026-03-02 is 02/03/2026."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return f"{text[8:10]}/{text[5:7]}/{text[:4]}"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})", text):
        return when(datetime.fromisoformat(text))
    return None


def component(score: str, item: str, v: object) -> str:
    """A score item's value: SCORE-MIRELS size is the fraction of the cortex involved (Tableau 3, L1308-1372: < 1/3,
    1/3 to 2/3, > 2/3), shown as a percentage with one decimal."""
    if score == "mirels" and item == "size" and isinstance(v, int | float) and not isinstance(v, bool):
        return f"{number(float(v) * 100, Precision(1))} % de la corticale"
    return value(v, item)


def missing(text: str) -> str:
    """A `missing` entry in French (exact texts, then the patterns, then a name code)."""
    if text in MISSING:
        return MISSING[text]
    for pattern, repl in MISSING_PATTERNS:
        if pattern.fullmatch(text):
            return pattern.sub(repl, text)
    if text in NAMES:
        return NAMES[text][0].lower() + NAMES[text][1:]
    head, sep, _ = text.partition(":")
    if sep and head in NAMES:
        return name(text)
    return untranslated(text)


def untranslated(code: str) -> str:
    """A code with no French label yet: shown marked as such, never silently dropped (a clinician still sees that
    something is missing or was used)."""
    return f"« {code} » (libellé non traduit)"


def site(skeletal_site: str | None, vertebral_level: str | None) -> str:
    """A lesion's place: "rachis, T8"."""
    parts = [SKELETAL_SITES.get(skeletal_site, skeletal_site) if skeletal_site else None, vertebral_level]
    return ", ".join(p for p in parts if p)


def override_reason(code: str | None) -> str:
    return "" if code is None else OVERRIDE_REASONS.get(code, untranslated(code))


def when(at: datetime | None) -> str:
    """A clinical time in the hospital's zone, French style: 05/12/2026 à 14:06."""
    return "" if at is None else at.astimezone(HOSPITAL_TZ).strftime("%d/%m/%Y à %H:%M")


#: a decimal point before a unit in a service's French text ("3.60 mmol/L"): French typography wants a comma
_DECIMAL_BEFORE_UNIT: Final = re.compile(
    r"(?<![\d.,])(\d+)[.,](\d+)(\s?(?:mmol/L|µmol/L|umol/L|mL/min|g/L|g/dL|mg/dL|ng/mL|nmol/L|mg|Gy|cm|kg|mois|%))"
)
_CODE: Final = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b")
#: score items a service's text names in English ("Score de Mirels 10/12 (site 3, size 2, pain 2)"); "site" is French
_WORDS: Final = re.compile(r"\b(size|pain|location|alignment)\b")
_WORDS_FR: Final = {"size": "taille", "pain": "douleur", "location": "localisation", "alignment": "alignement"}
#: an imaging modality's code in parentheses ("femur-R (ct)")
_MODALITY: Final = re.compile(r"\((xray|ct|mri|bone_scan|fdg_pet|naf_pet)\)")
#: a skeletal site named by its code in a text ("(pelvis)"), where the French name differs
_SITE: Final = re.compile(r"\b(" + "|".join(k for k, fr in SKELETAL_SITES.items() if k != fr) + r")\b")


#: the precision a value takes in a text, by its unit (the rules of PRECISION)
_UNIT_PRECISION: Final = {
    "mmol/L": PRECISION["corrected_calcium"],
    "mL/min": PRECISION["creatinine_clearance"],
    "µmol/L": PRECISION["creatinine"],
    "umol/L": PRECISION["creatinine"],
    "ng/mL": PRECISION["vitamin_d_25oh"],
}


def _decimal(m: re.Match[str]) -> str:
    """A number before a unit: a decimal comma, and no more decimals than the rule works at for that unit."""
    whole, decimals, after = m.group(1), m.group(2), m.group(3)
    precision = _UNIT_PRECISION.get(after.strip())
    if precision is not None and len(decimals) > max(precision.decimals, 2):
        return number(float(f"{whole}.{decimals}"), precision) + after
    return f"{whole},{decimals}{after}"


def prose(text: str) -> str:
    """A service's French text as shown: decimal commas before a unit (rounded to the unit's rule precision when a
    service wrote more), µmol/L, and the codes it names in French."""
    text = _DECIMAL_BEFORE_UNIT.sub(_decimal, text).replace("umol/L", "µmol/L")
    text = _SITE.sub(lambda m: SKELETAL_SITES[m.group(0)], text)
    text = _WORDS.sub(lambda m: _WORDS_FR[m.group(0)], text)
    text = _MODALITY.sub(lambda m: f"({VALUES[m.group(1)]})", text)
    return _CODE.sub(lambda m: _lower_first(NAMES.get(m.group(0), VALUES.get(m.group(0), m.group(0)))), text)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
