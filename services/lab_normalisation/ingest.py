"""Pure parsers: the project's JSON, FHIR R4 (fhir.py) and HL7 v2 (hl7v2.py) into one `Ingested` per
delivery, with every result already checked against LAB-UNITS. No I/O.

A delivery concerns one patient. What cannot be read at all raises `Rejected` (dead letter, 4xx or AR);
a bad result inside an otherwise good message is listed in `rejections` (dead letter or AE) and the
good results still go through. Result and event IDs are derived from the message, so a redelivery has
no second effect. Clinical times later than the receipt time plus the clock-skew tolerance are refused
(issue 9.7, `shared.clinical.clock.NotAfter`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from contracts.hospital import LabResult, PatientRecord
from services.lab_normalisation.common import (
    MAX_MESSAGE_BYTES,
    PATIENT_ID,
    AnalyteMap,
    IdRule,
    Ingested,
    LabInput,
    check_time,
    check_units,
    note_unmapped,
)
from services.lab_normalisation.fhir import Nothing, from_fhir
from services.lab_normalisation.hl7_acks import hl7_ack
from services.lab_normalisation.hl7_segments import Hl7Message, _field, hl7_header, hl7_text
from services.lab_normalisation.hl7v2 import from_hl7
from services.lab_normalisation.rules import LabRejection
from shared.clinical.clock import NotAfter
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
    "Verdict",
    "_field",
    "check_units",
    "fhir_verdict",
    "from_fhir",
    "from_hl7",
    "from_json_lab",
    "from_json_patient",
    "hl7_ack",
    "hl7_header",
    "hl7_text",
    "hl7_verdict",
]


@dataclass(frozen=True)
class Verdict:
    """How HTTP (and MLLP) answer one message, decided from the parse alone: the HL7 ACK code or the FHIR
    outcome, the HTTP status, the problems (or the note that nothing was used) and whether to publish."""

    code: Literal["AA", "AE", "AR"]
    status: int
    reasons: list[str]
    batch: Ingested | None

    @property
    def publish(self) -> bool:
        return self.batch is not None and self.batch.used()


def nothing_used(ignored: list[str]) -> str:
    return ("nothing used: " + ("; ".join(ignored) or "no result the rules read"))[:480]


def hl7_verdict(raw: bytes, analytes: AnalyteMap, tz: ZoneInfo, guard: NotAfter) -> Verdict:
    """AA (200), AE with one reason per rejected OBX (422; the good results are accepted), AR when the message
    cannot be used (400). A valid message holding nothing used: AA (200), saying so."""
    try:
        batch = from_hl7(raw, analytes, tz, guard)
    except Rejected as exc:
        return Verdict("AR", 400, [str(exc)], None)
    if batch.rejections:
        return Verdict("AE", 422, batch.rejections, batch)
    return Verdict("AA", 200, [] if batch.used() else [nothing_used(batch.ignored)], batch)


def fhir_verdict(raw: bytes, analytes: AnalyteMap, guard: NotAfter, tz: ZoneInfo) -> Verdict:
    """202 when something is used (rejected parts listed); 200 when the message is valid and holds nothing
    used (as HL7 AA); 422 when it cannot be read or everything in it was refused. `code` is the HL7 equivalent."""
    try:
        batch = from_fhir(raw, analytes, guard, tz)
    except Nothing as exc:
        return Verdict("AA", 200, [str(exc)], None)
    except Rejected as exc:
        return Verdict("AR", 422, [str(exc)], None)
    if batch.used():
        return Verdict("AE" if batch.rejections else "AA", 202, batch.rejections, batch)
    if batch.rejections:
        return Verdict("AE", 422, batch.rejections, batch)
    return Verdict("AA", 200, [nothing_used(batch.ignored)], batch)


def from_json_lab(raw: bytes, analytes: AnalyteMap, guard: NotAfter) -> Ingested:
    """A ValidationError (schema) is left to the runtime, which dead-letters it as such."""
    result = LabResult.model_validate_json(raw)
    check_time(guard, result.occurred_at, "occurred_at (collection time)")
    check_time(guard, result.recorded_at, "recorded_at")
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
    check_time(guard, record.occurred_at, "occurred_at")
    check_time(guard, record.recorded_at, "recorded_at")
    check_time(guard, record.weight_measured_at, "weight_measured_at")
    check_time(guard, record.birth_date, "birth_date")
    return Ingested(key=str(record.event_id), patient_id=record.patient_id, patients=[record])
