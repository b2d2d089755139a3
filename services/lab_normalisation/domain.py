"""The per-patient lab aggregate and its pure transitions: LAB-CORRECTION, LAB-CA-CORR, LAB-CRCL,
LAB-VITD, LAB-CTX. No I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from contracts.base import derived_id
from contracts.clinical import Analyte, NormalisedLab, SourceRef
from contracts.hospital import PatientRecord
from services.lab_normalisation.ingest import Ingested, LabInput
from services.lab_normalisation.rules import (
    age_in_years,
    closest_within,
    cockcroft_gault,
    corrected_calcium,
    ctx_interpretability,
    vitamin_d_class,
)

SERVICE = "lab-normalisation"
T = TypeVar("T", date, str, float)
Status = Literal["final", "amended", "withdrawn"]


@dataclass(frozen=True)
class LabConfig:
    ca_albumin_window: timedelta
    hospital_tz: ZoneInfo
    #: results older than this (before the patient's newest) are dropped, except each analyte's newest
    retention: timedelta = timedelta(days=90)


class StoredResult(BaseModel):
    result_id: str
    event_id: uuid.UUID
    analyte: Analyte
    value: float | None
    unit: str
    occurred_at: datetime
    recorded_at: datetime
    status: Status

    def ref(self) -> SourceRef:
        assert self.value is not None
        return SourceRef(
            event_id=self.event_id, analyte=self.analyte, value=self.value, unit=self.unit, occurred_at=self.occurred_at
        )


class Fact(BaseModel, Generic[T]):
    """A demographic fact with its provenance; a newer clinical time wins."""

    value: T
    occurred_at: datetime
    recorded_at: datetime
    event_id: uuid.UUID

    def newer_than(self, other: Fact[T] | None) -> bool:
        return other is None or (self.occurred_at, self.recorded_at) > (other.occurred_at, other.recorded_at)


class LabState(BaseModel):
    results: dict[str, StoredResult] = Field(default_factory=dict)  # by the lab's result_id
    birth_date: Fact[date] | None = None
    sex: Fact[str] | None = None
    weight_kg: Fact[float] | None = None
    #: derived result_id -> signature of the inputs last published for it (publish only what changed)
    published_derived: dict[str, str] = Field(default_factory=dict)


def _status(status: str) -> Status:
    if status == "entered-in-error":
        return "withdrawn"
    return "final" if status == "final" else "amended"


def apply_ingested(state: LabState, batch: Ingested, cfg: LabConfig) -> tuple[LabState, list[NormalisedLab]]:
    """Apply one delivery: demographics first, then results, then re-derive what they affect."""
    # A shallow copy is enough: stored results and facts are replaced, never changed in place.
    s = state.model_copy(update={"results": dict(state.results), "published_derived": dict(state.published_derived)})
    out: list[NormalisedLab] = []
    for record in batch.patients:
        _apply_patient(s, record)
    calcium_draws: set[str] = set()  # calcium result_ids whose corrected value may have changed
    for lab in batch.labs:
        published = _apply_result(s, lab, cfg)
        if published is None:
            continue
        out.append(published)
        if lab.analyte == "total_calcium":
            calcium_draws.add(lab.result.result_id)
        elif lab.analyte in ("albumin", "ionised_calcium"):  # may re-pair any calcium drawn within the window
            t = lab.result.occurred_at
            calcium_draws |= {
                r.result_id
                for r in s.results.values()
                if r.analyte == "total_calcium" and abs(r.occurred_at - t) <= cfg.ca_albumin_window
            }
    if calcium_draws:
        out += _recompute_corrected_calcium(s, batch.patient_id, calcium_draws, cfg.ca_albumin_window)
    if batch.patients or any(x.analyte in ("creatinine", "body_weight") for x in batch.labs):
        out += _recompute_clearance(s, batch.patient_id)
    _prune(s, cfg.retention)
    return s, out


def _prune(s: LabState, retention: timedelta) -> None:
    """Bound the aggregate: keep results within `retention` of the newest one, and each analyte's newest.
    (An amendment of a dropped result is then handled as a new result.)"""
    if not s.results:
        return
    cutoff = max(r.occurred_at for r in s.results.values()) - retention
    newest: dict[str, StoredResult] = {}
    for r in s.results.values():
        if r.analyte not in newest or r.occurred_at > newest[r.analyte].occurred_at:
            newest[r.analyte] = r
    keep = {rid for rid, r in s.results.items() if r.occurred_at >= cutoff or newest[r.analyte] is r}
    if len(keep) == len(s.results):
        return
    s.results = {rid: r for rid, r in s.results.items() if rid in keep}
    s.published_derived = {k: v for k, v in s.published_derived.items() if k.split(":", 1)[1] in keep}


def _apply_patient(s: LabState, r: PatientRecord) -> None:
    """Absent fields are unknown: they leave what is known unchanged (never defaulted)."""

    prov = {"occurred_at": r.occurred_at, "recorded_at": r.recorded_at, "event_id": r.event_id}
    if r.birth_date is not None and (b := Fact[date](value=r.birth_date, **prov)).newer_than(s.birth_date):
        s.birth_date = b
    if r.sex is not None and (x := Fact[str](value=r.sex, **prov)).newer_than(s.sex):
        s.sex = x
    if r.weight_kg is not None:
        measured = r.occurred_at
        if r.weight_measured_at is not None:
            measured = datetime.combine(r.weight_measured_at, datetime.min.time(), r.occurred_at.tzinfo)
        w = Fact[float](value=r.weight_kg, occurred_at=measured, recorded_at=r.recorded_at, event_id=r.event_id)
        if w.newer_than(s.weight_kg):
            s.weight_kg = w


def _apply_result(s: LabState, lab: LabInput, cfg: LabConfig) -> NormalisedLab | None:
    """LAB-CORRECTION: a newer version of a result_id replaces the older one (by recorded_at); an older
    version arriving late changes nothing; entered-in-error withdraws it."""
    r = lab.result
    previous = s.results.get(r.result_id)
    if previous is not None and previous.recorded_at >= r.recorded_at:
        return None
    status = _status(r.status)
    value = None if status == "withdrawn" else lab.value
    s.results[r.result_id] = StoredResult(
        result_id=r.result_id,
        event_id=r.event_id,
        analyte=lab.analyte,
        value=value,
        unit=lab.unit,
        occurred_at=r.occurred_at,
        recorded_at=r.recorded_at,
        status=status,
    )
    rule_ids = ["LAB-UNITS"] + (["LAB-CORRECTION"] if status != "final" else [])
    interpretation: str | None = None
    notes: list[str] = []
    if value is not None and lab.analyte == "vitamin_d_25oh":
        interpretation = vitamin_d_class(value)
        rule_ids.append("LAB-VITD")
    elif value is not None and lab.analyte == "ctx_serum":
        ok, why = ctx_interpretability(r.occurred_at, r.fasting, cfg.hospital_tz)
        interpretation = "interpretable" if ok else "not_interpretable"
        notes = [] if why is None else [f"CTX non interprétable : {why} (à doser à jeun avant 9 h)."]
        rule_ids.append("LAB-CTX")
    elif value is not None and lab.analyte == "ntx_urine":
        notes = [
            "NTX urinaire : marqueur de résorption le plus étudié ; élevé au diagnostic, il signale un "
            "risque accru d'événement osseux et de décès."
        ]
        rule_ids.append("LAB-CTX")
    return NormalisedLab(
        event_id=derived_id("normalised", r.event_id),
        patient_id=r.patient_id,
        occurred_at=r.occurred_at,
        recorded_at=r.recorded_at,
        source=SERVICE,
        analyte=lab.analyte,
        result_id=r.result_id,
        value=value,
        unit=lab.unit,
        status=status,
        original_value=r.value,
        original_unit=r.unit,
        loinc=lab.loinc,
        rule_ids=rule_ids,
        fasting=r.fasting,
        interpretation=interpretation,
        notes=notes,
    )


def _active(s: LabState, analyte: Analyte) -> list[tuple[datetime, StoredResult]]:
    return [(r.occurred_at, r) for r in s.results.values() if r.analyte == analyte and r.value is not None]


def _derived_status(sources: list[StoredResult]) -> Status:
    if sources[0].status == "withdrawn":
        return "withdrawn"
    return "amended" if any(x.status == "amended" for x in sources) else "final"


def _recompute_corrected_calcium(
    s: LabState, patient_id: str, calcium_draws: set[str], window: timedelta
) -> list[NormalisedLab]:
    """LAB-CA-CORR for the given calcium draws; publish only what changed."""
    albumins, ionised = _active(s, "albumin"), _active(s, "ionised_calcium")
    out: list[NormalisedLab] = []
    for ca in sorted((s.results[r] for r in calcium_draws), key=lambda r: r.occurred_at):
        alb = closest_within(ca.occurred_at, albumins, window)
        ion = closest_within(ca.occurred_at, ionised, window)
        sources = [x for x in (ca, alb, ion) if x is not None and x.value is not None]
        value: float | None = None
        missing: list[str] = []
        if ca.value is not None and alb is not None and alb.value is not None:
            value = round(corrected_calcium(ca.value, alb.value), 2)
        elif ca.value is not None:
            missing.append(f"albumin drawn within {int(window.total_seconds() // 3600)} h of the calcium")
        out += _publish_derived(
            s,
            patient_id,
            "corrected_calcium",
            f"corrected:{ca.result_id}",
            ca,
            sources,
            value,
            "mmol/L",
            "LAB-CA-CORR",
            missing,
            key=(ca.event_id, ca.status, alb and alb.event_id, ion and ion.event_id),
        )
    return out


def _recompute_clearance(s: LabState, patient_id: str) -> list[NormalisedLab]:
    """LAB-CRCL from the latest creatinine; withdraws the clearance of a withdrawn creatinine."""
    out: list[NormalisedLab] = []
    for r in s.results.values():  # clearances derived from a creatinine that is now withdrawn
        if r.analyte == "creatinine" and r.status == "withdrawn":
            out += _publish_derived(
                s,
                patient_id,
                "creatinine_clearance",
                f"crcl:{r.result_id}",
                r,
                [],
                None,
                "mL/min",
                "LAB-CRCL",
                [],
                key=(r.event_id, "withdrawn"),
            )
    creatinines = _active(s, "creatinine")
    if not creatinines:
        return out
    _, creat = max(creatinines, key=lambda tr: (tr[0], tr[1].recorded_at))
    weights = _active(s, "body_weight")
    weight = s.weight_kg
    if weights:
        _, w = max(weights, key=lambda tr: tr[0])
        lab_weight = Fact[float](
            value=w.value or 0.0, occurred_at=w.occurred_at, recorded_at=w.recorded_at, event_id=w.event_id
        )
        weight = lab_weight if lab_weight.newer_than(weight) else weight
    missing = [
        name for name, f in (("weight", weight), ("age (birth date)", s.birth_date), ("sex", s.sex)) if f is None
    ]
    if s.sex is not None and s.sex.value not in ("female", "male"):
        missing.append("sex (female or male, for the Cockcroft-Gault factor)")
    refs = [creat.ref()]
    value: float | None = None
    if not missing:
        assert weight is not None and s.birth_date is not None and s.sex is not None
        age = age_in_years(s.birth_date.value, creat.occurred_at.date())
        assert creat.value is not None
        value = round(cockcroft_gault(age, weight.value, creat.value, s.sex.value == "female"), 1)
        refs += [
            SourceRef(
                event_id=weight.event_id,
                analyte="body_weight",
                value=weight.value,
                unit="kg",
                occurred_at=weight.occurred_at,
            ),
            SourceRef(
                event_id=s.birth_date.event_id,
                analyte="age",
                value=age,
                unit="years",
                occurred_at=s.birth_date.occurred_at,
            ),
            SourceRef(
                event_id=s.sex.event_id, analyte="sex", value=str(s.sex.value), unit=None, occurred_at=s.sex.occurred_at
            ),
        ]
    key = (creat.event_id, creat.status, *(f and f.event_id for f in (weight, s.birth_date, s.sex)))
    out += _publish_derived(
        s,
        patient_id,
        "creatinine_clearance",
        f"crcl:{creat.result_id}",
        creat,
        [creat],
        value,
        "mL/min",
        "LAB-CRCL",
        missing,
        key=key,
        refs=refs,
        also_recorded=[f.recorded_at for f in (weight, s.birth_date, s.sex) if f is not None],
    )
    return out


def _publish_derived(
    s: LabState,
    patient_id: str,
    analyte: Analyte,
    result_id: str,
    anchor: StoredResult,
    sources: list[StoredResult],
    value: float | None,
    unit: str,
    rule_id: str,
    missing: list[str],
    key: tuple[object, ...],
    refs: list[SourceRef] | None = None,
    also_recorded: list[datetime] | None = None,
) -> list[NormalisedLab]:
    """Publish a derived value if its inputs changed. Its recorded_at is the newest of all its inputs', so a
    re-derivation (e.g. when the weight arrives after the creatinine) is never older than what it replaces."""
    signature = "|".join(map(str, key))
    if s.published_derived.get(result_id) == signature:
        return []
    if anchor.status == "withdrawn" and result_id not in s.published_derived:
        return []  # nothing was derived from it
    s.published_derived[result_id] = signature
    eid = derived_id(analyte, *key)
    status = _derived_status([anchor, *sources])
    return [
        NormalisedLab(
            event_id=eid,
            patient_id=patient_id,
            occurred_at=anchor.occurred_at,
            recorded_at=max([x.recorded_at for x in [anchor, *sources]] + (also_recorded or [])),
            source=SERVICE,
            analyte=analyte,
            result_id=result_id,
            value=None if status == "withdrawn" else value,
            unit=unit,
            status=status,
            rule_ids=[rule_id],
            derived_from=refs if refs is not None else [x.ref() for x in sources],
            missing=[] if status == "withdrawn" else missing,
        )
    ]
