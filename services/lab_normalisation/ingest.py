"""Pure parsers: the project's JSON, FHIR R4 (fhir.py) and HL7 v2 (hl7v2.py) into one `Ingested` per
delivery, with every result already checked against LAB-UNITS. No I/O.

A delivery concerns one patient. What cannot be read at all raises `Rejected` (dead letter, 4xx or AR);
a bad result inside an otherwise good message is listed in `rejections` (dead letter or AE) and the
good results still go through. Result and event IDs are derived from the message, so a redelivery has
no second effect. Clinical times later than the receipt time plus the clock-skew tolerance are refused
(issue 9.7, `shared.clock.NotAfter`)."""

from __future__ import annotations

from contracts.hospital import LabResult, PatientRecord
from services.lab_normalisation.common import (
    MAX_MESSAGE_BYTES,
    PATIENT_ID,
    AnalyteMap,
    IdRule,
    Ingested,
    LabInput,
    check_units,
    note_unmapped,
)
from services.lab_normalisation.fhir import Nothing, from_fhir
from services.lab_normalisation.hl7v2 import Hl7Message, _field, from_hl7, hl7_ack, hl7_header, hl7_text
from services.lab_normalisation.rules import LabRejection
from shared.clock import NotAfter
from shared.errors import Rejected

__all__ = [
    "MAX_MESSAGE_BYTES",
    "PATIENT_ID",
    "AnalyteMap",
    "Hl7Message",
    "IdRule",
    "Ingested",
    "LabInput",
    "Nothing",
    "_field",
    "check_units",
    "from_fhir",
    "from_hl7",
    "from_json_lab",
    "from_json_patient",
    "hl7_ack",
    "hl7_header",
    "hl7_text",
]


def from_json_lab(raw: bytes, analytes: AnalyteMap, guard: NotAfter) -> Ingested:
    """A ValidationError (schema) is left to the runtime, which dead-letters it as such."""
    result = LabResult.model_validate_json(raw)
    guard.check(result.occurred_at, "occurred_at (collection time)")
    guard.check(result.recorded_at, "recorded_at")
    try:
        checked = check_units(result, analytes)
    except LabRejection as exc:
        raise Rejected(str(exc)) from exc
    out = Ingested(key=str(result.event_id), patient_id=result.patient_id, labs=[] if checked is None else [checked])
    if checked is None:
        note_unmapped(result.code, out, f"{result.code.system}|{result.code.code}")
    return out


def from_json_patient(raw: bytes, guard: NotAfter) -> Ingested:
    record = PatientRecord.model_validate_json(raw)
    guard.check(record.occurred_at, "occurred_at")
    guard.check(record.recorded_at, "recorded_at")
    guard.check(record.weight_measured_at, "weight_measured_at")
    guard.check(record.birth_date, "birth_date")
    return Ingested(key=str(record.event_id), patient_id=record.patient_id, patients=[record])
