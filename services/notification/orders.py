"""CDS Hooks `order-sign` / `order-select`: the draft orders an EHR is about to sign, checked against the patient's
current facts (orders_facts.py). Pure: no I/O, no clock (`facts.now`).

Checks (each card cites its rule and passage, lists the data used with value, unit and time, and what is missing):
- zoledronic acid dose against the clearance, Tableau 2 (SYS-ZA-DOSE, L1153-1184): a wrong or absent dose gets a
  suggestion whose `update` action replaces the draft with the corrected one; CrCl < 30 (contraindicated,
  L1155-1156) a `delete` suggestion; a missing, stale or censored clearance an "insufficient data" card, never a dose;
- denosumab at CrCl < 30 (SYS-DENO, L1215-1218);
- an anti-resorptive while SYS-AR-PREREQ prerequisites are unmet (L795-801, L1086-1100, L1267-1273), or during a
  current hypercalcaemic crisis (LAB-CA-CRISIS L300-306: the prerequisites are waived, "sauf urgence");
- an anticancer drug while a radiotherapy is planned (RT-DRUG, Tableau 6, L1948-2016, L2196-2358);
- an antiplatelet or anticoagulant while a cementoplasty is planned (IR-CEMENT haemostasis, L2626-2640);
- review RB: the rhythm (zoledronic acid monthly or three-monthly, L1182, L1132-1140; denosumab 120 mg monthly,
  L1210, L1140-1142: SYS-SCHEDULE / SYS-DENO), the osteoporosis products (Aclasta®, Prolia®) never corrected in place,
  two different anti-resorptives in one order set (L1136), a cementoplasty or radiotherapy ordered in the same set,
  a draft whose names and codes disagree or that combines substances on one line ("à vérifier").
A drug the shared vocabulary cannot identify concerns none of these rules and gets no card (drugs.identify); a
cancelled, stopped, completed or entered-in-error draft is not checked (orders_drafts.NOT_TO_SIGN).
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from fhir.resources.R4B.medicationrequest import MedicationRequest
from pydantic import ValidationError

from contracts.base import derived_id
from contracts.plan import PlanItem
from contracts.rules import GUIDELINE, RULESET_VERSION, cite
from services.notification.cds import RULE_SYSTEM, override_reasons
from services.notification.orders_drafts import Draft, Line, drafts
from services.notification.orders_facts import OrderFacts, Value, missing_fr
from services.notification.orders_rules import (
    ASPIRIN_CONTINUE_BELOW_MG,
    DENO_DOSE_MG,
    DENO_INTERVAL_DAYS,
    DRUG_FR,
    HOLDING_PREREQUISITES,
    MONTHLY,
    NEPHROTOXIC_WITH_BISPHOSPHONATES,
    ON_TREATMENT_CHECK,
    OSTEOPOROSIS_FORMS,
    TABLEAU_6_NO_WINDOW,
    ZA_CUTS,
    ZA_MIN_INTERVAL_DAYS,
    ZaBand,
    cement_stop_fr,
    severe_renal_failure,
    za_band,
)
from services.notification.vocabulary import prose
from shared.clinical.dates import HOSPITAL_TZ
from shared.clinical.drugs import DrugIdentity, identify

UCUM: Final = "http://unitsofmeasure.org"
Indicator = Literal["info", "warning", "critical"]
#: the names of the values a card shows (French, clinical)
LABELS: Final = {
    "creatinine_clearance": "Clairance de la créatinine (Cockcroft-Gault)",
    "initial_creatinine_clearance": "Clairance initiale (avant la première perfusion)",
    "corrected_calcium": "Calcémie corrigée",
    "aspirin_daily_dose": "Dose quotidienne d'aspirine prescrite",
}
UNITS_FR: Final = {"umol/L": "µmol/L", "mL/min": "mL/min", "mmol/L": "mmol/L"}


@dataclass(frozen=True)
class Finding:
    draft: Draft
    check: str
    rule_id: str
    indicator: Indicator
    summary: str
    text: str
    used: tuple[Value, ...] = ()
    missing: tuple[str, ...] = ()
    suggestion: dict[str, Any] | None = None
    extra: tuple[str, ...] = field(default=())  # further Markdown lines (e.g. the unmet prerequisites)


@dataclass(frozen=True)
class Links:
    """Where a card points: the patient's live page (a SMART link) and a rule's passage (`source.url`)."""

    page: Callable[[str], str]
    passage: Callable[[str], str]


#: CDS Hooks 2.0: a card's summary is a "<140-character" sentence
SUMMARY_MAX: Final = 139


def _fit(head: str, variable: str, tail: str = "") -> str:
    """A summary within SUMMARY_MAX whose message (head and tail) is whole: the variable part (lesions, names) is
    shortened, never the end of the sentence."""
    room = SUMMARY_MAX - len(head) - len(tail)
    if len(variable) > room:
        variable = variable[: max(room - 1, 0)].rstrip(" ;,/") + "…"
    return (head + variable + tail)[:SUMMARY_MAX]


# ---- the checks --------------------------------------------------------------------------------------------------
def _num(x: float, digits: int = 1) -> str:
    """French decimal comma, trailing zeros dropped: 3.3 -> "3,3", 4.0 -> "4", 45.26 -> "45,3"."""
    text = f"{round(x, digits):.{digits}f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")


#: Tableau 2's cut points (L1159-1178): a clearance is never shown rounded onto one (60.04 is "> 60", not "60")
_CUTS: Final = frozenset(cut for cut, _ in ZA_CUTS)
_CLEARANCES: Final = ("creatinine_clearance", "initial_creatinine_clearance")


def _beside(x: float, cuts: frozenset[float]) -> str:
    digits = 1
    while digits < 6 and x not in cuts and round(x, digits) in cuts:
        digits += 1
    return _num(x, digits)


def shown(v: Value) -> str:
    bound = f"{v.comparator} " if v.comparator else ""
    number = _beside(v.value, _CUTS) if v.name in _CLEARANCES else _num(v.value)
    return f"{bound}{number} {UNITS_FR.get(v.unit, v.unit)}"


def corrected(draft: Draft, dose_mg: float, monthly: bool = False, why: str = "Tableau 2") -> dict[str, Any] | None:
    """The draft with its dose replaced (or set) by `dose_mg` mg on every dosage line, and its rhythm set to monthly
    when `monthly`, everything else unchanged: what an `update` action carries (the whole resource, CDS Hooks 2.0).
    None when the draft has no id (an update names its resource by id) or the result would not be valid FHIR R4
    (then no suggestion: the card still says the dose)."""
    if not draft.has_id:
        return None
    resource = copy.deepcopy(draft.resource)
    quantity = {"value": dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}
    dosages = resource.setdefault("dosageInstruction", [])
    if not dosages:
        dosages.append({})
    for dosage in dosages:
        rates = dosage.setdefault("doseAndRate", [])
        if rates:  # dose[x] is one of doseQuantity / doseRange: the corrected dose replaces whichever was there
            rates[0] = {k: v for k, v in rates[0].items() if not k.startswith("dose")} | {"doseQuantity": quantity}
        else:
            rates.append({"doseQuantity": quantity})
        if monthly:
            timing = dosage.setdefault("timing", {})
            timing.pop("code", None)  # "QD", "BID"...: would contradict the corrected rhythm
            keep = {k: v for k, v in (timing.get("repeat") or {}).items() if k.startswith("bounds") or k == "count"}
            timing["repeat"] = keep | MONTHLY
        text = dosage.get("text")
        if isinstance(text, str):
            rhythm = " une fois par mois" if monthly else ""
            dosage["text"] = f"Dose corrigée : {_num(dose_mg)} mg{rhythm} ({why}). " + text
    try:
        MedicationRequest.model_validate(resource)
    except ValidationError:
        return None
    return resource


def _line_mg(line: Line) -> float | None:
    if line.dose is None:
        return None
    value, unit = line.dose
    return {"mg": value, "g": value * 1000, "ug": value / 1000}.get(unit)


def _dose_mg(draft: Draft) -> float | None:
    return next((mg for line in draft.lines if line.dose is not None for mg in [_line_mg(line)]), None)


def _unit_unknown(draft: Draft) -> bool:
    return any(line.dose is not None and _line_mg(line) is None for line in draft.lines)


def _dose_wrong(draft: Draft, expected_mg: float) -> bool:
    """No dose at all, or a dosage line at another dose."""
    doses = [_line_mg(line) for line in draft.lines if line.dose is not None]
    return not doses or any(mg is None or abs(mg - expected_mg) > 1e-6 for mg in doses)


def _rhythm(per_day: float) -> str:
    """ "2 fois par jour", "tous les 7 jours", "tous les 3 mois"."""
    if per_day >= 1:
        return f"{_num(per_day)} fois par jour"
    days = 1 / per_day
    months = days / (365.25 / 12)
    if days >= 28 and abs(months - round(months)) < 0.1:
        return "tous les mois" if round(months) == 1 else f"tous les {round(months)} mois"
    return f"tous les {_num(days, 0)} jours"


def _per_days(draft: Draft) -> list[float]:
    return [line.per_day for line in draft.lines if line.per_day is not None]


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def osteoporosis_form(draft: Draft) -> str | None:
    """The osteoporosis product a draft names (Aclasta®, Prolia®...: OSTEOPOROSIS_FORMS), if any."""
    key = draft.identity.key if draft.identity is not None else ""
    for name in draft.names:
        for word in re.findall(r"[a-z]+", _fold(name)):
            form = OSTEOPOROSIS_FORMS.get(word)
            if form is not None and form[0] == key:
                return form[1]
    return None


def drug_fr(draft: Draft) -> str:
    """The drug's French name: ours for the drugs the rules name, else as the prescriber wrote it."""
    key = draft.identity.key if draft.identity is not None else ""
    return DRUG_FR.get(key) or draft.name or key.replace("_", " ")


def _insufficient(draft: Draft, check: str, rule_id: str, summary: str, text: str, f: OrderFacts) -> Finding:
    stale = (f.crcl.stale,) if f.crcl.stale is not None else ()
    return Finding(draft, check, rule_id, "warning", summary, text, stale, f.crcl.missing)


def _za(draft: Draft, f: OrderFacts) -> list[Finding]:
    """SYS-ZA-DOSE, Tableau 2 (L1153-1184): the dose follows the initial clearance; renal function is checked before
    each infusion (L770-772): a current clearance is needed in every case."""
    current = f.crcl.value
    if current is None:
        return [
            _insufficient(
                draft,
                "za-dose",
                "SYS-ZA-DOSE",
                "Acide zolédronique : données insuffisantes (clairance récente inconnue)",
                "La dose d'acide zolédronique dépend de la clairance de la créatinine (Tableau 2) ; aucune clairance "
                "de moins de 30 jours n'est disponible : dose non vérifiable. Contrôler créatininémie et poids avant "
                "la perfusion.",
                f,
            )
        ]
    side = severe_renal_failure(current.value, current.comparator)
    if side == "below":
        delete = (
            None
            if not draft.has_id  # a delete names its resource by id (CDS Hooks 2.0)
            else {
                "label": "Retirer la prescription d'acide zolédronique",
                "uuid": str(derived_id("order-suggestion", draft.ref, "za-delete")),
                "isRecommended": True,
                "actions": [
                    {
                        "type": "delete",
                        "description": "Acide zolédronique contre-indiqué (clairance < 30 mL/min, Tableau 2).",
                        "resourceId": draft.ref,
                    }
                ],
            }
        )
        return [
            Finding(
                draft,
                "za-contraindicated",
                "SYS-ZA-DOSE",
                "critical",
                f"Acide zolédronique contre-indiqué : clairance {shown(current)} (< 30 mL/min)",
                "Le traitement est contre-indiqué en cas de clairance < 30 mL/min (Cockcroft). Le dénosumab expose "
                "alors à une ostéodystrophie rénale de type os adynamique : avis spécialisé avant tout "
                "anti-résorptif.",
                (current,),
                suggestion=delete,
            )
        ]
    basis, band = current, za_band(current.value, current.comparator)
    initial = f.initial_crcl
    if initial is not None:
        first = za_band(initial.value, initial.comparator)
        if first is None or first.dose_mg is not None:  # an initial < 30 with a current >= 30: the current one
            basis, band = initial, first
    used = (basis,) if basis is current else (basis, current)
    form = osteoporosis_form(draft)
    if form is not None:
        return [_za_form(draft, form, band if side != "straddles" else None, used)]
    if side == "straddles" or band is None:
        return [
            Finding(
                draft,
                "za-dose",
                "SYS-ZA-DOSE",
                "warning",
                f"Acide zolédronique : clairance {shown(basis)} censurée, données insuffisantes",
                "La clairance est calculée à partir d'un résultat censuré : elle ne situe pas le patient dans une "
                "seule tranche du Tableau 2. Une créatininémie exacte permettra de vérifier la dose.",
                used,
                ("créatininémie exacte (résultat censuré)",),
            )
        ]
    return _za_dose(draft, basis, current, band)


def _za_form(draft: Draft, form: str, band: ZaBand | None, used: tuple[Value, ...]) -> Finding:
    """Aclasta® / Reclast®: the osteoporosis zoledronic acid (5 mg once a year), not the oncology form the text
    doses (Zometa® 4 mg, L1153, L1168-1170): no dose is corrected in place on that product."""
    dose = f" : ici {_num(band.dose_mg)} mg (clairance {band.label})" if band and band.dose_mg else ""
    return Finding(
        draft,
        "za-form",
        "SYS-ZA-DOSE",
        "warning",
        f"{form} : acide zolédronique de l'ostéoporose, pas la forme du Tableau 2",
        f"{form} est l'acide zolédronique de l'ostéoporose (5 mg une fois par an). Pour les métastases osseuses, le "
        "référentiel donne l'acide zolédronique (Zometa®) 4 mg en perfusion mensuelle, dose adaptée à la clairance "
        f"(Tableau 2){dose}. Prescrire la forme oncologique.",
        used,
    )


def _za_dose(draft: Draft, basis: Value, current: Value, band: ZaBand) -> list[Finding]:
    """Tableau 2's dose, given monthly (L1182) or every three months (L1132, L1139-1140): never more often."""
    assert band.dose_mg is not None
    used = (basis,) if basis is current else (basis, current)
    if _unit_unknown(draft):
        assert draft.dose is not None
        return [
            Finding(
                draft,
                "za-dose",
                "SYS-ZA-DOSE",
                "warning",
                "Acide zolédronique : unité de dose non reconnue",
                f"Dose du brouillon : {_num(draft.dose[0])} {draft.dose[1]} ; la dose attendue est "
                f"{_num(band.dose_mg)} mg (Tableau 2, clairance {band.label}).",
                used,
                ("dose en mg",),
            )
        ]
    wrong = _dose_wrong(draft, band.dose_mg)
    often = [p for p in _per_days(draft) if p > 1 / ZA_MIN_INTERVAL_DAYS + 1e-9]
    if not wrong and not often:
        return []
    given = _dose_mg(draft)
    said = "non renseignée" if given is None else f"{_num(given)} mg"
    fixed = corrected(draft, band.dose_mg, monthly=bool(often))
    rhythm = " une fois par mois" if often else ""
    suggestion = (
        None
        if fixed is None
        else {
            "label": f"Corriger : acide zolédronique {_num(band.dose_mg)} mg{rhythm}",
            "uuid": str(derived_id("order-suggestion", draft.ref, "za-dose", band.dose_mg, bool(often))),
            "isRecommended": True,
            "actions": [
                {
                    "type": "update",
                    "description": f"Remplacer la prescription par l'acide zolédronique {_num(band.dose_mg)} mg"
                    f"{rhythm} (clairance {band.label}, Tableau 2).",
                    "resource": fixed,
                }
            ],
        }
    )
    initial = " initiale" if basis is not current else ""
    text = (
        f"Dose prescrite : {said}. Le Tableau 2 donne {_num(band.dose_mg)} mg pour une clairance{initial} "
        f"de {band.label} (clairance retenue : {shown(basis)})."
    )
    if often:
        text += (
            f" Rythme prescrit : {_rhythm(max(often))} ; le Tableau 2 est la dose à administrer mensuellement "
            "(espacement possible à un rythme trimestriel), jamais plus souvent."
        )
    summary = (
        f"Acide zolédronique : dose {said}{f' {_rhythm(max(often))}' if often else ''} ; Tableau 2 : "
        f"{_num(band.dose_mg)} mg{' par mois' if often else ''} (clairance {shown(basis)})"
        if wrong
        else f"Acide zolédronique : {_rhythm(max(often))} ; Tableau 2 : administration mensuelle"
    )
    rule = "SYS-ZA-DOSE" if wrong else "SYS-SCHEDULE"  # the rhythm alone: "mensuel" / "trimestriel", L1130-1142
    return [Finding(draft, "za-dose", rule, "warning", summary, text, used, suggestion=suggestion)]


def _deno_dose(draft: Draft) -> list[Finding]:
    """SYS-DENO: "la dose est de 120 mg mensuel par voie sous-cutanée" (Xgeva®, L1210), never spaced (L1140-1142).
    Prolia® and its biosimilars (60 mg every 6 months) are the osteoporosis product: said, never corrected in
    place."""
    form = osteoporosis_form(draft)
    if form is not None:
        return [
            Finding(
                draft,
                "deno-form",
                "SYS-DENO",
                "warning",
                f"{form} : dénosumab de l'ostéoporose, pas la forme des métastases osseuses",
                f"{form} est le dénosumab de l'ostéoporose (60 mg tous les 6 mois). Pour les métastases osseuses, le "
                "référentiel donne le dénosumab (Xgeva®) 120 mg mensuel par voie sous-cutanée. Prescrire la forme "
                "oncologique.",
            )
        ]
    if _unit_unknown(draft):
        assert draft.dose is not None
        return [
            Finding(
                draft,
                "deno-dose",
                "SYS-DENO",
                "warning",
                "Dénosumab : unité de dose non reconnue",
                f"Dose du brouillon : {_num(draft.dose[0])} {draft.dose[1]} ; la dose du référentiel est 120 mg "
                "mensuel par voie sous-cutanée.",
                missing=("dose en mg",),
            )
        ]
    wrong = _dose_wrong(draft, DENO_DOSE_MG)
    shortest, longest = DENO_INTERVAL_DAYS
    off = [p for p in _per_days(draft) if not 1 / longest - 1e-9 <= p <= 1 / shortest + 1e-9]
    if not wrong and not off:
        return []
    given = _dose_mg(draft)
    said = "dose non renseignée" if given is None else f"{_num(given)} mg"
    rhythm = f" {_rhythm(off[0])}" if off else ""
    fixed = corrected(draft, DENO_DOSE_MG, monthly=bool(off), why="référentiel, dénosumab")
    suggestion = (
        None
        if fixed is None
        else {
            "label": "Corriger : dénosumab 120 mg mensuel",
            "uuid": str(derived_id("order-suggestion", draft.ref, "deno-dose", bool(off))),
            "isRecommended": True,
            "actions": [
                {
                    "type": "update",
                    "description": "Remplacer la prescription par le dénosumab 120 mg mensuel par voie sous-cutanée.",
                    "resource": fixed,
                }
            ],
        }
    )
    return [
        Finding(
            draft,
            "deno-dose",
            "SYS-DENO" if wrong else "SYS-SCHEDULE",  # the rhythm alone: no spacing, L1136, L1140-1142
            "warning",
            f"Dénosumab : {said}{rhythm} ; référentiel : 120 mg mensuel",
            f"Prescription : {said}{rhythm}. La dose du dénosumab est de 120 mg mensuel par voie sous-cutanée ; "
            "les données ne permettent pas d'espacer les injections.",
            suggestion=suggestion,
        )
    ]


def _deno(draft: Draft, f: OrderFacts) -> list[Finding]:
    """SYS-DENO (L1215-1218): no renal adjustment, but at CrCl < 30 an adynamic renal osteodystrophy is possible and
    an anti-resorptive is then harmful."""
    current = f.crcl.value
    if current is None:
        stale = (f.crcl.stale,) if f.crcl.stale is not None else ()
        return [
            Finding(
                draft,
                "deno-renal",
                "SYS-DENO",
                "info",
                "Dénosumab : clairance récente inconnue",
                "Le dénosumab ne s'adapte pas à la fonction rénale, mais une clairance < 30 mL/min expose à une "
                "ostéodystrophie rénale (os adynamique) pour laquelle un anti-résorptif est délétère : aucune "
                "clairance de moins de 30 jours ne permet de l'écarter.",
                stale,
                f.crcl.missing,
            )
        ]
    side = severe_renal_failure(current.value, current.comparator)
    if side == "above":
        return []
    certain = side == "below"
    return [
        Finding(
            draft,
            "deno-renal",
            "SYS-DENO",
            "warning",
            f"Dénosumab et clairance {shown(current)} : "
            + ("insuffisance rénale sévère" if certain else "insuffisance rénale sévère possible"),
            ("Clairance < 30 mL/min" if certain else "Clairance censurée, possiblement < 30 mL/min")
            + " : le patient peut présenter une ostéodystrophie rénale de type os adynamique, pour laquelle un "
            "anti-résorptif est délétère. Avis spécialisé avant la prescription.",
            (current,),
            () if certain else ("créatininémie exacte (résultat censuré)",),
        )
    ]


def _prerequisites(draft: Draft, f: OrderFacts) -> list[Finding]:
    """SYS-AR-PREREQ: vitamin D, dental assessment, extraction healed before an anti-resorptive, unless an emergency
    (a current hypercalcaemic crisis, LAB-CA-CRISIS L300-306: "sauf urgence", L799, L1090, L1267)."""
    name = drug_fr(draft) or "anti-résorptif"
    unmet = []
    checks = f.prerequisites.checks if f.prerequisites is not None else []
    # the prerequisites are "avant mise en route" (L1086, L1267): once under an anti-resorptive (the plan then lists
    # the 6-monthly dental review, L1098-1100) a renewed order is not held by them
    if not any(c.name == ON_TREATMENT_CHECK for c in checks):
        unmet = [c for c in checks if c.name in HOLDING_PREREQUISITES and c.status != "done"]
    if f.crisis is not None:
        used = tuple(
            Value(i.name, float(i.value), i.unit or "", i.occurred_at, i.comparator, i.source_event_id)
            for i in f.crisis.inputs
            if isinstance(i.value, int | float) and not isinstance(i.value, bool)
        )
        waived = [f"- {prose(c.detail_fr)}" for c in unmet]
        return [
            Finding(
                draft,
                "ar-crisis",
                "SYS-AR-PREREQ",
                "info",
                f"{name.capitalize()} pendant une crise aiguë hypercalcémique : prérequis levés (urgence)",
                "Crise aiguë hypercalcémique en cours (calcémie corrigée > 3,5 mmol/L) : l'anti-résorptif ne "
                "attend pas les prérequis (« sauf urgence »). Les compléter dès que possible"
                + (" :" if waived else "."),
                used,
                extra=tuple(waived),
            )
        ]
    if not f.plan_received:
        return [
            Finding(
                draft,
                "ar-prerequisites",
                "SYS-AR-PREREQ",
                "warning",
                f"{name.capitalize()} : prérequis inconnus (plan de traitement osseux non reçu)",
                "Avant un anti-résorptif, sauf urgence : statut vitaminique D, fonction rénale et bilan "
                "bucco-dentaire avec orthopantomogramme. Le plan de traitement osseux du patient n'a pas été reçu : "
                "rien ne dit qu'ils sont faits.",
                missing=("plan de traitement osseux (prérequis)",),
            )
        ]
    todo = [c for c in unmet if c.status != "waived"]
    if not todo:
        return []
    return [
        Finding(
            draft,
            "ar-prerequisites",
            "SYS-AR-PREREQ",
            "warning",
            f"{name.capitalize()} : prérequis non remplis ({len(todo)})",
            "Sauf urgence, avant la mise en route d'un anti-résorptif : corriger une carence en vitamine D, bilan "
            "bucco-dentaire par un spécialiste avec orthopantomogramme, cicatrisation après une extraction "
            "(au moins 3 semaines à 1 mois, feu vert du dentiste). Restent à faire :",
            extra=tuple(f"- {prose(c.detail_fr)}" for c in todo),
        )
    ]


def _where(item: PlanItem) -> str:
    """The lesion a local-plan item is about, as its title names it ("Cimentoplastie — L3 (l3) : pas prête")."""
    return item.title.split(" — ", 1)[-1].split(" : ", 1)[0]


def _radiotherapy(draft: Draft, f: OrderFacts) -> list[Finding]:
    """RT-DRUG, Tableau 6: a drug with a window around a planned radiotherapy. The local plan publishes the planner's
    window for the drugs under way; for another drug the dates and windows are not published to notification."""
    if not f.radiotherapy:
        return []
    name = drug_fr(draft)
    assert draft.identity is not None
    decided = [i for i in f.windows if i.key.endswith(f":drug:{draft.identity.key}")]
    where = "; ".join(sorted({_where(i) for i in f.radiotherapy}))
    if decided:
        delays = any(i.status in ("to_do", "cannot_decide", "warning") for i in decided)
        return [
            Finding(
                draft,
                "rt-window",
                "RT-DRUG",
                "warning" if delays else "info",
                _fit(f"{name.capitalize()} et radiothérapie prévue (", where, ")"),
                " ".join(i.text_fr for i in decided)
                + " Une nouvelle administration repousse d'autant la date possible de l'irradiation (Tableau 6).",
                missing=tuple(dict.fromkeys(missing_fr(m) for i in decided for m in i.missing)),
            )
        ]
    if draft.identity.key in TABLEAU_6_NO_WINDOW:
        return [
            Finding(
                draft,
                "rt-window",
                "RT-DRUG",
                "info",
                _fit(f"{name.capitalize()} et radiothérapie prévue (", where, ") : compatible, pas de fenêtre"),
                f"Tableau 6 : {name}, compatible avec une radiothérapie à visée palliative, pas de fenêtre "
                "(accord de pratique).",
            )
        ]
    return [
        Finding(
            draft,
            "rt-window",
            "RT-DRUG",
            "warning",
            _fit(f"{name.capitalize()} : radiothérapie prévue (", where, "), fenêtre du Tableau 6 à vérifier"),
            "Une radiothérapie est prévue. Certains anticancéreux imposent un délai avant et après l'irradiation "
            "(Tableau 6 : gemcitabine, doxorubicine, bévacizumab ; immunothérapies et ITK : avis de la RCP). La date "
            "des séances et la fenêtre de ce médicament ne sont pas connues de ce service : à vérifier avec le "
            "radiothérapeute avant de signer.",
            missing=("dates de la radiothérapie prévue", f"fenêtre du Tableau 6 pour {name}"),
        )
    ]


def _daily_mg(draft: Draft) -> float | None:
    """The daily dose over every dosage line (dose x administrations per day); None when a line lacks either."""
    parts = [(_line_mg(line), line.per_day) for line in draft.lines]
    if not parts or any(mg is None or per_day is None for mg, per_day in parts):
        return None
    return sum(mg * per_day for mg, per_day in parts if mg is not None and per_day is not None)


def _cementoplasty(draft: Draft, f: OrderFacts) -> list[Finding]:
    """IR-CEMENT haemostasis (L2626-2640): antiplatelets and anticoagulants before a cementoplasty."""
    if not f.cementoplasty:
        return []
    assert draft.identity is not None
    who = draft.identity
    rule = cement_stop_fr(who.key, who.group)
    used: tuple[Value, ...] = ()
    missing: tuple[str, ...] = ()
    indicator: Indicator = "warning"
    if who.key == "aspirin":
        daily = _daily_mg(draft)  # every dosage line: 100 mg morning and evening is 200 mg/j
        if daily is not None:
            used = (Value("aspirin_daily_dose", daily, "mg/j", None),)
            indicator = "info" if daily < ASPIRIN_CONTINUE_BELOW_MG else "warning"
        else:
            missing = ("dose quotidienne d'aspirine",)
    lesions = "; ".join(sorted({_where(i) for i in f.cementoplasty}))
    return [
        Finding(
            draft,
            "cement-haemostasis",
            "IR-CEMENT",
            indicator,
            _fit(f"{drug_fr(draft).capitalize()} : cimentoplastie prévue (", lesions, ")"),
            f"Une cimentoplastie est prévue ({lesions}). Avant le geste : {rule}. Date du geste : voir le plan local "
            "(non transmise avec l'ordonnance).",
            used,
            missing,
        )
    ]


def _unreadable(draft: Draft) -> Finding:
    name = drug_fr(draft)
    return Finding(
        draft,
        "unreadable",
        "SYS-ZA-DOSE" if draft.identity and draft.identity.key == "zoledronic_acid" else "SYS-AR-PREREQ",
        "warning",
        _fit("", name.capitalize(), " : brouillon non conforme FHIR R4, contrôle impossible"),
        "Le brouillon de prescription n'est pas une MedicationRequest FHIR R4 valide : la dose et le rythme n'ont "
        "pas pu être lus ni vérifiés.",
        missing=("MedicationRequest FHIR R4 valide",),
    )


#: the rule whose card speaks for a drug of each class when its identity is in doubt
_RULE_OF_CLASS: Final = {
    "antiresorptive": "SYS-AR-PREREQ",
    "anticancer": "RT-DRUG",
    "antiplatelet": "IR-CEMENT",
    "anticoagulant": "IR-CEMENT",
}


def _names_fr(identities: list[DrugIdentity]) -> str:
    """Several identified drugs, by their French names (as `drug_fr`), joined for a card."""
    return " / ".join(DRUG_FR.get(i.key) or i.key.replace("_", " ") for i in identities)


def _combination(draft: Draft, f: OrderFacts) -> list[Finding]:
    """Several substances on one line: the dose and rhythm belong to none of them. When a rule would speak for one
    of them here, the line is to check (each substance on its own line), with what the rules would say."""
    parts = [identify(k) for k in draft.conflict]
    alone = [replace(draft, identity=i, conflict=(), names=(), combination=False) for i in parts]
    said = [x for x in findings(alone, f) if x.check != "unreadable"]
    if not said:
        return []
    named = _names_fr(parts)
    return [
        Finding(
            draft,
            "combination",
            said[0].rule_id,
            "critical" if any(x.indicator == "critical" for x in said) else "warning",
            _fit("Association sur une même ligne, à vérifier : ", named),
            f"Le brouillon associe plusieurs médicaments sur une même ligne ({named}) : la dose et le rythme ne "
            "peuvent être attribués à aucun d'eux. Prescrire chaque médicament sur sa propre ligne. Pour ces "
            "médicaments :",
            missing=("une ligne par médicament",),
            extra=tuple(f"- {x.summary}" for x in said),
        )
    ]


def _conflicting(draft: Draft, f: OrderFacts) -> list[Finding]:
    """A draft whose names and codes designate different drugs (Xgeva® coded M05BA08; a text naming zoledronic acid
    and a coding naming denosumab): no rule may be assumed, and the draft must not sign as if it concerned none."""
    if draft.combination:
        return _combination(draft, f)
    who = [identify(k) for k in draft.conflict]
    rules = [
        "SYS-ZA-DOSE" if i.key == "zoledronic_acid" else "SYS-DENO" if i.key == "denosumab" else _RULE_OF_CLASS[c]
        for i in who
        if (c := i.drug_class) in _RULE_OF_CLASS
    ]
    if not rules:
        return []
    named = _names_fr(who)
    return [
        Finding(
            draft,
            "identity",
            rules[0],
            "warning",
            _fit("Prescription à vérifier : le nom et le code désignent des médicaments différents (", named, ")"),
            f"Le brouillon nomme des médicaments différents ({named}) : aucun contrôle ne peut être fait sans savoir "
            "lequel est prescrit. Corriger la prescription avant de la signer.",
            missing=("identité du médicament prescrit",),
        )
    ]


def findings(orders: list[Draft], f: OrderFacts) -> list[Finding]:
    """Every check on every draft (ServiceRequests are read but no rule here checks them yet)."""
    out: list[Finding] = []
    for d in orders:
        who = d.identity
        if d.conflict:
            out += _conflicting(d, f)
            continue
        if who is None or not who.known:
            continue
        concerned = who.drug_class in ("antiresorptive", "anticancer", "antiplatelet", "anticoagulant")
        if concerned and not d.valid:
            out.append(_unreadable(d))
            continue
        if who.key == "zoledronic_acid":
            out += _za(d, f)
        if who.key == "denosumab":
            out += _deno(d, f) + _deno_dose(d)
        if who.drug_class == "antiresorptive":
            out += _prerequisites(d, f)
        if who.drug_class == "anticancer":
            out += _radiotherapy(d, f)
        if who.drug_class in ("antiplatelet", "anticoagulant"):
            out += _cementoplasty(d, f)
    return out


def _two_antiresorptives(chosen: list[Draft], every: list[Draft]) -> list[Finding]:
    """SYS-SCHEDULE: "acide zoledronique ou dénosumab mensuel" (L1136), one administration a month (L1182, L1210):
    two anti-resorptive drafts in one order set, different (both drugs) or the same (a doubled dose). One card per
    pair: on the later draft, or on the selected one when its partner is elsewhere in the set (order-select)."""
    ar = [d for d in every if d.identity is not None and d.identity.drug_class == "antiresorptive"]
    picked = {d.ref for d in chosen}
    out: list[Finding] = []
    for d in (x for x in ar if x.ref in picked):
        before = {o.ref for o in ar[: ar.index(d)]}
        partners = [o for o in ar if o.ref != d.ref and (o.ref not in picked or o.ref in before)]
        if not partners:
            continue
        names = list(dict.fromkeys(drug_fr(x) for x in [*partners, d]))
        if len(names) == 1:
            summary = _fit("Deux prescriptions d'", names[0], " dans la même ordonnance : dose doublée ?")
            if names[0][:1] not in "aeiouyéh":
                summary = _fit("Deux prescriptions de ", names[0], " dans la même ordonnance : dose doublée ?")
            text = (
                f"La prescription contient {len(partners) + 1} lignes de {names[0]} : une seule administration par "
                "mois est prévue. N'en garder qu'une."
            )
        else:
            joined = " et ".join(names)
            summary = _fit("Deux anti-résorptifs dans la même prescription : ", joined)
            text = (
                f"La prescription contient {joined}. Le référentiel propose l'un ou l'autre (acide zolédronique ou "
                "dénosumab mensuel), jamais les deux ensemble : n'en garder qu'un."
            )
        out.append(Finding(d, "two-antiresorptives", "SYS-SCHEDULE", "warning", summary, text))
    return out


def _nephrotoxicity(chosen: list[Draft], every: list[Draft]) -> list[Finding]:
    """SYS-RENAL-TOX (L770-772): a bisphosphonate with a platinum salt or pemetrexed in one order set, cumulative
    nephrotoxicity. One card for the set: on the bisphosphonate, or on the selected draft (order-select)."""
    bis = [d for d in every if d.identity is not None and d.identity.group == "bisphosphonate"]
    chemo = [d for d in every if d.identity is not None and d.identity.key in NEPHROTOXIC_WITH_BISPHOSPHONATES]
    if not bis or not chemo:
        return []
    picked = {d.ref for d in chosen}
    on = next((d for d in bis if d.ref in picked), None) or next((d for d in chemo if d.ref in picked), None)
    if on is None:
        return []
    names = " et ".join(dict.fromkeys(drug_fr(d) for d in [*chemo, *bis]))
    return [
        Finding(
            on,
            "nephrotoxicity",
            "SYS-RENAL-TOX",
            "warning",
            _fit("Néphrotoxicité cumulative : ", names),
            f"La prescription associe {names} : l'utilisation concomitante des sels de platine, du pemetrexed et des "
            "bisphosphonates expose à une néphrotoxicité cumulative. Surveiller la fonction rénale avant chaque cure "
            "et chaque perfusion.",
        )
    ]


#: a procedure ordered in the same order set (a ServiceRequest's code text or codings' display): the rule whose
#: checks it brings, the item's kind, and its names (French, English)
_PROCEDURES: Final = (
    ("IR-CEMENT", "Cimentoplastie", re.compile(r"cimentoplast|vert[eé]broplast|kyphoplast|cementoplast", re.I)),
    ("RT-PAIN", "Radiothérapie", re.compile(r"radioth[eé]rap|irradiation|radiotherap|st[eé]r[eé]otax|sbrt", re.I)),
)


def _procedure_names(resource: dict[str, Any]) -> list[str]:
    code = resource.get("code")
    if not isinstance(code, dict):
        return []
    names = [code["text"]] if isinstance(code.get("text"), str) else []
    return names + [c["display"] for c in code.get("coding") or [] if isinstance(c, dict) and "display" in c]


def _with_ordered_procedures(f: OrderFacts, every: list[Draft]) -> OrderFacts:
    """A cementoplasty (IR-CEMENT, L2626-2640) or a radiotherapy (RT-DRUG, Tableau 6) ordered in the same order set
    counts as planned for the drug checks, as the local plan's items do: the moment of ordering."""
    cement, rt = list(f.cementoplasty), list(f.radiotherapy)
    for d in every:
        if d.resource.get("resourceType") != "ServiceRequest":
            continue
        names = " ".join(str(n) for n in _procedure_names(d.resource))
        for rule_id, kind, pattern in _PROCEDURES:
            if pattern.search(names):
                item = PlanItem(
                    key=f"order:{d.ref}",
                    rule_id=rule_id,
                    status="to_do",
                    severity="warning",
                    title=f"{kind} — dans cette ordonnance : à signer",
                    text_fr=f"{kind} prescrite dans cette ordonnance.",
                    citation=cite(rule_id),
                )
                (cement if rule_id == "IR-CEMENT" else rt).append(item)
    return replace(f, cementoplasty=tuple(cement), radiotherapy=tuple(rt))


# ---- cards -------------------------------------------------------------------------------------------------------
def _when(v: Value) -> str:
    if v.at is None:
        return ""
    local = v.at.astimezone(HOSPITAL_TZ)
    return f" (prélèvement du {local:%d/%m/%Y} à {local:%H:%M})"


def _detail(x: Finding) -> str:
    lines = [x.text, *x.extra, ""]
    if x.used:
        lines.append("**Données utilisées :**")
        lines += [f"- {LABELS.get(v.name, v.name.replace('_', ' '))} : {shown(v)}{_when(v)}" for v in x.used]
        lines.append("")
    if x.missing:
        lines += ["**Données manquantes :** " + ", ".join(x.missing), ""]
    c = cite(x.rule_id)
    lines.append(f"Règle {x.rule_id} ({RULESET_VERSION}) — {c.section}, {c.lines}.")
    return "\n".join(lines)


def card(x: Finding, patient_id: str, links: Links) -> dict[str, Any]:
    """One CDS Hooks 2.0 card. Its uuid names the patient, the draft, the check and the data it used: the same draft
    checked again on the same data is the same card (the feedback then names it)."""
    c = cite(x.rule_id)
    data = tuple((v.name, v.value, v.comparator, v.at) for v in x.used)
    uid = derived_id("order-card", patient_id, x.draft.ref, x.check, x.rule_id, data, x.missing)
    out: dict[str, Any] = {
        "uuid": str(uid),
        "summary": x.summary[:SUMMARY_MAX],
        "indicator": x.indicator,
        "detail": _detail(x),
        "source": {
            "label": f"{GUIDELINE} — {c.section} ({c.lines})",
            "url": links.passage(x.rule_id),
            "topic": {"system": RULE_SYSTEM, "code": x.rule_id, "display": c.section},
        },
        "overrideReasons": override_reasons(),
        "links": [
            {"label": "Dossier OsteoCDS du patient (alertes, plan)", "url": links.page(patient_id), "type": "smart"}
        ],
    }
    if x.suggestion is not None:  # its uuid names the card's (the patient's) too: unique in the feedback's log
        out["suggestions"] = [{**x.suggestion, "uuid": str(derived_id("order-suggestion", uid, x.suggestion["uuid"]))}]
        out["selectionBehavior"] = "at-most-one"
    return out


_ORDER: Final = {"critical": 0, "warning": 1, "info": 2}


def cards(
    bundle: dict[str, Any] | None,
    f: OrderFacts,
    patient_id: str,
    links: Links,
    selections: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """The `order-sign` / `order-select` cards for the drafts, most urgent first."""
    every = drafts(bundle)
    chosen = every if selections is None else drafts(bundle, selections)
    f = _with_ordered_procedures(f, every)
    found = findings(chosen, f) + _two_antiresorptives(chosen, every) + _nephrotoxicity(chosen, every)
    return [card(x, patient_id, links) for x in sorted(found, key=lambda x: _ORDER[x.indicator])]
