"""FHIR R4 (fhir.resources, R4B models) into one `Ingested`: an Observation, a Patient, or a Bundle of any
type holding Observations (panels with `hasMember`, `component`s), DiagnosticReports, Specimens and one
Patient. Pure, no I/O.

- The patient is `Patient/<id>`, an absolute URL ending in `Patient/<id>`, or a `urn:uuid:` (or any fullUrl)
  resolved inside the Bundle to a Patient with an id. An Observation without subject takes the subject of
  the DiagnosticReport or panel that lists it.
- The collection time is the Observation's effective time, else its Specimen's collection time, else the
  DiagnosticReport's effective time (the report or panel that lists it). A date without a time is used as a
  date (`occurred_at_precision` "date"), never given a guessed hour.
- A valid message holding nothing the rules use is accepted, saying nothing was used.
- Dates (issue 24): every FHIR precision is read. A collection time that is only a year or a month refuses that
  result (never guessed); a birth date that is only a year or a month gives no birth date (the age is not known
  exactly) and the rest of the message is kept; a partial date is in the future only when its first day is.
- An Observation (or component) with `dataAbsentReason` instead of a value (issue 24) is accepted as "no value"
  with the reason: never published as a value; a value it replaces (same Observation, newer version) is withdrawn.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.specimen import Specimen
from pydantic import ValidationError

from contracts.base import derived_id
from contracts.hospital import Coding, Comparator, LabResult, PatientRecord, ResultStatus, TimePrecision
from services.lab_normalisation.common import (
    MAX_MESSAGE_BYTES,
    PATIENT_ID,
    AnalyteMap,
    Ingested,
    check_time,
    check_units,
    day_start,
    note_unmapped,
    reason,
)
from services.lab_normalisation.rules import LabRejection
from shared.clinical.clock import NotAfter
from shared.errors import Rejected

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
_ABSOLUTE_PATIENT = re.compile(r"^https?://[^\s]+/Patient/([^/\s]+)(/_history/[^/\s]+)?$")


class Nothing(Rejected):
    """A valid FHIR message that names no patient and holds nothing the rules use."""


class _Context:
    """The Bundle's cross references: fullUrl -> resource, and what lists each Observation."""

    def __init__(self, entries: list[tuple[str | None, Any]]) -> None:
        self.by_url: dict[str, Any] = {}
        for url, r in entries:
            if url:
                self.by_url[url] = r
            if getattr(r, "id", None):
                self.by_url[f"{type(r).__name__}/{r.id}"] = r
        self.parent: dict[int, Any] = {}  # id(Observation) -> DiagnosticReport or panel Observation
        for _, r in entries:
            refs = r.result if isinstance(r, DiagnosticReport) else r.hasMember if isinstance(r, Observation) else None
            for ref in refs or []:
                child = self.resolve(ref.reference)
                if isinstance(child, Observation):
                    self.parent.setdefault(id(child), r)

    def resolve(self, reference: str | None) -> Any:
        """A Bundle entry by fullUrl (urn:uuid:..., absolute URL) or by Type/id (a relative or absolute URL)."""
        if not reference:
            return None
        if reference in self.by_url:
            return self.by_url[reference]
        tail = "/".join(reference.split("/_history/")[0].rstrip("/").split("/")[-2:])
        return self.by_url.get(tail)


def _patient_id(reference: str | None, ctx: _Context) -> str | None:
    """The pseudonymous patient ID a subject reference names, or None when it names no patient."""
    if not reference:
        return None
    target = ctx.resolve(reference)
    if isinstance(target, Patient):
        if not target.id:
            raise Rejected("the Patient this message refers to has no id (a pseudonymous patient ID)")
        return str(target.id)
    pid: str | None = None
    if reference.startswith("Patient/"):
        pid = reference.removeprefix("Patient/").split("/_history/")[0]
    elif m := _ABSOLUTE_PATIENT.match(reference):
        pid = m.group(1)
    elif reference.startswith("urn:"):
        raise Rejected("subject: a urn reference must resolve to a Patient inside the Bundle")
    else:
        raise Rejected("subject must reference a Patient (Patient/<id>, an absolute Patient URL or a Bundle entry)")
    if not PATIENT_ID.match(pid):
        raise Rejected("subject: not a pseudonymous patient ID")
    return pid


def _subject(obs: Observation | DiagnosticReport, ctx: _Context, depth: int = 0) -> str | None:
    ref = obs.subject.reference if obs.subject else None
    if ref:
        return _patient_id(ref, ctx)
    parent = ctx.parent.get(id(obs))
    return _subject(parent, ctx, depth + 1) if parent is not None and depth < 5 else None


_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


def partial_start(value: str) -> date | None:
    """The first day of a FHIR date of year ("1962") or month ("1962-04") precision; None if it is neither."""
    m = _PARTIAL.fullmatch(value)
    if m is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2) or 1), 1)
    except ValueError:
        return None


_LEAP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}):60(?:\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _leap_second(value: str) -> datetime | None:
    """A FHIR dateTime or instant at second 60 (a leap second, valid FHIR; the model leaves it a string): the last
    instant of that minute (review of issue 24: it was refused as "only a year or a month")."""
    m = _LEAP.fullmatch(value)
    if m is None:
        return None
    try:
        return datetime.fromisoformat(f"{m.group(1)}:59.999999{m.group(2).replace('Z', '+00:00')}")
    except ValueError:
        return None


def _when(value: object, tz: ZoneInfo, what: str) -> tuple[datetime, TimePrecision]:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise Rejected(f"{what} has no time zone")
        return value, "time"
    if isinstance(value, date):
        return day_start(value, tz), "date"
    if isinstance(value, str) and (leap := _leap_second(value)) is not None:
        return leap, "time"
    if isinstance(value, str):
        raise Rejected(f"{what} is only a year or a month ({value}); a collection date is never guessed")
    raise Rejected(f"{what} missing")


def _effective(r: Any) -> object:
    if r is None:
        return None
    period = getattr(r, "effectivePeriod", None)
    return getattr(r, "effectiveDateTime", None) or getattr(r, "effectiveInstant", None) or (period and period.start)


def _collected(obs: Observation, ctx: _Context, parent: Any) -> object:
    """Observation effective time, else its Specimen's (or the report's) collection time, else the report's."""
    direct = _effective(obs)
    if direct is not None:
        return direct
    for holder in (obs, parent):
        spec_refs = getattr(holder, "specimen", None)
        refs = spec_refs if isinstance(spec_refs, list) else [spec_refs] if spec_refs else []
        for ref in refs:
            spec = ctx.resolve(ref.reference)
            if isinstance(spec, Specimen) and spec.collection is not None:
                c = spec.collection
                found = c.collectedDateTime or (c.collectedPeriod and c.collectedPeriod.start)
                if found is not None:
                    return found
    grand = ctx.parent.get(id(parent)) if parent is not None else None
    return _effective(parent) or _effective(grand)


def _observation(
    obs: Observation, analytes: AnalyteMap, guard: NotAfter, tz: ZoneInfo, ctx: _Context, out: Ingested
) -> None:
    label = f"Observation/{obs.id or '?'}"
    status = FHIR_STATUS.get(str(obs.status))
    if status is None:
        if obs.status in ("registered", "preliminary", "unknown"):
            out.ignored.append(f"{label}: status {obs.status} is not a released result")
        else:
            out.rejections.append(f"{label}: invalid Observation.status")
        return
    # (suffix, code, quantity, dataAbsentReason)
    parts: list[tuple[str, Any, Any, Any]] = [("", obs.code, obs.valueQuantity, obs.dataAbsentReason)]
    parts += [(f"#{i}", c.code, c.valueQuantity, c.dataAbsentReason) for i, c in enumerate(obs.component or [])]
    for suffix, code, quantity, absent in parts:
        codings = [c for c in ((code.coding if code else None) or []) if c.system and c.code]
        mapped = next(
            (c for c in codings if analytes.lookup(Coding(system=str(c.system), code=str(c.code))) is not None),
            None,
        )
        if mapped is None:
            if suffix == "" and obs.hasMember and quantity is None:
                out.ignored.append(f"{label}: panel (its members are read)")
            elif suffix == "" and obs.component and quantity is None:
                pass  # a grouping of components: the components are read
            else:
                for c in codings[:1]:
                    note_unmapped(Coding(system=str(c.system), code=str(c.code)[:64], display=_d(c)), out, label)
                if not codings:
                    out.ignored.append(f"{label}{suffix}: no code")
            continue
        _result(obs, suffix, mapped, quantity, status, analytes, guard, tz, ctx, out, _absent(absent, quantity))


def _absent(reason: Any, quantity: Any) -> str | None:
    """The dataAbsentReason of a part without a value ("unknown" when it names no code)."""
    if reason is None or (quantity is not None and quantity.value is not None):
        return None
    code = next((str(c.code) for c in reason.coding or [] if c.code), None)
    return (code or (str(reason.text) if reason.text else "unknown"))[:64]


def _d(c: Any) -> str | None:
    return str(c.display)[:256] if c.display else None


def _result(
    obs: Observation,
    suffix: str,
    coding: Any,
    q: Any,
    status: ResultStatus,
    analytes: AnalyteMap,
    guard: NotAfter,
    tz: ZoneInfo,
    ctx: _Context,
    out: Ingested,
    absent: str | None = None,
) -> None:
    label = f"Observation/{obs.id or '?'}{suffix}"
    if not obs.id:
        out.rejections.append("Observation without id: a later amendment could not be matched")
        return
    try:
        parent = ctx.parent.get(id(obs))
        if _subject(obs, ctx) != out.patient_id:
            raise Rejected("no subject, or another patient's")
        when, precision = _when(_collected(obs, ctx, parent), tz, "collection time")
        check_time(guard, when, "collection time")
        report = parent if isinstance(parent, DiagnosticReport) else ctx.parent.get(id(parent)) if parent else None
        # the version's time: the newer of `issued` and meta.lastUpdated (review of issue 24: a laboratory that keeps
        # `issued` at the first release made every amendment "not newer", so ignored; LAB-CORRECTION)
        times = [_when(t, tz, "issued")[0] for t in (obs.issued, obs.meta.lastUpdated if obs.meta else None) if t]
        if not times and isinstance(report, DiagnosticReport) and report.issued:
            times = [_when(report.issued, tz, "issued")[0]]
        recorded_at = max(times) if times else guard.received_at
        check_time(guard, recorded_at, "issued time")
        if status != "entered-in-error" and (q is None or q.value is None) and absent is None:
            raise Rejected("no numeric valueQuantity")
        unit = None if q is None else (q.code or q.unit)
        comparator: Comparator | None = None
        if q is not None and q.comparator:
            comparator = q.comparator
        version = (obs.meta.versionId if obs.meta else None) or f"{status}@{recorded_at.isoformat()}"
        result = LabResult(
            event_id=derived_id("fhir", out.patient_id, obs.id, version, suffix),
            patient_id=out.patient_id,
            occurred_at=when,
            recorded_at=recorded_at,
            source="fhir-r4",
            result_id=f"fhir:{obs.id}{suffix}",
            code=Coding(system=str(coding.system), code=str(coding.code), display=_d(coding)),
            value=None if status == "entered-in-error" or q is None or q.value is None else float(q.value),
            unit=unit,
            # no value in force: carried as a withdrawal of any earlier version, never as a value (issue 24)
            status="entered-in-error" if absent is not None else status,
            comparator=comparator,
            occurred_at_precision=precision,
        )
        checked = check_units(result, analytes)
    except (Rejected, LabRejection) as exc:
        out.rejections.append(f"{label}: {exc}")
        return
    except ValidationError as exc:
        out.rejections.append(f"{label}: {reason(exc)}")
        return
    if checked is not None:
        if absent is not None:
            checked.absent = absent
        out.labs.append(checked)


def _patient(pat: Patient, guard: NotAfter, out: Ingested) -> None:
    updated: Any = pat.meta.lastUpdated if pat.meta and pat.meta.lastUpdated else guard.received_at
    updated = _leap_second(updated) or updated if isinstance(updated, str) else updated  # review of issue 24
    birth: date | None = pat.birthDate if isinstance(pat.birthDate, date) else None
    try:
        check_time(guard, updated, "Patient.meta.lastUpdated")
        if isinstance(pat.birthDate, str):  # a year or a month (FHIR date precision): the age is not known exactly
            check_time(guard, partial_start(pat.birthDate), "Patient.birthDate")
            out.ignored.append(f"Patient.birthDate {pat.birthDate[:7]}: not a full date, so no age is derived from it")
        else:
            check_time(guard, birth, "Patient.birthDate")
    except Rejected as exc:
        out.rejections.append(f"Patient: {exc}")
        return
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
            birth_date=birth,
            sex=FHIR_SEX.get(str(pat.gender)) if pat.gender else None,
        )
    )


def _parse(doc: dict[str, Any]) -> tuple[list[tuple[str | None, Any]], str | None]:
    kind = doc.get("resourceType")
    if kind == "Bundle":
        bundle = Bundle.model_validate(doc)
        entries = [(e.fullUrl, e.resource) for e in (bundle.entry or []) if e.resource is not None]
        return entries, f"fhir:Bundle/{bundle.id}" if bundle.id else None
    if not isinstance(kind, str) or not kind.isalpha():
        raise Rejected("not a FHIR resource: resourceType missing")
    try:
        model = get_fhir_model_class(kind)
    except (KeyError, ValueError) as exc:
        raise Rejected(f"unknown FHIR resourceType {kind!r}") from exc
    return [(None, model.model_validate(doc))], None


def from_fhir(raw: bytes, analytes: AnalyteMap, guard: NotAfter, tz: ZoneInfo | None = None) -> Ingested:
    """Any valid FHIR R4 resource or Bundle about one patient. Raises `Rejected` when it cannot be read,
    `Nothing` when it is valid but names no patient (and so holds nothing usable)."""
    tz = tz or ZoneInfo("Europe/Paris")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Rejected(f"FHIR message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(f"not JSON: {type(exc).__name__}") from exc
    if not isinstance(doc, dict):
        raise Rejected("FHIR payload must be a JSON object")
    kind = doc.get("resourceType")
    try:
        entries, key = _parse(doc)
    except ValidationError as exc:
        raise Rejected(f"invalid FHIR {kind}: {reason(exc)}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # fhir.resources on odd structures
        raise Rejected(f"invalid FHIR {kind}: {type(exc).__name__}") from exc
    ctx = _Context(entries)
    resources = [r for _, r in entries]
    patients = {str(r.id) for r in resources if isinstance(r, Patient) and r.id}
    for r in resources:
        if isinstance(r, Observation | DiagnosticReport) and r.subject and r.subject.reference:
            pid = _patient_id(r.subject.reference, ctx)
            if pid is not None:
                patients.add(pid)
    if len(patients) > 1:
        raise Rejected("a FHIR message must concern exactly one patient")
    if not patients:
        raise Nothing(f"nothing used: no patient in this {kind} ({len(resources)} resource(s))")
    (patient_id,) = patients
    if not PATIENT_ID.match(patient_id):
        raise Rejected("Patient.id: not a pseudonymous patient ID")
    # the content, not the Bundle id alone: a reused id with other content is another delivery
    out = Ingested(key=f"{key or 'fhir'}:sha256:{hashlib.sha256(raw).hexdigest()}", patient_id=patient_id)
    # the results counted after parsing (review of issue 25: "Observ\u0061tion" escaped the count over the bytes)
    out.results = max(1, sum(1 for r in resources if isinstance(r, Observation)))
    for r in resources:
        if isinstance(r, Observation):
            _observation(r, analytes, guard, tz, ctx, out)
        elif isinstance(r, Patient):
            _patient(r, guard, out)
        elif not isinstance(r, DiagnosticReport | Specimen):
            out.ignored.append(f"{type(r).__name__}: not used")
    return out


_QR = re.compile(rb"QuestionnaireResponse")


def resource_type(raw: bytes) -> str | None:
    """Issue 23: "QuestionnaireResponse" when the payload is one (a clinician's entry: forms/response.py, role
    clinician-entry), else None (the results path above). Parsed only when the name appears in the bytes."""
    if _QR.search(raw) is None:
        return None
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return None
    kind = doc.get("resourceType") if isinstance(doc, dict) else None
    return kind if kind == "QuestionnaireResponse" else None
