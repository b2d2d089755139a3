"""Reading the `draftOrders` of a CDS Hooks `order-sign` / `order-select` request with the FHIR R4 models (drug
identity through shared.clinical.drugs.identify), and applying a card's suggestion to them as a CDS client does.
Pure."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from shared.clinical.drugs import DrugIdentity, identify

ATC_SYSTEM: Final = "http://www.whocc.no/atc"


#: draft statuses that are no longer to sign (FHIR R4 MedicationRequest / ServiceRequest status): never checked
NOT_TO_SIGN: Final = frozenset({"cancelled", "entered-in-error", "stopped", "completed", "revoked"})


@dataclass(frozen=True)
class Line:
    """One dosageInstruction: its first doseQuantity (value, UCUM code) and administrations per day (timing)."""

    dose: tuple[float, str] | None
    per_day: float | None  # at the most frequent the timing allows (frequencyMax)


@dataclass(frozen=True)
class Draft:
    """One draft order of the hook's `draftOrders`, as received, with what the checks read from it."""

    ref: str  # "MedicationRequest/id" (an id-less draft: its fullUrl, else its place in the Bundle)
    resource: dict[str, Any]
    valid: bool  # it passes the FHIR R4 model
    identity: DrugIdentity | None = None
    name: str = ""
    lines: tuple[Line, ...] = ()
    #: the drugs the draft's names and codes designate when they disagree (then `identity` is None): to check
    conflict: tuple[str, ...] = ()
    #: every name the draft gives its drug (text, codings' display), as written
    names: tuple[str, ...] = ()
    #: several substances on one line (then `conflict` names them): each to prescribe on its own line
    combination: bool = False

    @property
    def has_id(self) -> bool:
        """An `update` or `delete` names its resource by type and id (CDS Hooks 2.0): none without an id."""
        return isinstance(self.resource.get("id"), str) and bool(self.resource["id"])

    @property
    def dose(self) -> tuple[float, str] | None:
        """The first dose given (value, UCUM code)."""
        return next((line.dose for line in self.lines if line.dose is not None), None)

    @property
    def per_day(self) -> float | None:
        return self.lines[0].per_day if self.lines else None


# ---- reading the drafts ------------------------------------------------------------------------------------------
def _names(concept: dict[str, Any]) -> tuple[list[str], str | None]:
    names = [concept["text"]] if isinstance(concept.get("text"), str) else []
    atc = None
    for c in concept.get("coding") or []:
        if not isinstance(c, dict):
            continue
        if c.get("system") == ATC_SYSTEM and isinstance(c.get("code"), str):
            atc = c["code"]
        if isinstance(c.get("display"), str):
            names.append(c["display"])
    return names, atc


#: the words before the strength: an RxNorm clinical drug ("zoledronic acid 4 MG in 100 ML Injection") or a
#: preparation ("acide zolédronique 4 mg dans NaCl 0,9 %") names its substance there
#: what separates two substances on one line (shared/clinical/drugs.py's combination separators)
_COMBINATION: Final = re.compile(r"\s/\s|\+|&|\s+et\s+|\s+and\s+|,|;|\s+avec\s+|\s+with\s+")
_LEADING: Final = re.compile(r"^\s*([^\d(\[+/]*[^\d\s(\[+/])\s*\d")


def _one(name: str, atc: str | None) -> DrugIdentity:
    found = identify(name, atc)
    if found.known or found.conflict:
        return found
    lead = _LEADING.match(name)
    return identify(lead.group(1), atc) if lead is not None else found


def _identity(
    resource: dict[str, Any],
) -> tuple[DrugIdentity | None, str, tuple[str, ...], tuple[str, ...], bool]:
    """The drug, its name as written, the drugs designated when names and codes disagree (or the substances of a
    combination), every name, and whether the line is a combination."""
    concept = resource.get("medicationCodeableConcept")
    if not isinstance(concept, dict):
        return None, "", (), (), False  # a medicationReference only: the vocabulary cannot place it
    names, atc = _names(concept)
    found = [_one(n, atc) for n in names] or ([identify(atc, atc)] if atc else [])
    known = [i for i in found if i.known]
    name = names[0] if names else atc or ""
    if any(i.conflict for i in found) or len({i.key for i in known}) > 1:
        if any(i.combination for i in found):  # "aspirine 75 mg + clopidogrel", "Kardégic (+ clopidogrel)"
            parts = [_one(x, None) for n in names for x in _COMBINATION.split(re.sub(r"[()\[\]]", " ", n))]
            return None, name, tuple(dict.fromkeys(i.key for i in parts if i.known)), tuple(names), True
        alone = [_one(n, None) for n in names] + ([identify(atc, atc)] if atc else [])
        keys = tuple(dict.fromkeys(i.key for i in alone if i.known)) or tuple(dict.fromkeys(i.key for i in found))
        return None, name, keys, tuple(names), False
    return (known[0] if known else (found[0] if found else None)), name, (), tuple(names), False


_PER_DAY: Final = {"d": 1.0, "h": 24.0, "wk": 1 / 7, "mo": 12 / 365.25, "a": 1 / 365.25, "min": 1440.0}
#: FHIR Timing.code (HL7 v3 GTS abbreviations) as administrations per day, when the timing has no repeat
GTS_PER_DAY: Final = {
    "QD": 1.0,
    "AM": 1.0,
    "PM": 1.0,
    "BED": 1.0,
    "QOD": 0.5,
    "BID": 2.0,
    "TID": 3.0,
    "QID": 4.0,
    "Q1H": 24.0,
    "Q2H": 12.0,
    "Q3H": 8.0,
    "Q4H": 6.0,
    "Q6H": 4.0,
    "Q8H": 3.0,
    "WK": 1 / 7,
    "MO": 12 / 365.25,
}


def _lines(mr: MedicationRequest) -> tuple[Line, ...]:
    out = []
    for dosage in mr.dosageInstruction or []:
        per_day = None
        repeat = dosage.timing.repeat if dosage.timing is not None else None
        if repeat is not None and repeat.frequency and repeat.period and repeat.periodUnit in _PER_DAY:
            most = max(repeat.frequency, repeat.frequencyMax or 0)  # "1 to 3 times": counted at its most
            per_day = most / float(repeat.period) * _PER_DAY[repeat.periodUnit]
        elif dosage.timing is not None and dosage.timing.code is not None:  # "BID", "QD", "Q8H"...
            codes = [c.code for c in dosage.timing.code.coding or [] if c.code in GTS_PER_DAY]
            per_day = GTS_PER_DAY[codes[0]] if codes else None
        dose = None
        for dr in dosage.doseAndRate or []:
            q = dr.doseQuantity
            if q is not None and q.value is not None:
                dose = (float(q.value), str(q.code or q.unit or ""))
                break
        out.append(Line(dose, per_day))
    return tuple(out)


def drafts(bundle: dict[str, Any] | None, selections: Iterable[str] | None = None) -> list[Draft]:
    """The MedicationRequest and ServiceRequest drafts of a `draftOrders` Bundle (order-select: the selected ones
    only, as the hook asks), read with the FHIR R4 models. A draft the model rejects is kept, marked invalid; a
    cancelled, stopped or entered-in-error one is no longer to sign and is left out."""
    chosen = set(selections) if selections is not None else None
    out: list[Draft] = []
    for index, entry in enumerate((bundle or {}).get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        kind = resource.get("resourceType")
        if kind not in ("MedicationRequest", "ServiceRequest"):
            continue  # NutritionOrder, VisionPrescription...: no rule here reads them
        if resource.get("status") in NOT_TO_SIGN:
            continue
        rid = resource.get("id")
        full_url = entry.get("fullUrl")
        ref = f"{kind}/{rid}" if isinstance(rid, str) and rid else str(full_url or f"{kind}#{index}")
        if chosen is not None and ref not in chosen:
            continue
        if kind == "ServiceRequest":
            out.append(Draft(ref, resource, _valid(ServiceRequest, resource)))
            continue
        who, name, conflict, names, combination = _identity(resource)
        try:
            mr = MedicationRequest.model_validate(resource)
        except ValidationError:
            out.append(Draft(ref, resource, False, who, name, (), conflict, names, combination))
            continue
        out.append(Draft(ref, resource, True, who, name, _lines(mr), conflict, names, combination))
    return out


def _valid(model: type[ServiceRequest], resource: dict[str, Any]) -> bool:
    try:
        model.model_validate(resource)
    except ValidationError:
        return False
    return True


def apply_suggestion(bundle: dict[str, Any], suggestion: dict[str, Any]) -> dict[str, Any]:
    """What a CDS client does when the clinician accepts a suggestion (CDS Hooks 2.0 actions): `update` replaces the
    resource of the same type and id, `delete` removes it, `create` adds one. Used by tests and the README."""
    out = copy.deepcopy(bundle)
    entries = out.setdefault("entry", [])
    for action in suggestion.get("actions", []):
        kind = action["type"]
        if kind == "create":
            entries.append({"resource": action["resource"]})
            continue
        ref = action.get("resourceId")
        if kind == "update":
            r = action["resource"]
            ref = f"{r['resourceType']}/{r.get('id', '')}"
        keep = []
        for e in entries:
            r = e.get("resource", {})
            if f"{r.get('resourceType')}/{r.get('id', '')}" == ref:
                if kind == "update":
                    keep.append({**e, "resource": action["resource"]})
                continue
            keep.append(e)
        entries[:] = keep
    return out
