"""Reading the `draftOrders` of a CDS Hooks `order-sign` / `order-select` request with the FHIR R4 models (drug
identity through shared.clinical.drugs.identify), and applying a card's suggestion to them as a CDS client does.
Pure."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.servicerequest import ServiceRequest
from pydantic import ValidationError

from shared.clinical.drugs import DrugIdentity, identify

ATC_SYSTEM: Final = "http://www.whocc.no/atc"


@dataclass(frozen=True)
class Draft:
    """One draft order of the hook's `draftOrders`, as received, with what the checks read from it."""

    ref: str  # "MedicationRequest/id"
    resource: dict[str, Any]
    valid: bool  # it passes the FHIR R4 model
    identity: DrugIdentity | None = None
    name: str = ""
    dose: tuple[float, str] | None = None  # first doseQuantity: value, UCUM code
    per_day: float | None = None  # administrations per day, when the timing gives it


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


def _identity(resource: dict[str, Any]) -> tuple[DrugIdentity | None, str]:
    concept = resource.get("medicationCodeableConcept")
    if not isinstance(concept, dict):
        return None, ""  # a medicationReference only: the vocabulary cannot place it
    names, atc = _names(concept)
    found = [identify(n, atc) for n in names] or ([identify(atc, atc)] if atc else [])
    known = next((i for i in found if i.known), None)
    return known or (found[0] if found else None), (names[0] if names else atc or "")


_PER_DAY: Final = {"d": 1.0, "h": 24.0, "wk": 1 / 7, "mo": 12 / 365.25, "a": 1 / 365.25, "min": 1440.0}


def _dose(mr: MedicationRequest) -> tuple[tuple[float, str] | None, float | None]:
    for dosage in mr.dosageInstruction or []:
        per_day = None
        repeat = dosage.timing.repeat if dosage.timing is not None else None
        if repeat is not None and repeat.frequency and repeat.period and repeat.periodUnit in _PER_DAY:
            per_day = repeat.frequency / float(repeat.period) * _PER_DAY[repeat.periodUnit]
        for dr in dosage.doseAndRate or []:
            q = dr.doseQuantity
            if q is not None and q.value is not None:
                return (float(q.value), str(q.code or q.unit or "")), per_day
        return None, per_day
    return None, None


def drafts(bundle: dict[str, Any] | None, selections: Iterable[str] | None = None) -> list[Draft]:
    """The MedicationRequest and ServiceRequest drafts of a `draftOrders` Bundle (order-select: the selected ones
    only, as the hook asks), read with the FHIR R4 models. A draft the model rejects is kept, marked invalid."""
    chosen = set(selections) if selections is not None else None
    out: list[Draft] = []
    for entry in (bundle or {}).get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        kind = resource.get("resourceType")
        if kind not in ("MedicationRequest", "ServiceRequest"):
            continue  # NutritionOrder, VisionPrescription...: no rule here reads them
        ref = f"{kind}/{resource.get('id', '')}"
        if chosen is not None and ref not in chosen:
            continue
        if kind == "ServiceRequest":
            out.append(Draft(ref, resource, _valid(ServiceRequest, resource)))
            continue
        who, name = _identity(resource)
        try:
            mr = MedicationRequest.model_validate(resource)
        except ValidationError:
            out.append(Draft(ref, resource, False, who, name))
            continue
        dose, per_day = _dose(mr)
        out.append(Draft(ref, resource, True, who, name, dose, per_day))
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
