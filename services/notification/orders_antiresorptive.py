"""The checks of an anti-resorptive draft order (notification/orders.py): zoledronic acid's dose against the clearance
(SYS-ZA-DOSE, Tableau 2, L1153-1184; CrCl < 30 contraindicated, L1155-1156), its rhythm (SYS-SCHEDULE, L1182,
L1132-1140), denosumab at CrCl < 30 and its dose and rhythm (SYS-DENO, L1210, L1215-1218), the osteoporosis products
never corrected in place, and the prerequisites (SYS-AR-PREREQ, L795-801, L1086-1100, L1267-1273; waived during a
current hypercalcaemic crisis, LAB-CA-CRISIS L300-306). A missing, stale or censored clearance gives "insufficient
data", never a dose. Pure, no I/O."""

from __future__ import annotations

import copy
import re
import unicodedata
from typing import Any, Final

from fhir.resources.R4B.medicationrequest import MedicationRequest
from pydantic import ValidationError

from contracts.base import derived_id
from services.notification.orders_drafts import Draft, Line
from services.notification.orders_facts import OrderFacts, Value
from services.notification.orders_finding import UCUM, UNITS_FR, Finding
from services.notification.orders_rules import (
    DENO_DOSE_MG,
    DENO_INTERVAL_DAYS,
    DRUG_FR,
    HOLDING_PREREQUISITES,
    MONTHLY,
    ON_TREATMENT_CHECK,
    OSTEOPOROSIS_FORMS,
    ZA_CUTS,
    ZA_MIN_INTERVAL_DAYS,
    ZaBand,
    severe_renal_failure,
    za_band,
)
from services.notification.vocabulary import prose


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
