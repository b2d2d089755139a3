"""The plan's orders as FHIR R4 MedicationRequest drafts: built in shared/clinical/fhir_orders.py, which notification's
CDS Hooks suggestions use too."""

from shared.clinical.fhir_orders import ATC, UCUM, medication_request, medication_requests

__all__ = ["ATC", "UCUM", "medication_request", "medication_requests"]
