"""The patient's facts the order checks read, taken from what the services publish and notification keeps
(services/notification/domain.py `PatientAlerts`): the newest clearance (lab normalisation), the systemic plan's
prerequisites and initial clearance (systemic planner), a current hypercalcaemic crisis (scoring's LAB-CA-CRISIS
alert), the local plan's radiotherapy and cementoplasty items (radiotherapy planner). Pure: `now` is passed in.
Nothing is guessed: a fact the services did not publish is None, and the check says it is missing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from contracts.base import InputUsed
from contracts.clinical import Alert, NormalisedLab
from contracts.hospital import Comparator
from contracts.plan import PlanItem
from services.notification.domain import PatientAlerts
from services.notification.orders_rules import (
    CALCIUM_CURRENT,
    CRCL_MAX_AGE,
    CRISIS_CALCIUM_MMOL_L,
    FUTURE_TOLERANCE,
)
from shared.clinical.censored import side_of

#: the alert statuses of a decision that still holds (a clinician acting on it does not end the crisis)
HOLDING: tuple[str, ...] = ("active", "acknowledged", "overridden")
#: local-plan statuses of an item still to be done (a planned radiotherapy or cementoplasty)
PLANNED: tuple[str, ...] = ("recommended", "to_do", "cannot_decide", "warning")
#: local-treatment rules whose items are a radiotherapy course (RT-DRUG windows apply to them, L1948-2016)
RT_RULES: frozenset[str] = frozenset(
    {"RT-PAIN", "RT-FRACT-PALL", "RT-FRACTURE-RISK", "RT-MSCC", "RT-POSTOP", "RT-SBRT-IND", "RT-SBRT-DOSE", "RT-REIRR"}
)


#: the services' `missing` codes (English, for machines) as a clinician reads them, by prefix; others generically
MISSING_FR: tuple[tuple[str, str], ...] = (
    ("weight to measure again", "poids récent (le dernier est trop ancien)"),
    ("weight", "poids"),
    ("age", "âge (date de naissance)"),
    ("sex", "sexe (facteur de Cockcroft-Gault)"),
    ("exact creatinine", "créatininémie et poids exacts (résultat censuré)"),
    ("date of the last", "date de la dernière administration"),
    ("identity of", "identité du médicament (anticancéreux ?)"),
)


def missing_fr(code: str) -> str:
    return next((fr for prefix, fr in MISSING_FR if code.startswith(prefix)), "donnée manquante signalée par le plan")


@dataclass(frozen=True)
class Value:
    """A value used, with its unit, clinical time and provenance (shown on the card)."""

    name: str
    value: float
    unit: str
    at: datetime | None
    comparator: Comparator | None = None
    source_event_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Clearance:
    """The current Cockcroft-Gault clearance, or why there is none (`missing`, in English codes like every
    service's `missing`; `stale` when the newest one is older than CRCL_MAX_AGE)."""

    value: Value | None
    missing: tuple[str, ...] = ()
    stale: Value | None = None


@dataclass(frozen=True)
class OrderFacts:
    now: datetime
    crcl: Clearance
    #: SYS-ZA-DOSE, Tableau 2 "clairance initiale": the clearance before the first infusion, when the plan used it
    initial_crcl: Value | None = None
    plan_received: bool = False
    prerequisites: PlanItem | None = None
    crisis: Alert | None = None
    local_plan_received: bool = False
    radiotherapy: tuple[PlanItem, ...] = ()
    cementoplasty: tuple[PlanItem, ...] = ()
    #: RT-DRUG items: the radiotherapy planner's window for each drug under way (key `{lesion}:drug:{drug}`)
    windows: tuple[PlanItem, ...] = ()


def _clearance(lab: NormalisedLab | None, now: datetime) -> Clearance:
    if lab is None:
        return Clearance(None, ("clairance de la créatinine (Cockcroft-Gault)",))
    if lab.value is None:  # not computable: lab normalisation says why (weight, age, sex, creatinine...)
        said = tuple(dict.fromkeys(missing_fr(m) for m in lab.missing))
        return Clearance(None, said or ("clairance de la créatinine (Cockcroft-Gault)",))
    v = Value("creatinine_clearance", lab.value, lab.unit, lab.occurred_at, lab.comparator, lab.event_id)
    if lab.unit != "mL/min":  # Tableau 2's bands are mL/min (L1159-1178): another unit is never read as one
        return Clearance(None, ("clairance de la créatinine en mL/min",), stale=v)
    if lab.occurred_at > now + FUTURE_TOLERANCE:
        return Clearance(None, ("clairance datée dans le futur : à vérifier",), stale=v)
    if now - lab.occurred_at > CRCL_MAX_AGE:
        return Clearance(None, ("créatininémie et poids récents (clairance de plus de 30 jours)",), stale=v)
    return Clearance(v)


def _input(i: InputUsed) -> Value | None:
    if not isinstance(i.value, int | float) or isinstance(i.value, bool):
        return None
    return Value(i.name, float(i.value), i.unit or "mL/min", i.occurred_at, i.comparator, i.source_event_id)


def crisis_current(state: PatientAlerts, now: datetime) -> bool:
    """LAB-CA-CRISIS (L304-306): the newest corrected calcium is certainly > 3,5 mmol/L and current (CALCIUM_CURRENT,
    not dated in the future). Scoring keeps an ended or stale episode's alert as it was: the alert alone is not the
    emergency that waives the prerequisites (« sauf urgence »); no calcium known, no emergency assumed."""
    lab = state.labs.get("corrected_calcium")
    if lab is None or lab.value is None or lab.unit != "mmol/L":
        return False
    if lab.occurred_at > now + FUTURE_TOLERANCE or now - lab.occurred_at > CALCIUM_CURRENT:
        return False
    return side_of(lab.value, lab.comparator, CRISIS_CALCIUM_MMOL_L, ">") == "above"


def facts(state: PatientAlerts | None, now: datetime) -> OrderFacts:
    """What the order checks know of the patient at `now`."""
    if state is None:
        return OrderFacts(now, _clearance(None, now))
    crcl = _clearance(state.labs.get("creatinine_clearance"), now)
    plan = state.plan
    prerequisites = initial = None
    if plan is not None:
        prerequisites = next((i for i in plan.items if i.key == "prerequisites"), None)
        ar = next((i for i in plan.items if i.key == "antiresorptive"), None)
        if ar is not None:
            found = next((i for i in ar.inputs if i.name == "initial_creatinine_clearance"), None)
            initial = _input(found) if found is not None else None
    crisis = next(
        (
            a
            for a in sorted(state.alerts.values(), key=lambda a: a.occurred_at, reverse=True)
            if a.rule_id == "LAB-CA-CRISIS"
            and a.severity == "critical"
            and a.status in HOLDING
            and str(a.recommendation_id) not in state.pending
        ),
        None,
    )
    if not crisis_current(state, now):
        crisis = None
    local = state.local_plan
    rt: list[PlanItem] = []
    cement: list[PlanItem] = []
    windows: list[PlanItem] = []
    if local is not None:
        for i in [*(i for s in local.sections for i in s.items), *local.patient_items]:
            if i.rule_id == "RT-DRUG":
                windows.append(i)
            elif i.status in PLANNED and i.rule_id in RT_RULES:
                rt.append(i)
            elif i.status in PLANNED and i.rule_id == "IR-CEMENT":
                cement.append(i)
    return OrderFacts(
        now=now,
        crcl=crcl,
        initial_crcl=initial,
        plan_received=plan is not None,
        prerequisites=prerequisites,
        crisis=crisis,
        local_plan_received=local is not None,
        radiotherapy=tuple(rt),
        cementoplasty=tuple(cement),
        windows=tuple(windows),
    )
