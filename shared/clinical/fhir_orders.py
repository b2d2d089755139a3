"""Plan orders as FHIR R4 MedicationRequest resources (status draft, intent proposal), built and validated with
fhir.resources, so an EHR can pre-fill a prescription (the planner's API, CDS Hooks suggestions). Pure."""

from __future__ import annotations

import re
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medicationrequest import MedicationRequest

from contracts.base import derived_id
from contracts.plan import MedicationOrder, TreatmentPlan

ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
ROUTE_SNOMED = {
    "intravenous": ("47625008", "Intravenous route"),
    "subcutaneous": ("34206005", "Subcutaneous route"),
    "oral": ("26643006", "Oral route"),
}
ISO_UNITS = {"Y": "a", "M": "mo", "W": "wk", "D": "d", "H": "h"}


def _period(iso: str) -> tuple[int, str]:
    """ISO 8601 duration (P3M, P1W, PT8H) -> FHIR Timing period and unit."""
    m = re.fullmatch(r"P(?:T)?(\d+)([YMWDH])", iso)
    if m is None:
        raise ValueError(f"unsupported interval {iso}")
    unit = "min" if iso.startswith("PT") and m.group(2) == "M" else ISO_UNITS[m.group(2)]
    return int(m.group(1)), unit


def medication_request(plan: TreatmentPlan, order: MedicationOrder, item_key: str) -> MedicationRequest:
    period, unit = _period(order.interval)
    repeat: dict[str, Any] = {"frequency": 1, "period": period, "periodUnit": unit}
    if order.count is not None:
        repeat["count"] = order.count
    if order.duration is not None:
        d, du = _period(order.duration)
        repeat["boundsDuration"] = {"value": d, "unit": du, "system": UCUM, "code": du}
    code, display = ROUTE_SNOMED[order.route]
    return MedicationRequest.model_validate(
        {
            "resourceType": "MedicationRequest",
            "id": str(derived_id("medication-request", plan.event_id, item_key, order.drug)),
            "status": "draft",
            "intent": "proposal",
            "subject": {"reference": f"Patient/{plan.patient_id}"},
            "medicationCodeableConcept": {
                "coding": [{"system": ATC, "code": order.atc, "display": order.drug}] if order.atc else [],
                "text": order.drug.replace("_", " "),
            },
            "authoredOn": plan.recorded_at.isoformat(),
            "reasonCode": [{"text": ", ".join(order.rule_ids)}],
            "note": [{"text": f"OsteoCDS {plan.ruleset_version}, plan v{plan.version}: {order.instructions_fr}"}],
            "dosageInstruction": [
                {
                    "text": order.instructions_fr,
                    "timing": {"repeat": repeat},
                    "route": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]},
                    "doseAndRate": [
                        {"doseQuantity": {"value": order.dose, "unit": order.unit, "system": UCUM, "code": order.unit}}
                    ],
                }
            ],
        }
    )


def medication_requests(plan: TreatmentPlan) -> Bundle:
    entries = [{"resource": medication_request(plan, o, item.key)} for item in plan.items for o in item.orders]
    return Bundle.model_validate({"resourceType": "Bundle", "type": "collection", "entry": entries})
