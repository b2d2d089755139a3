"""The per-patient lab aggregate and its pure transitions (LAB-CORRECTION, LAB-CA-CORR pairing)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from contracts.base import derived_id
from contracts.clinical import Analyte, NormalisedLab, SourceRef
from contracts.hospital import LabResult
from services.lab_normalisation.rules import closest_within, corrected_calcium

SERVICE = "lab-normalisation"


class StoredResult(BaseModel):
    result_id: str
    event_id: uuid.UUID
    analyte: Analyte
    value: float | None
    unit: str
    occurred_at: datetime
    recorded_at: datetime
    status: Literal["final", "amended", "withdrawn"]

    def ref(self) -> SourceRef:
        assert self.value is not None
        return SourceRef(
            event_id=self.event_id, analyte=self.analyte, value=self.value, unit=self.unit, occurred_at=self.occurred_at
        )


class LabState(BaseModel):
    results: dict[str, StoredResult] = Field(default_factory=dict)  # by the lab's result_id
    #: corrected-calcium result_id -> event_id last published for it (to publish only changes)
    published_derived: dict[str, uuid.UUID] = Field(default_factory=dict)


def _status(event: LabResult) -> Literal["final", "amended", "withdrawn"]:
    if event.status == "entered-in-error":
        return "withdrawn"
    return "final" if event.status == "final" else "amended"


def apply_result(
    state: LabState,
    event: LabResult,
    analyte: Analyte,
    value: float | None,
    unit: str,
    original_unit: str | None,
    loinc: str | None,
    window: timedelta,
) -> tuple[LabState, list[NormalisedLab]]:
    """Record one (already unit-checked) result and return what must be published.

    LAB-CORRECTION: a newer version of the same result_id replaces the older one (by recorded_at);
    an older version arriving late changes nothing; entered-in-error withdraws it and everything
    derived from it."""
    previous = state.results.get(event.result_id)
    if previous is not None and previous.recorded_at >= event.recorded_at:
        return state, []  # late or repeated version: never overwrite newer
    status = _status(event)
    stored = StoredResult(
        result_id=event.result_id,
        event_id=event.event_id,
        analyte=analyte,
        value=None if status == "withdrawn" else value,
        unit=unit,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        status=status,
    )
    results = {**state.results, event.result_id: stored}
    out = [
        NormalisedLab(
            event_id=derived_id("normalised", event.event_id),
            patient_id=event.patient_id,
            occurred_at=event.occurred_at,
            recorded_at=event.recorded_at,
            source=SERVICE,
            analyte=analyte,
            result_id=event.result_id,
            value=stored.value,
            unit=unit,
            status=status,
            original_value=event.value,
            original_unit=original_unit,
            loinc=loinc,
            rule_ids=["LAB-UNITS"] + (["LAB-CORRECTION"] if status != "final" else []),
            fasting=event.fasting,
        )
    ]
    new_state = LabState(results=results, published_derived=dict(state.published_derived))
    if analyte in ("total_calcium", "albumin", "ionised_calcium"):
        out += _recompute_corrected_calcium(new_state, event.patient_id, event.occurred_at, window)
    return new_state, out


def _active(state: LabState, analyte: Analyte) -> list[tuple[datetime, StoredResult]]:
    return [(r.occurred_at, r) for r in state.results.values() if r.analyte == analyte and r.value is not None]


def _recompute_corrected_calcium(
    state: LabState, patient_id: str, around: datetime, window: timedelta
) -> list[NormalisedLab]:
    """LAB-CA-CORR for every calcium draw the change can affect; publish only what changed."""
    albumins = _active(state, "albumin")
    ionised = _active(state, "ionised_calcium")
    out: list[NormalisedLab] = []
    for ca in sorted(state.results.values(), key=lambda r: r.occurred_at):
        if ca.analyte != "total_calcium" or abs(ca.occurred_at - around) > window:
            continue
        derived_result_id = f"corrected:{ca.result_id}"
        alb = closest_within(ca.occurred_at, albumins, window)
        ion = closest_within(ca.occurred_at, ionised, window)
        eid = derived_id("corrected_calcium", ca.event_id, ca.status, alb and alb.event_id, ion and ion.event_id)
        if state.published_derived.get(derived_result_id) == eid:
            continue
        if ca.status == "withdrawn" and derived_result_id not in state.published_derived:
            continue  # nothing was derived from it
        state.published_derived[derived_result_id] = eid
        sources = [s for s in (ca, alb, ion) if s is not None and s.value is not None]
        value = None
        missing: list[str] = []
        if ca.value is not None and alb is not None and alb.value is not None:
            value = round(corrected_calcium(ca.value, alb.value), 2)
        elif ca.value is not None:
            hours = int(window.total_seconds() // 3600)
            missing.append(f"albumin drawn within {hours} h of the calcium")
        status: Literal["final", "amended", "withdrawn"] = (
            "withdrawn"
            if ca.status == "withdrawn"
            else "amended"
            if any(s.status == "amended" for s in sources)
            else "final"
        )
        out.append(
            NormalisedLab(
                event_id=eid,
                patient_id=patient_id,
                occurred_at=ca.occurred_at,
                recorded_at=max(s.recorded_at for s in [ca, *sources]),
                source=SERVICE,
                analyte="corrected_calcium",
                result_id=derived_result_id,
                value=value,
                unit="mmol/L",
                status=status,
                rule_ids=["LAB-CA-CORR"],
                derived_from=[s.ref() for s in sources],
                missing=missing,
            )
        )
    return out
