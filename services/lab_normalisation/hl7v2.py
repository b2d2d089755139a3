"""HL7 v2 lab results (the `hl7` package) into one `Ingested`: ORU^R01, ORU^R30 (point-of-care) and OUL^R22
(IHE LAW / LCSD specimen-oriented results). Pure, no I/O.

- Text: in the character set MSH-18 declares, MLLP framing stripped, any line ending (issue 24): the text, its
  segments' fields and the MSH the ACK echoes are read in hl7_segments.py.
- ACK (issue 24): MSH-5/6 echo every component of the sender's MSH-3/4, MSH-11 and MSH-12 its processing ID and
  version, MSH-18 its character set; MSH-15/16 (accept / application acknowledgement: AL, NE, ER, SU) honoured:
  one acknowledgement per message, commit (CA/CE/CR) or application (AA/AE/AR), or none when not asked for.
- Patient: PID-3 chosen by identifier type (CX-5) and assigning authority (CX-4), per sending facility
  (MSH-4); never a national or social security number.
- A result is identified by its order (OBR-3 filler, else OBR-2 placer number), its code (LOINC when OBX-3
  carries one, as identifier or as alternate identifier in components 4-6) and OBX-4, never by its position.
- The idempotency key and the event IDs include a digest of the content: a control ID (MSH-10) reused for
  other content is another delivery, processed, never acknowledged and dropped as a duplicate.
- Times: a date without a time of day is a date (collection) or the receipt time (MSH-7), never a guess.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from typing import Literal
from zoneinfo import ZoneInfo

import hl7
from pydantic import ValidationError

from contracts.base import derived_id
from contracts.hospital import Coding, Comparator, LabResult, PatientRecord, ResultStatus, TimePrecision
from services.lab_normalisation.common import (
    FORBIDDEN_ID_TYPES,
    PATIENT_ID,
    AnalyteMap,
    IdRule,
    Ingested,
    LabInput,
    check_time,
    check_units,
    day_start,
    fixed_offset,
    note_unmapped,
    reason,
)
from services.lab_normalisation.hl7_segments import _field, _repeats, _subs, hl7_text
from services.lab_normalisation.loinc import LOINC
from services.lab_normalisation.rules import LabRejection
from shared.clinical.clock import NotAfter
from shared.errors import Rejected

HL7_STATUS: dict[str, ResultStatus] = {"F": "final", "C": "corrected", "D": "entered-in-error", "W": "entered-in-error"}
HL7_SEX: dict[str, Literal["female", "male", "other", "unknown"]] = {
    "F": "female",
    "M": "male",
    "O": "other",
    "A": "other",
    "N": "other",
    "U": "unknown",
}
ACCEPTED_TYPES = (("ORU", "R01"), ("ORU", "R30"), ("OUL", "R22"))
USED_SEGMENTS = ("MSH|", "PID|", "SPM|", "OBR|", "OBX|")
#: identifiers shaped like a US SSN or a French NIR are refused as a key whatever their type code
_NATIONAL_SHAPE = re.compile(r"^(\d{3}-\d{2}-\d{4}|[12]\d{12}(\d{2})?)$")
_NUMBER = re.compile(r"^(<=|>=|<|>|=)?\s*([-+]?\d+(?:[.,]\d+)?)$")
_TS = re.compile(r"^\d{8}(\d{4}(\d{2}(\.\d{1,4})?)?)?([+-]\d{4})?$")
_BIRTH_DATE = re.compile(r"\d{8}(\d{2,6})?([+-]\d{4})?")


def _hl7_time(value: str, tz: ZoneInfo, what: str) -> tuple[datetime, TimePrecision]:
    """HL7 TS/DTM: a date-time with at least minutes, or a date (precision "date": that day's first minute).
    Without an offset it is the sender's local time (the hospital's configured zone)."""
    if not value:
        raise Rejected(f"{what} missing")
    if not _TS.fullmatch(value):
        raise Rejected(f"{what}: not an HL7 date or date-time with at least minutes; a time is never guessed")
    try:
        parsed = hl7.parse_datetime(value)
    except (ValueError, TypeError) as exc:
        raise Rejected(f"{what}: invalid date-time") from exc
    assert isinstance(parsed, datetime)
    try:
        offset = parsed.utcoffset()
    except ValueError as exc:  # e.g. "+9900": not a real offset
        raise Rejected(f"{what}: invalid time zone offset") from exc
    zone = tz if offset is None else timezone(offset)  # hl7's own tzinfo cannot be copied
    if len(value.split("+")[0].split("-")[0]) == 8:
        return day_start(parsed.date(), zone), "date"
    try:
        # review RQ (HAZ-25-LAB-04): a local time gets its zone's offset at that instant, compared by instant
        return fixed_offset(parsed.replace(tzinfo=zone)), "time"
    except ValueError as exc:
        raise Rejected(f"{what}: invalid time zone offset") from exc


def _hl7_date(value: str) -> datetime | None:
    if not value:
        return None
    if not _BIRTH_DATE.fullmatch(value):
        raise Rejected("PID-7 birth date is not YYYYMMDD")
    try:
        return datetime(int(value[:4]), int(value[4:6]), int(value[6:8]), tzinfo=UTC)
    except ValueError as exc:
        raise Rejected("PID-7 birth date is not a valid date") from exc


def patient_key(pid: hl7.Segment, rules: tuple[IdRule, ...], facility: str) -> str:
    """PID-3: the first identifier matching the facility's rules, in the rules' order (issue 12)."""
    ids = [
        (_field(pid, 3, 1, r), _field(pid, 3, 5, r), {s for s in _subs(pid, 3, 4, r) if s})
        for r in range(1, _repeats(pid, 3) + 1)
    ]
    for rule in rules:
        for value, type_code, authorities in ids:
            if FORBIDDEN_ID_TYPES.match(type_code) or not rule.matches(type_code, authorities):
                continue
            if rule.sole and len(ids) != 1:  # issue 24: an untyped identifier is the key only when it is alone
                continue
            if not PATIENT_ID.match(value) or _NATIONAL_SHAPE.match(value):
                raise Rejected(f"PID-3 identifier of type {type_code or '(none)'} is not a pseudonymous patient ID")
            return value
    accepted = ", ".join(
        f"{r.type or '(untyped' + (', alone in PID-3)' if r.sole else ')')}{'@' + r.authority if r.authority else ''}"
        for r in rules
    )
    raise Rejected(f"PID-3 is missing or has no identifier of an accepted type ({accepted or 'none configured'})")


@dataclass(frozen=True, slots=True)
class Hl7Request:
    """Message-level fields every OBX needs, read once (issue 25: a plain record, never validated again)."""

    control_id: str
    facility: str
    digest: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Hl7Order:
    """OBR (and SPM) fields every OBX of the order needs: collection time and order number."""

    observed: str = ""
    specimen: str = ""
    number: str = ""
    in_order: bool = False  # False: an OBX of the specimen (OUL SPM group), before any OBR


def patient_of_hl7(raw: bytes, analytes: AnalyteMap) -> str | None:
    """Issue 25: the patient key `from_hl7` gives, read from the MSH and PID segments alone (~0.5 ms for a message of
    500 results, less than counting them: the intake refuses a flooding patient's message before parsing its
    results). None when it cannot be read: the full parse then says why."""
    try:
        text = hl7_text(raw)
        if not text.startswith("MSH|"):
            return None
        msg = hl7.parse("\r".join(seg for seg in text.split("\r") if seg.startswith(("MSH|", "PID|"))))
        pids = [seg for seg in msg if str(seg[0]) == "PID"]
        if len(pids) != 1:
            return None
        facility = _field(msg.segment("MSH"), 4)
        return patient_key(pids[0], analytes.id_rules_for(facility), facility)
    except Exception:  # the library raises several types on malformed input; Rejected for an unreadable PID-3
        return None


def from_hl7(raw: bytes, analytes: AnalyteMap, tz: ZoneInfo, guard: NotAfter) -> Ingested:
    text = hl7_text(raw)
    if not text.startswith("MSH|"):
        raise Rejected("not an HL7 v2 message: it must start with an MSH segment and '|' separators")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    # only the segments the rules read are parsed (PV1, ORC, NTE... are skipped)
    text = "\r".join(seg for seg in text.split("\r") if seg.startswith(USED_SEGMENTS))
    try:
        msg = hl7.parse(text)
        msh = msg.segment("MSH")
    except Exception as exc:  # the library raises several types on malformed input
        raise Rejected(f"malformed HL7: {type(exc).__name__}") from exc
    kind = (_field(msh, 9, 1), _field(msh, 9, 2))
    if kind not in ACCEPTED_TYPES:
        accepted = ", ".join("^".join(t) for t in ACCEPTED_TYPES)
        raise Rejected(f"unsupported message type {kind[0]}^{kind[1]}; accepted: {accepted}")
    control_id = _field(msh, 10)
    if not control_id:
        raise Rejected("MSH-10 message control ID missing")
    recorded_at, precision = _hl7_time(_field(msh, 7), tz, "MSH-7 message time")
    if precision == "date":  # MSH-7 is only when the message was made: a date alone means "received now"
        recorded_at = guard.received_at
    check_time(guard, recorded_at, "MSH-7 message time")
    pids = [s for s in msg if str(s[0]) == "PID"]
    if len(pids) != 1:
        raise Rejected(f"an {kind[0]}^{kind[1]} here must carry exactly one PID (one patient per message)")
    pid = pids[0]
    facility = _field(msh, 4)
    patient_id = patient_key(pid, analytes.id_rules_for(facility), facility)
    out = Ingested(key=f"hl7:{_field(msh, 3)}|{facility}|{control_id}|{digest}", patient_id=patient_id)
    req = Hl7Request(control_id=control_id, facility=facility, digest=digest, recorded_at=recorded_at)
    _demographics(pid, req, guard, out)
    seen: dict[str, tuple[int, LabInput]] = {}
    conflicting: set[str] = set()  # result IDs sent twice with different contents: neither is used
    for n, obx, order in _observations(msg):
        try:
            checked = _obx(obx, order, n, analytes, tz, guard, out, req)
            if checked is not None and checked.result.result_id in conflicting:
                raise Rejected("another OBX with the same order, code and OBX-4 sub-ID: which one holds is unknown")
            if checked is not None and checked.result.result_id in seen:
                first, earlier = seen[checked.result.result_id]
                if earlier == checked:  # issue 24: the same OBX repeated identically is one result
                    out.ignored.append(f"OBX {n}: an identical repeat of OBX {first} (one result)")
                    continue
                # which of the two holds is unknown: neither is used (never guess a value), both are named
                conflicting.add(checked.result.result_id)
                out.labs = [x for x in out.labs if x is not earlier]
                out.rejections.append(
                    f"OBX {first}: OBX {n} has the same order, code and OBX-4 sub-ID with another value: which one "
                    "holds is unknown"
                )
                raise Rejected("a second OBX with the same order, code and OBX-4 sub-ID: which one holds is unknown")
        except (Rejected, LabRejection) as exc:
            out.rejections.append(f"OBX {n}: {exc}")
            continue
        except ValidationError as exc:
            out.rejections.append(f"OBX {n}: {reason(exc)}")
            continue
        if checked is not None:
            seen[checked.result.result_id] = (n, checked)
            out.labs.append(checked)
    return out


def _demographics(pid: hl7.Segment, req: Hl7Request, guard: NotAfter, out: Ingested) -> None:
    sex, birth = _field(pid, 8), _hl7_date(_field(pid, 7))
    if birth is not None:
        try:
            check_time(guard, birth, "PID-7 birth date")
        except Rejected as exc:
            out.rejections.append(f"PID: {exc}")
            return
    if birth or sex:
        out.patients.append(
            PatientRecord(
                event_id=derived_id("hl7", req.facility, req.control_id, req.digest, "PID"),
                patient_id=out.patient_id,
                occurred_at=req.recorded_at,
                recorded_at=req.recorded_at,
                source="hl7v2",
                birth_date=birth.date() if birth else None,
                sex=HL7_SEX.get(sex.upper()) if sex else None,
            )
        )


def _observations(msg: hl7.Message) -> Iterable[tuple[int, hl7.Segment, Hl7Order]]:
    order = Hl7Order()
    specimen = ""
    n = 0
    for seg in msg:
        name = str(seg[0])
        if name == "SPM":  # OUL^R22: the specimen, then its orders
            specimen = _field(seg, 17)
            order = Hl7Order(specimen=specimen)
        elif name == "OBR":
            number = _field(seg, 3) or _field(seg, 2)
            order = Hl7Order(observed=_field(seg, 7), specimen=specimen, number=number, in_order=True)
        elif name == "OBX":
            n += 1
            yield n, seg, order


def _coding(obx: hl7.Segment, first: int) -> Coding | None:
    code, system = _field(obx, 3, first), _field(obx, 3, first + 2)
    if not code:
        return None
    return Coding(
        system=LOINC if system.upper() in ("LN", "LOINC") else system or "local",
        code=code[:64],
        display=_field(obx, 3, first + 1)[:256] or None,
    )


def _value(obx: hl7.Segment) -> tuple[float, Comparator | None]:
    """OBX-5 as a number and its comparator; NM, ST and SN read alike ("<5", "SN: <^5")."""
    value_type = _field(obx, 2).upper()
    if value_type not in ("NM", "SN", "ST", ""):
        raise Rejected(f"OBX-2 value type {value_type} is not numeric")
    if value_type == "SN":  # structured numeric: comparator^num1^separator^num2
        if _field(obx, 5, 3) or _field(obx, 5, 4):
            raise Rejected("OBX-5 is a range or a ratio, not one value")
        text = f"{_field(obx, 5, 1)}{_field(obx, 5, 2)}"
    else:
        text = _field(obx, 5)
    m = _NUMBER.fullmatch(text.strip())
    if m is None:
        raise Rejected("OBX-5 is not a number")
    comparator = m.group(1)
    return float(m.group(2).replace(",", ".")), None if comparator in (None, "=") else comparator  # type: ignore[return-value]


def _obx(
    obx: hl7.Segment,
    order: Hl7Order,
    n: int,
    analytes: AnalyteMap,
    tz: ZoneInfo,
    guard: NotAfter,
    out: Ingested,
    req: Hl7Request,
) -> LabInput | None:
    codings = [c for c in (_coding(obx, 1), _coding(obx, 4)) if c is not None]
    if not codings:
        raise Rejected("OBX-3 observation identifier missing")
    mapped = sorted((c for c in codings if analytes.lookup(c) is not None), key=lambda c: c.system != LOINC)
    if not mapped:
        relevant = next((c for c in codings if c.system == LOINC), codings[0])
        note_unmapped(relevant, out, f"OBX {n}")
        return None
    coding = mapped[0]
    if not order.in_order and order.specimen:
        out.ignored.append(f"OBX {n}: an observation about the specimen (SPM group), not a result")
        return None
    flag = _field(obx, 11).upper()
    status = HL7_STATUS.get(flag)
    if status is None:
        out.ignored.append(f"OBX {n}: result status {flag or '(empty)'} is not released")
        return None
    when, precision = _hl7_time(
        _field(obx, 14) or order.observed or order.specimen, tz, "specimen time (OBX-14, OBR-7 or SPM-17)"
    )
    check_time(guard, when, "specimen time")
    value: float | None = None
    comparator: Comparator | None = None
    unit = _field(obx, 6, 1) or None
    if status != "entered-in-error":
        value, comparator = _value(obx)
    result_id = f"hl7:{order.number or req.control_id}|{coding.code}|{_field(obx, 4)}"
    result = LabResult(
        event_id=derived_id("hl7", req.facility, req.control_id, req.digest, result_id),
        patient_id=out.patient_id,
        occurred_at=when,
        recorded_at=req.recorded_at,
        source="hl7v2",
        result_id=result_id[:128],
        code=coding,
        value=value,
        unit=unit,
        status=status,
        comparator=comparator,
        occurred_at_precision=precision,
    )
    return check_units(result, analytes)
