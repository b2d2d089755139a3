"""What the three parsers share: the analyte map (LOINC catalogue plus configured local codes and patient
identifier rules), the checked result (`LabInput`) and one delivery (`Ingested`). Pure, no I/O but loading
the configuration file."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timezone
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError

from contracts.base import PatientId
from contracts.clinical import Analyte
from contracts.hospital import Coding, LabResult, PatientRecord
from services.lab_normalisation.loinc import LOINC, LOINC_ANALYTES, LOINC_CODES, LOINC_SHAPE, looks_relevant
from services.lab_normalisation.rules import CANONICAL_UNIT, to_canonical
from shared.clinical.clock import NotAfter
from shared.errors import Rejected

PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
MAX_MESSAGE_BYTES = 1_000_000

#: PID-3 identifier types never used as the patient key, whatever the configuration (national / social security
#: numbers: SS, SSN, NI, NH, NN* national person identifiers, INS the French national health identifier)
FORBIDDEN_ID_TYPES = re.compile(r"^(SS|SSN|NI|NH|NN[A-Z]{0,3}|INS.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class IdRule:
    """One accepted PID-3 identifier: its type code (CX-5) and, when given, its assigning authority (CX-4).
    `sole` (issue 24, `{untyped: sole}` in the configuration): an identifier without a type code, accepted only
    when it is the only identifier in PID-3 (CX-5 is optional in HL7 and often empty in v2.3/2.4 feeds; with
    several identifiers, which one is the patient is unknown, so none is taken)."""

    type: str
    authority: str | None = None
    sole: bool = False

    def matches(self, type_code: str, authorities: set[str]) -> bool:
        return type_code.upper() == self.type.upper() and (self.authority is None or self.authority in authorities)


@dataclass
class AnalyteMap:
    """LOINC catalogue plus configured local codes ("<system>|<code>") -> analyte; PID-3 rules per sending
    facility (MSH-4), the `default` rules otherwise."""

    local: dict[str, Analyte]
    id_rules: dict[str, tuple[IdRule, ...]] = field(
        default_factory=lambda: {"default": (IdRule("PI"), IdRule("MR"), IdRule("PT"), IdRule("", sole=True))}
    )

    @classmethod
    def load(cls, path: Path) -> AnalyteMap:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        local = doc.get("local_codes") or {}
        allowed = set(get_args(Analyte))
        bad = {v for v in local.values() if v not in allowed}
        if bad:
            raise ValueError(f"{path}: unknown analytes {sorted(bad)}")
        out = cls(dict(local))
        rules = doc.get("patient_identifiers")
        if rules:
            out.id_rules = {str(facility): _id_rules(path, facility, items) for facility, items in rules.items()}
            out.id_rules.setdefault("default", ())
        return out

    def lookup(self, code: Coding) -> Analyte | None:
        if code.system == LOINC:
            return LOINC_ANALYTES.get(code.code)
        return self.local.get(f"{code.system}|{code.code}")

    def id_rules_for(self, facility: str) -> tuple[IdRule, ...]:
        return self.id_rules.get(facility, self.id_rules["default"])


def _id_rules(path: Path, facility: Any, items: Any) -> tuple[IdRule, ...]:
    rules: list[IdRule] = []
    for i in items or []:
        if "untyped" in i:
            if i["untyped"] != "sole" or "type" in i:
                raise ValueError(f"{path}: patient_identifiers.{facility}: the untyped rule is {{untyped: sole}}")
            rules.append(IdRule("", i.get("authority"), sole=True))
        else:
            rules.append(IdRule(str(i["type"]), i.get("authority")))
    if any(FORBIDDEN_ID_TYPES.match(r.type) for r in rules):
        raise ValueError(f"{path}: patient_identifiers.{facility}: a national or social security number is never a key")
    return tuple(rules)


class LabInput(BaseModel):
    """A result that passed LAB-UNITS: canonical value and unit (None when withdrawn)."""

    result: LabResult
    analyte: Analyte
    value: float | None
    unit: str
    loinc: str | None
    notes: list[str] = Field(default_factory=list)
    #: issue 24: no value, with the sender's reason (FHIR dataAbsentReason): never published as a value
    absent: str | None = None


class Ingested(BaseModel):
    """One delivery for one patient: a JSON event, a FHIR resource or Bundle, or an HL7 message."""

    key: str = Field(description="Idempotency key: event ID, FHIR id/version or HL7 control ID and content.")
    patient_id: PatientId
    labs: list[LabInput] = Field(default_factory=list)
    patients: list[PatientRecord] = Field(default_factory=list)
    rejections: list[str] = Field(default_factory=list)
    ignored: list[str] = Field(default_factory=list)
    #: unknown codes that look like an analyte we use ("LOINC code" or "system|code"): counted and logged
    unmapped: list[str] = Field(default_factory=list)
    #: issue 25: results in the message (its admission budget's cost) and the record's timestamp (ms; 0: unknown)
    results: int = 1
    received_ms: int = 0

    def event_ids(self) -> list[uuid.UUID]:
        return [x.result.event_id for x in self.labs] + [p.event_id for p in self.patients]

    def used(self) -> bool:
        return bool(self.labs or self.patients)


def reason(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
        for e in err.errors(include_input=False, include_url=False)
    )


def note_unmapped(coding: Coding, out: Ingested, label: str) -> None:
    """Ignore a code no rule uses; remember it when its name looks like one of our analytes."""
    out.ignored.append(f"{label}: unmapped code")
    if looks_relevant(coding.display) and (coding.system != LOINC or LOINC_SHAPE.match(coding.code)):
        out.unmapped.append(coding.code if coding.system == LOINC else f"{coding.system}|{coding.code}")


def check_units(result: LabResult, analytes: AnalyteMap) -> LabInput | None:
    """LAB-UNITS for one result; None when no rule uses the analyte. Raises LabRejection."""
    analyte = analytes.lookup(result.code)
    if analyte is None:
        return None
    loinc = result.code.code if result.code.system == LOINC else None
    entry = LOINC_CODES.get(loinc or "")
    notes = [entry.note] if entry is not None and entry.note else []
    if result.status == "entered-in-error":
        return LabInput(result=result, analyte=analyte, value=None, unit=CANONICAL_UNIT[analyte], loinc=loinc)
    assert result.value is not None
    value, unit, _ = to_canonical(analyte, result.value, result.unit)
    return LabInput(result=result, analyte=analyte, value=value, unit=unit, loinc=loinc, notes=notes)


def fixed_offset(at: datetime) -> datetime:
    """Review RQ (HAZ-25-LAB-04): a local time of a named zone with that zone's offset at that instant, fixed. Two
    times sharing one named zone object compare by wall clock (LAB-CA-CORR's 48 h, L316, off by an hour across a DST
    change) where a state read again from JSON compares by instant: fixed, both compare by instant. Same isoformat."""
    offset = at.utcoffset()
    return at if offset is None or isinstance(at.tzinfo, timezone) else at.replace(tzinfo=timezone(offset))


def day_start(day: Any, tz: Any) -> datetime:
    """A date-only collection time: that day's first minute in the hospital's zone (never a guessed hour), with the
    zone's offset of that minute (fixed_offset)."""
    return fixed_offset(datetime(day.year, day.month, day.day, tzinfo=tz))


#: review of issue 24: the earliest date read (a draw, a message, a birth date): an earlier one is an entry error.
#: LAB-CRCL: an age of 140 years or more makes Cockcroft-Gault's (140 - age) zero or negative; and a time of year 1 or
#: 9999 cannot be moved to UTC (it crashed the aggregate's retention, and the future check's message)
EARLIEST_YEAR = 1900


def check_time(guard: NotAfter, when: datetime | date | None, what: str) -> None:
    """`guard.check` (not later than the receipt, issue 9.7), after refusing a date before EARLIEST_YEAR or a time
    that cannot be expressed in UTC: valid FHIR and HL7 dates, never clinical ones."""
    if when is None:
        return
    if not isinstance(when, date):  # e.g. a FHIR time the model left a string
        raise Rejected(f"{what} is not a date or a time this service reads")
    if when.year < EARLIEST_YEAR:
        raise Rejected(f"{what} is before {EARLIEST_YEAR}: an entry error, never a clinical date")
    if isinstance(when, datetime):
        try:
            when.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise Rejected(f"{what} is out of range") from exc
    guard.check(when, what)
