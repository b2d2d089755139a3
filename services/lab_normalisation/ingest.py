"""Pure parsers: the project's JSON, FHIR R4 (fhir.resources) and HL7 v2.5 ORU^R01 (hl7) into one
`Ingested` per delivery, with every result already checked against LAB-UNITS. No I/O.

A delivery concerns one patient. What cannot be read at all raises `Rejected` (dead letter, 4xx or AR);
a bad result inside an otherwise good message is listed in `rejections` (dead letter or AE) and the
good results still go through. Result and event IDs are derived from the message, so a redelivery has
no second effect."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timezone
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

import hl7
import yaml
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from hl7.util import unescape
from pydantic import BaseModel, Field, ValidationError

from contracts.base import PatientId, derived_id
from contracts.clinical import Analyte
from contracts.hospital import Coding, LabResult, PatientRecord, ResultStatus
from services.lab_normalisation.rules import CANONICAL_UNIT, LOINC, LOINC_ANALYTES, LabRejection, to_canonical
from shared.errors import Rejected

PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_MESSAGE_BYTES = 1_000_000


class AnalyteMap:
    """LOINC plus configured local codes ("<system>|<code>") -> analyte."""

    def __init__(self, local: dict[str, Analyte]) -> None:
        self.local = local

    @classmethod
    def load(cls, path: Path) -> AnalyteMap:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        local = doc.get("local_codes") or {}
        allowed = set(get_args(Analyte))
        bad = {v for v in local.values() if v not in allowed}
        if bad:
            raise ValueError(f"{path}: unknown analytes {sorted(bad)}")
        return cls(dict(local))

    def lookup(self, code: Coding) -> Analyte | None:
        if code.system == LOINC:
            return LOINC_ANALYTES.get(code.code)
        return self.local.get(f"{code.system}|{code.code}")


class LabInput(BaseModel):
    """A result that passed LAB-UNITS: canonical value and unit (None when withdrawn)."""

    result: LabResult
    analyte: Analyte
    value: float | None
    unit: str
    loinc: str | None


class Ingested(BaseModel):
    """One delivery for one patient: a JSON event, a FHIR resource or Bundle, or an HL7 message."""

    key: str = Field(description="Idempotency key: event ID, FHIR id/version or HL7 control ID.")
    patient_id: PatientId
    labs: list[LabInput] = Field(default_factory=list)
    patients: list[PatientRecord] = Field(default_factory=list)
    rejections: list[str] = Field(default_factory=list)
    ignored: list[str] = Field(default_factory=list)

    def event_ids(self) -> list[uuid.UUID]:
        return [x.result.event_id for x in self.labs] + [p.event_id for p in self.patients]


def _reason(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
        for e in err.errors(include_input=False, include_url=False)
    )


def check_units(result: LabResult, analytes: AnalyteMap) -> LabInput | None:
    """LAB-UNITS for one result; None when no rule uses the analyte. Raises LabRejection."""
    analyte = analytes.lookup(result.code)
    if analyte is None:
        return None
    loinc = result.code.code if result.code.system == LOINC else None
    if result.status == "entered-in-error":
        return LabInput(result=result, analyte=analyte, value=None, unit=CANONICAL_UNIT[analyte], loinc=loinc)
    assert result.value is not None
    value, unit, _ = to_canonical(analyte, result.value, result.unit)
    return LabInput(result=result, analyte=analyte, value=value, unit=unit, loinc=loinc)


# ---- the project's JSON ---------------------------------------------------------------------------------
def from_json_lab(raw: bytes, analytes: AnalyteMap) -> Ingested:
    """A ValidationError (schema) is left to the runtime, which dead-letters it as such."""
    result = LabResult.model_validate_json(raw)
    try:
        checked = check_units(result, analytes)
    except LabRejection as exc:
        raise Rejected(str(exc)) from exc
    return Ingested(
        key=str(result.event_id),
        patient_id=result.patient_id,
        labs=[] if checked is None else [checked],
        ignored=[] if checked is not None else [f"unmapped analyte {result.code.system}|{result.code.code}"],
    )


def from_json_patient(raw: bytes) -> Ingested:
    record = PatientRecord.model_validate_json(raw)
    return Ingested(key=str(record.event_id), patient_id=record.patient_id, patients=[record])


# ---- FHIR R4 --------------------------------------------------------------------------------------------
FHIR_STATUS: dict[str, ResultStatus] = {
    "final": "final",
    "amended": "amended",
    "corrected": "corrected",
    "entered-in-error": "entered-in-error",
    "cancelled": "entered-in-error",
}
FHIR_SEX: dict[str, Literal["female", "male", "other", "unknown"]] = {
    "female": "female",
    "male": "male",
    "other": "other",
    "unknown": "unknown",
}


def _patient_ref(reference: str | None) -> str:
    if not reference or not reference.startswith("Patient/"):
        raise Rejected("Observation.subject must reference Patient/<pseudonymous id>")
    pid = reference.removeprefix("Patient/")
    if not PATIENT_ID.match(pid):
        raise Rejected("Observation.subject: not a pseudonymous patient ID")
    return pid


def _aware(value: object, what: str) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, date):
        raise Rejected(f"{what} has no time of day; a time is never guessed")
    raise Rejected(f"{what} missing")


def _observation(obs: Observation, analytes: AnalyteMap, received_at: datetime, out: Ingested) -> None:
    label = f"Observation/{obs.id or '?'}"
    status = FHIR_STATUS.get(str(obs.status))
    if status is None:
        if obs.status in ("registered", "preliminary", "unknown"):
            out.ignored.append(f"{label}: status {obs.status} is not a released result")
        else:
            out.rejections.append(f"{label}: invalid Observation.status")
        return
    codings = [c for c in ((obs.code.coding if obs.code else None) or []) if c.system and c.code]
    coding = next(
        (c for c in codings if analytes.lookup(Coding(system=str(c.system), code=str(c.code))) is not None),
        None,
    )
    if coding is None:
        out.ignored.append(f"{label}: no mapped code")
        return
    if not obs.id:
        out.rejections.append("Observation without id: a later amendment could not be matched")
        return
    try:
        when = _aware(obs.effectiveDateTime or (obs.effectivePeriod and obs.effectivePeriod.start), "effective time")
        recorded = obs.issued or (obs.meta.lastUpdated if obs.meta else None)
        recorded_at = _aware(recorded, "issued") if recorded else received_at
        q = obs.valueQuantity
        if status != "entered-in-error" and (q is None or q.value is None):
            raise Rejected("no numeric valueQuantity")
        unit = None if q is None else (q.code or q.unit)
        version = (obs.meta.versionId if obs.meta else None) or f"{status}@{recorded_at.isoformat()}"
        result = LabResult(
            event_id=derived_id("fhir", out.patient_id, obs.id, version),
            patient_id=out.patient_id,
            occurred_at=when,
            recorded_at=recorded_at,
            source="fhir-r4",
            result_id=f"fhir:{obs.id}",
            code=Coding(system=str(coding.system), code=str(coding.code), display=coding.display),
            value=None if status == "entered-in-error" or q is None or q.value is None else float(q.value),
            unit=unit,
            status=status,
        )
        checked = check_units(result, analytes)
    except (Rejected, LabRejection) as exc:
        out.rejections.append(f"{label}: {exc}")
        return
    except ValidationError as exc:
        out.rejections.append(f"{label}: {_reason(exc)}")
        return
    if checked is not None:
        out.labs.append(checked)


def _patient(pat: Patient, received_at: datetime, out: Ingested) -> None:
    updated = pat.meta.lastUpdated if pat.meta and pat.meta.lastUpdated else received_at
    out.patients.append(
        PatientRecord(
            event_id=derived_id(
                "fhir",
                out.patient_id,
                "Patient",
                (pat.meta.versionId if pat.meta else None) or "",
                pat.birthDate,
                pat.gender,
            ),
            patient_id=out.patient_id,
            occurred_at=updated,
            recorded_at=updated,
            source="fhir-r4",
            birth_date=pat.birthDate,
            sex=FHIR_SEX.get(str(pat.gender)) if pat.gender else None,
        )
    )


def from_fhir(raw: bytes, analytes: AnalyteMap, received_at: datetime) -> Ingested:
    """An Observation, a Patient, or a Bundle of them (one patient)."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Rejected(f"FHIR message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(f"not JSON: {type(exc).__name__}") from exc
    if not isinstance(doc, dict):
        raise Rejected("FHIR payload must be a JSON object")
    kind = doc.get("resourceType")
    try:
        if kind == "Bundle":
            bundle = Bundle.model_validate(doc)
            resources: list[Any] = [e.resource for e in (bundle.entry or []) if e.resource is not None]
            key = f"fhir:Bundle/{bundle.id}" if bundle.id else None
        elif kind == "Observation":
            resources = [Observation.model_validate(doc)]
            key = None
        elif kind == "Patient":
            resources = [Patient.model_validate(doc)]
            key = None
        else:
            raise Rejected(f"unsupported resourceType {kind!r}; accepted: Observation, Patient, Bundle")
    except ValidationError as exc:
        raise Rejected(f"invalid FHIR {kind}: {_reason(exc)}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # fhir.resources on odd structures
        raise Rejected(f"invalid FHIR {kind}: {type(exc).__name__}") from exc
    patients = {r.id for r in resources if isinstance(r, Patient)} | {
        _patient_ref(r.subject.reference if r.subject else None) for r in resources if isinstance(r, Observation)
    }
    if len(patients) != 1 or None in patients:
        raise Rejected("a FHIR message must concern exactly one identified patient")
    (patient_id,) = patients
    assert patient_id is not None
    if not PATIENT_ID.match(patient_id):
        raise Rejected("Patient.id: not a pseudonymous patient ID")
    out = Ingested(key=key or f"fhir:sha256:{hashlib.sha256(raw).hexdigest()}", patient_id=patient_id)
    for r in resources:
        if isinstance(r, Observation):
            _observation(r, analytes, received_at, out)
        elif isinstance(r, Patient):
            _patient(r, received_at, out)
        else:
            out.ignored.append(f"{type(r).__name__}: not used")
    return out


# ---- HL7 v2.5 ORU^R01 ---------------------------------------------------------------------------------------
HL7_STATUS: dict[str, ResultStatus] = {"F": "final", "C": "corrected", "D": "entered-in-error", "W": "entered-in-error"}
HL7_SEX: dict[str, Literal["female", "male", "other", "unknown"]] = {
    "F": "female",
    "M": "male",
    "O": "other",
    "A": "other",
    "N": "other",
    "U": "unknown",
}


class Hl7Message(BaseModel):
    """What an ACK needs to know about the message it answers."""

    control_id: str = ""
    sending_application: str = ""
    sending_facility: str = ""


def hl7_text(raw: bytes) -> str:
    """Decode (UTF-8, else ISO-8859-1), strip MLLP framing, use CR between segments."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Rejected(f"HL7 message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    text = text.strip("\x0b\x1c\r\n \t")
    return "\r".join(line for line in re.split(r"\r\n|\n|\r", text) if line.strip())


def _field(seg: hl7.Segment, field: int, component: int = 1, repeat: int = 1) -> str:
    """`seg.extract_field(1, field, repeat, component)` (first subcomponent, unescaped, stripped), with ""
    where that raises. The same walk without the library's per-call accessor bookkeeping: this is called
    ~30 times per message (a test checks it against `extract_field` on generated segments)."""
    try:
        if field >= len(seg):
            return ""
        rep = seg[field][repeat - 1]
        if not isinstance(rep, hl7.Repetition):
            if component != 1:
                return ""
            leaf = rep if field in (1, 2) and seg[0][0] == "MSH" else unescape(seg, rep)
        elif component > len(rep):
            return ""
        else:
            comp = rep[component - 1]
            if not isinstance(comp, hl7.Component):
                leaf = unescape(seg, comp)
            else:
                leaf = unescape(seg, comp[0]) if len(comp) else ""
        return str(leaf).strip()
    except (IndexError, KeyError, AttributeError, TypeError):
        return ""


def _hl7_time(value: str, tz: ZoneInfo, what: str) -> datetime:
    """HL7 TS; without an offset it is the sender's local time (the hospital's configured zone)."""
    if not value:
        raise Rejected(f"{what} missing")
    if not re.fullmatch(r"\d{12}(\d{2}(\.\d{1,4})?)?([+-]\d{4})?", value):
        raise Rejected(f"{what}: not an HL7 date-time with at least minutes; a time is never guessed")
    try:
        parsed = hl7.parse_datetime(value)
    except (ValueError, TypeError) as exc:
        raise Rejected(f"{what}: invalid date-time") from exc
    assert isinstance(parsed, datetime)
    try:
        offset = parsed.utcoffset()
        if offset is None:
            return parsed.replace(tzinfo=tz)
        # hl7's own tzinfo class cannot be copied: use the standard library's fixed offset
        return parsed.replace(tzinfo=timezone(offset))
    except ValueError as exc:  # e.g. "+9900": not a real offset
        raise Rejected(f"{what}: invalid time zone offset") from exc


def _hl7_date(value: str) -> date | None:
    if not value:
        return None
    if not re.fullmatch(r"\d{8}(\d{2,6})?([+-]\d{4})?", value):
        raise Rejected("PID-7 birth date is not YYYYMMDD")
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError as exc:
        raise Rejected("PID-7 birth date is not a valid date") from exc


def hl7_header(text: str) -> Hl7Message:
    """MSH fields for an ACK, read even from a message that fails later checks."""
    try:
        msh = hl7.parse(text).segment("MSH")
    except Exception:
        return Hl7Message()
    return Hl7Message(control_id=_field(msh, 10), sending_application=_field(msh, 3), sending_facility=_field(msh, 4))


USED_SEGMENTS = ("MSH|", "PID|", "OBR|", "OBX|")


def from_hl7(raw: bytes, analytes: AnalyteMap, tz: ZoneInfo) -> Ingested:
    text = hl7_text(raw)
    if not text.startswith("MSH|"):
        raise Rejected("not an HL7 v2 message: it must start with an MSH segment and '|' separators")
    # only the segments the rules read are parsed (PV1, ORC, NTE, SPM... are skipped)
    text = "\r".join(seg for seg in text.split("\r") if seg.startswith(USED_SEGMENTS))
    try:
        msg = hl7.parse(text)
        msh = msg.segment("MSH")
    except Exception as exc:  # the library raises several types on malformed input
        raise Rejected(f"malformed HL7: {type(exc).__name__}") from exc
    kind = (_field(msh, 9, 1), _field(msh, 9, 2))
    if kind != ("ORU", "R01"):
        raise Rejected(f"unsupported message type {kind[0]}^{kind[1]}; accepted: ORU^R01")
    control_id = _field(msh, 10)
    if not control_id:
        raise Rejected("MSH-10 message control ID missing")
    recorded_at = _hl7_time(_field(msh, 7), tz, "MSH-7 message time")
    pids = [s for s in msg if str(s[0]) == "PID"]
    if len(pids) != 1:
        raise Rejected("an ORU^R01 here must carry exactly one PID (one patient per message)")
    pid = pids[0]
    patient_id = _field(pid, 3)
    if not PATIENT_ID.match(patient_id):
        raise Rejected("PID-3 is missing or not a pseudonymous patient ID")
    facility = _field(msh, 4)
    out = Ingested(key=f"hl7:{_field(msh, 3)}|{facility}|{control_id}", patient_id=patient_id)
    request = Hl7Request(control_id=control_id, facility=facility, recorded_at=recorded_at)
    sex, birth = _field(pid, 8), _hl7_date(_field(pid, 7))
    if birth or sex:
        out.patients.append(
            PatientRecord(
                event_id=derived_id("hl7", facility, control_id, "PID"),
                patient_id=patient_id,
                occurred_at=recorded_at,
                recorded_at=recorded_at,
                source="hl7v2",
                birth_date=birth,
                sex=HL7_SEX.get(sex.upper()) if sex else None,
            )
        )
    for n, obx, obr in _observations(msg):
        try:
            checked = _obx(obx, obr, n, analytes, tz, out, request)
        except (Rejected, LabRejection) as exc:
            out.rejections.append(f"OBX {n}: {exc}")
            continue
        except ValidationError as exc:
            out.rejections.append(f"OBX {n}: {_reason(exc)}")
            continue
        if checked is not None:
            out.labs.append(checked)
    return out


class Hl7Request(BaseModel):
    """Message-level fields every OBX needs, read once."""

    control_id: str
    facility: str
    recorded_at: datetime


class Hl7Order(BaseModel):
    """OBR fields every OBX of the order needs, read once: specimen time and order number."""

    observed: str = ""
    filler: str = ""


def _observations(msg: hl7.Message) -> Iterable[tuple[int, hl7.Segment, Hl7Order]]:
    order = Hl7Order()
    n = 0
    for seg in msg:
        name = str(seg[0])
        if name == "OBR":
            order = Hl7Order(observed=_field(seg, 7), filler=_field(seg, 3) or _field(seg, 2))
        elif name == "OBX":
            n += 1
            yield n, seg, order


def _obx(
    obx: hl7.Segment, order: Hl7Order, n: int, analytes: AnalyteMap, tz: ZoneInfo, out: Ingested, req: Hl7Request
) -> LabInput | None:
    code, system = _field(obx, 3, 1), _field(obx, 3, 3)
    if not code:
        raise Rejected("OBX-3 observation identifier missing")
    coding = Coding(
        system=LOINC if system.upper() in ("LN", "LOINC") else system or "local",
        code=code,
        display=_field(obx, 3, 2) or None,
    )
    if analytes.lookup(coding) is None:
        out.ignored.append(f"OBX {n}: unmapped code")
        return None
    flag = _field(obx, 11).upper()
    status = HL7_STATUS.get(flag)
    if status is None:
        out.ignored.append(f"OBX {n}: result status {flag or '(empty)'} is not released")
        return None
    when_text = _field(obx, 14) or order.observed
    when = _hl7_time(when_text, tz, "specimen time (OBX-14 or OBR-7)")
    value: float | None = None
    unit = _field(obx, 6, 1) or None
    if status != "entered-in-error":
        value_type, text = _field(obx, 2).upper(), _field(obx, 5)
        if value_type not in ("NM", "SN", "ST", ""):
            raise Rejected(f"OBX-2 value type {value_type} is not numeric")
        if value_type == "SN":  # structured numeric: comparator^number; only a plain number is usable
            comparator, text = _field(obx, 5, 1), _field(obx, 5, 2)
            if comparator not in ("", "="):
                raise Rejected("censored value (comparator) cannot be used as a number")
        try:
            value = float(text.replace(",", "."))
        except ValueError as exc:
            raise Rejected("OBX-5 is not a number") from exc
    result = LabResult(
        event_id=derived_id("hl7", req.facility, req.control_id, n),
        patient_id=out.patient_id,
        occurred_at=when,
        recorded_at=req.recorded_at,
        source="hl7v2",
        result_id=f"hl7:{order.filler or req.control_id}|{code}|{_field(obx, 4) or n}",
        code=coding,
        value=value,
        unit=unit,
        status=status,
    )
    return check_units(result, analytes)


def hl7_ack(
    header: Hl7Message, code: Literal["AA", "AE", "AR"], errors: Iterable[str] = (), now: datetime | None = None
) -> str:
    """An HL7 v2.5 ACK: MSA with the answered control ID, and one ERR per problem."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S+0000")
    control = derived_id("ack", header.control_id, stamp).hex[:20]
    lines = [
        f"MSH|^~\\&|OSTEOCDS|OSTEOCDS|{_esc(header.sending_application)}|{_esc(header.sending_facility)}|{stamp}"
        f"||ACK^R01^ACK|{control}|P|2.5",
        f"MSA|{code}|{_esc(header.control_id)}",
    ]
    severity = "E" if code != "AA" else "I"
    lines += [f"ERR||||{severity}||||{_esc(e)[:500]}" for e in errors]
    return "\r".join(lines) + "\r"


def _esc(text: str) -> str:
    """HL7 escape sequences for the delimiter characters."""
    out = text.replace("\\", "\\E\\")
    for ch, seq in (("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"), ("\r", " "), ("\n", " ")):
        out = out.replace(ch, seq)
    return out
