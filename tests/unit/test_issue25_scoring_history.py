"""Issue 25: a realistic, deterministic history of one patient's scoring inputs (the generator), and the bound it
gives the scoring aggregate: under 64 KB of JSON after 5 years of follow-up, and a per-event cost that does not grow
with the length of the history.

`history(seed, years)` is a pure function of its arguments: labs every 1 to 4 weeks (corrected calcium, with a crisis
episode re-measured daily about one year in four, values without albumin, censored values, re-derivations and
withdrawals), imaging every 2 to 4 months of a few lesions that grow in number (CT, MRI, bone scan, PET; fractures,
cord compressions, new foci, resolutions), monthly assessments, lines of systemic treatment, radiotherapy for pain,
surgery, monthly denosumab, dental care, corrections (amended, entered in error) of each kind of record, duplicates,
and deliveries out of order by up to `late_days`.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.clinical import NormalisedLab, SourceRef
from contracts.hospital import ClinicalAssessment, ImagingFinding, TreatmentEvent
from services.scoring import retention
from services.scoring.domain import ScoringState, apply_event

START = datetime(2021, 1, 4, 8, 0, tzinfo=UTC)
PATIENT = "p-issue25"

LONG_BONES = ("femur_trochanteric", "femur_shaft", "femur_neck", "humerus", "tibia_fibula")
SPINE_LEVELS = ("C5", "T4", "T8", "T11", "L1", "L3", "L5")
DRUGS = ("osimertinib", "carboplatin", "pembrolizumab", "letrozole", "drug-x-unlisted")


@dataclass
class _Gen:
    rng: random.Random
    late_days: float
    out: list[tuple[datetime, int, Message]] = field(default_factory=list)  # (delivered at, tie-break, event)
    n: int = 0

    def uid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def env(self, at: datetime, delay: timedelta | None = None) -> dict[str, Any]:
        recorded = at + (delay if delay is not None else timedelta(minutes=self.rng.randint(5, 24 * 60)))
        return {
            "event_id": self.uid(),
            "patient_id": PATIENT,
            "occurred_at": at,
            "recorded_at": recorded,
            "source": "h",
        }

    def emit(self, event: Message) -> None:
        delivered = event.recorded_at + timedelta(seconds=self.rng.randint(0, 3600))
        if self.rng.random() < 0.05:  # delivered late, out of order
            delivered += timedelta(days=self.rng.uniform(0, self.late_days))
        self.n += 1
        self.out.append((delivered, self.n, event))
        if self.rng.random() < 0.02:  # delivered again (at least once delivery)
            self.n += 1
            self.out.append((delivered + timedelta(hours=self.rng.uniform(0, 48)), self.n, event))


def _lab(g: _Gen, at: datetime, value: float | None, *, rid: str | None = None, **extra: Any) -> NormalisedLab:
    total = None
    if g.rng.random() < 0.5:
        total = SourceRef(
            event_id=g.uid(),
            analyte="total_calcium",
            value=round((value or 2.4) - 0.1, 2),
            unit="mmol/L",
            occurred_at=at,
            comparator=extra.pop("total_comparator", None),
        )
    fields: dict[str, Any] = {
        **g.env(at),
        "source": "lab-normalisation",
        "analyte": "corrected_calcium",
        "result_id": rid or f"cc-{g.uid()}",
        "value": value,
        "unit": "mmol/L",
        "derived_from": [] if total is None else [total],
        "missing": [] if value is not None else ["albumin drawn within 48 h of the calcium"],
        **extra,
    }
    return NormalisedLab.model_validate(fields)


def _labs(g: _Gen, end: datetime, mean_days: float, crises_per_year: float) -> None:
    at = START + timedelta(hours=g.rng.randint(1, 200))
    recent: list[NormalisedLab] = []
    while at < end:
        r = g.rng.random()
        if r < crises_per_year * 1.25 * mean_days / 365:  # a crisis episode, re-measured daily
            for _ in range(g.rng.randint(1, 4)):
                recent.append(_lab(g, at, round(g.rng.uniform(3.51, 3.95), 2)))
                g.emit(recent[-1])
                at += timedelta(hours=g.rng.randint(20, 30))
            recent.append(_lab(g, at, round(g.rng.uniform(2.3, 2.6), 2)))
        elif r < 0.05:
            recent.append(_lab(g, at, None))  # no albumin
        elif r < 0.07:
            recent.append(_lab(g, at, 2.5, comparator=">"))  # censored, undecided
        else:
            recent.append(_lab(g, at, round(g.rng.gauss(2.4, 0.15), 2)))
        g.emit(recent[-1])
        if recent and g.rng.random() < 0.04:  # a re-derivation or a withdrawal of a recent result
            old = g.rng.choice(recent[-5:])
            later = timedelta(days=g.rng.uniform(0.1, 10))
            status = "withdrawn" if g.rng.random() < 0.5 else "final"
            g.emit(
                old.model_copy(
                    update={
                        "event_id": g.uid(),
                        "recorded_at": old.recorded_at + later,
                        "status": status,
                        "value": old.value if status == "withdrawn" or old.value is None else old.value + 0.05,
                    }
                )
            )
        at += timedelta(days=g.rng.uniform(0.5, 2) * mean_days)


def _lesion(g: _Gen, n: int) -> dict[str, Any]:
    if g.rng.random() < 0.5:
        return {"lesion_id": f"les-{n}", "skeletal_site": g.rng.choice(LONG_BONES)}
    return {"lesion_id": f"les-{n}", "skeletal_site": "spine", "vertebral_level": g.rng.choice(SPINE_LEVELS)}


def _finding(g: _Gen, at: datetime, lesion: dict[str, Any], modality: str) -> ImagingFinding:
    spine = lesion["skeletal_site"] == "spine"
    fields: dict[str, Any] = {
        **g.env(at),
        **lesion,
        "modality": modality,
        "lesion_type": g.rng.choice(("lytic", "mixed", "blastic", None)),
        "size_cm": round(g.rng.uniform(0.5, 6), 1),
        "new_focus": modality in ("bone_scan", "fdg_pet") and g.rng.random() < 0.3,
        "status": g.rng.choice((None, None, "confirmed", "suspected", "resolved")) if g.rng.random() < 0.3 else None,
        "pathological_fracture": g.rng.random() < 0.05 or None,
    }
    if spine:
        fields |= {
            "alignment": g.rng.choice(("normal", "de_novo_deformity", None)),
            "vertebral_collapse": g.rng.choice(("none", "lt_50", "gt_50", None)),
            "posterolateral_involvement": g.rng.choice(("none", "unilateral", "bilateral", None)),
            "epidural_extension": g.rng.random() < 0.2,
            "cord_compression": g.rng.random() < 0.05,
        }
    else:
        fields["cortical_involvement_fraction"] = round(g.rng.uniform(0, 1), 2)
    return ImagingFinding.model_validate(fields)


def _imaging(g: _Gen, end: datetime, mean_days: float) -> list[str]:
    lesions = [_lesion(g, i) for i in range(g.rng.randint(1, 3))]
    at = START + timedelta(days=g.rng.uniform(0, 10))
    while at < end:
        if g.rng.random() < 0.25 and len(lesions) < 8:
            lesions.append(_lesion(g, len(lesions)))
        modality = g.rng.choice(("ct", "ct", "mri", "bone_scan", "fdg_pet"))
        for lesion in lesions:
            f = _finding(g, at, lesion, modality)
            g.emit(f)
            r = g.rng.random()
            if r < 0.05:  # amended days later, naming it (or not: the lesion's latest)
                amended = _finding(g, at, lesion, modality).model_copy(
                    update={
                        "record_status": "amended",
                        "corrects": f.event_id if g.rng.random() < 0.7 else None,
                        "recorded_at": f.recorded_at + timedelta(days=g.rng.uniform(0.5, 5)),
                    }
                )
                g.emit(amended)
            elif r < 0.08:
                g.emit(
                    f.model_copy(
                        update={
                            "event_id": g.uid(),
                            "record_status": "entered-in-error",
                            "corrects": f.event_id,
                            "recorded_at": f.recorded_at + timedelta(days=g.rng.uniform(0.5, 5)),
                        }
                    )
                )
        at += timedelta(days=g.rng.uniform(0.66, 1.33) * mean_days)
    return [x["lesion_id"] for x in lesions]


def _assessments(g: _Gen, end: datetime, lesions: list[str], mean_days: float) -> None:
    at = START + timedelta(days=g.rng.uniform(0, 5))
    while at < end:
        fields: dict[str, Any] = {**g.env(at), "ecog": g.rng.randint(0, 3)}
        if g.rng.random() < 0.7:
            fields["pain"] = {"intensity": g.rng.choice(("mild", "moderate", "functional"))}
        if g.rng.random() < 0.6:
            fields["lesion_pain"] = [
                {
                    "lesion_id": g.rng.choice(lesions),
                    "intensity": g.rng.choice(("none", "mild", "moderate", "functional")),
                    "character": g.rng.choice(("mechanical", "non_mechanical", "none")),
                }
            ]
        if g.rng.random() < 0.4:
            fields["life_expectancy_months"] = g.rng.choice((2, 3.5, 6, 12, 24))
        if g.rng.random() < 0.3:
            fields["primary_controlled"] = g.rng.random() < 0.6
        if g.rng.random() < 0.3:
            count = g.rng.randint(0, 3)
            fields["extra_osseous_metastases"] = {"count": count, "sites": ["lung"] if count else [], "stable": True}
        if g.rng.random() < 0.05:
            fields["neurological_deficit"] = True
        a = ClinicalAssessment.model_validate(fields)
        g.emit(a)
        if g.rng.random() < 0.06:
            status = g.rng.choice(("amended", "entered-in-error"))
            g.emit(
                a.model_copy(
                    update={
                        "event_id": g.uid(),
                        "record_status": status,
                        "corrects": a.event_id,
                        "ecog": g.rng.randint(0, 3),
                        "recorded_at": a.recorded_at + timedelta(days=g.rng.uniform(0.5, 7)),
                    }
                )
            )
        at += timedelta(days=g.rng.uniform(0.5, 1.5) * mean_days)


def _treatment(g: _Gen, at: datetime, **t: Any) -> TreatmentEvent:
    return TreatmentEvent.model_validate({**g.env(at), "treatment": {"on": at.date(), **t}})


def _treatments(g: _Gen, end: datetime, lesions: list[str]) -> None:
    at, drug = START + timedelta(days=20), None
    while at < end:  # lines of systemic treatment, with pauses
        if drug is not None:
            g.emit(_treatment(g, at, kind="systemic_drug", drug=drug, action="stopped"))
            if g.rng.random() < 0.3:  # a pause, then the same drug again
                at += timedelta(days=g.rng.uniform(14, 120))
                g.emit(_treatment(g, at, kind="systemic_drug", drug=drug, action="started"))
                at += timedelta(days=g.rng.uniform(60, 300))
                g.emit(_treatment(g, at, kind="systemic_drug", drug=drug, action="stopped"))
        drug = g.rng.choice(DRUGS)
        start = _treatment(g, at, kind="systemic_drug", drug=drug, action="started")
        g.emit(start)
        if g.rng.random() < 0.1:
            g.emit(
                start.model_copy(
                    update={
                        "event_id": g.uid(),
                        "record_status": "entered-in-error",
                        "corrects": start.event_id,
                        "recorded_at": start.recorded_at + timedelta(days=2),
                    }
                )
            )
        at += timedelta(days=g.rng.uniform(90, 540))
    at = START + timedelta(days=30)
    while at < end:  # monthly denosumab, yearly dental care, radiotherapy and surgery now and then
        g.emit(_treatment(g, at, kind="drug_administration", drug="denosumab"))
        if g.rng.random() < 0.08:
            g.emit(_treatment(g, at, kind="dental", action="assessment", orthopantomogram=True))
        if g.rng.random() < 0.06:
            g.emit(
                _treatment(
                    g,
                    at,
                    kind="radiotherapy",
                    site=g.rng.choice(lesions),
                    lesion_id=g.rng.choice(lesions),
                    total_dose_gy=8,
                    fractions=1,
                    intent=g.rng.choice(("pain", "pain", "cord_compression", "preventive")),
                )
            )
        if g.rng.random() < 0.02:
            g.emit(
                _treatment(
                    g,
                    at,
                    kind="surgery",
                    site=g.rng.choice(lesions),
                    lesion_id=g.rng.choice(lesions),
                    procedure=g.rng.choice(("fracture_fixation", "prophylactic_fixation", "decompression")),
                )
            )
        at += timedelta(days=g.rng.uniform(26, 30))


def history(
    seed: int,
    years: float = 5,
    *,
    lab_days: float = 14,
    imaging_days: float = 90,
    assessment_days: float = 30,
    late_days: float = 20,
    crises_per_year: float = 0.25,
) -> list[Message]:
    """One patient's scoring inputs over `years`, in delivery order (see the module's docstring)."""
    g = _Gen(random.Random(seed), late_days)
    end = START + timedelta(days=365.25 * years)
    _labs(g, end, lab_days, crises_per_year)
    lesions = _imaging(g, end, imaging_days)
    _assessments(g, end, lesions, assessment_days)
    _treatments(g, end, lesions)
    return [e for _, _, e in sorted(g.out, key=lambda x: (x[0], x[1]))]


def shifted(events: list[Message], by: timedelta) -> list[Message]:
    """The same events moved `by` in time (every time and date they carry), with new IDs (corrections follow)."""
    ids: dict[uuid.UUID, uuid.UUID] = {}

    def new_id(old: uuid.UUID) -> uuid.UUID:
        return ids.setdefault(old, uuid.uuid5(old, str(by)))

    out: list[Message] = []
    for e in events:
        update: dict[str, Any] = {
            "event_id": new_id(e.event_id),
            "occurred_at": e.occurred_at + by,
            "recorded_at": e.recorded_at + by,
        }
        if getattr(e, "corrects", None) is not None:
            update["corrects"] = new_id(e.corrects)  # type: ignore[attr-defined]
        if isinstance(e, TreatmentEvent):
            update["treatment"] = e.treatment.model_copy(update={"on": e.treatment.on + by})
        if isinstance(e, NormalisedLab):
            update["derived_from"] = [x.model_copy(update={"occurred_at": x.occurred_at + by}) for x in e.derived_from]
        out.append(e.model_copy(update=update))
    return out


def probe_after(state: ScoringState, n: int = 60, seed: int = 7) -> list[Message]:
    """`n` events of a fresh history (the same ones whatever `state`), moved to begin a day after the state's newest
    recorded time: what the patient's next events look like, to time a state with."""
    events = history(seed, 1.5)[:n]
    newest = state.newest_recorded or START
    return shifted(events, newest - min(e.occurred_at for e in events) + timedelta(days=1))


def per_event_seconds(state: ScoringState, events: list[Message], rounds: int = 3) -> float:
    """What the runtime does per event of a patient with `state`: decode the event, apply it, encode the state (the
    best of `rounds` passes over `events`, each from `state`)."""
    raw = [(type(e), e.model_dump_json()) for e in events]
    best = float("inf")
    for _ in range(rounds):
        s = state
        t0 = time.perf_counter()
        for kind, text in raw:
            s, _ = apply_event(s, kind.model_validate_json(text))
            s.model_dump_json()
        best = min(best, (time.perf_counter() - t0) / len(raw))
    return best


def run(events: list[Message], state: ScoringState | None = None) -> ScoringState:
    s = state or ScoringState()
    for e in events:
        s, _ = apply_event(s, e)
    return s


# ---- the bound -------------------------------------------------------------------------------------------------------
def _sizes(events: list[Message]) -> tuple[list[int], ScoringState]:
    s, sizes = ScoringState(), []
    for e in events:
        s, _ = apply_event(s, e)
        sizes.append(len(s.model_dump_json()))
    return sizes, s


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_five_years_of_follow_up_stay_under_64_KB(seed: int) -> None:
    """Issue 25: after 5 years (labs every 1-4 weeks, imaging every 2-4 months of up to 8 lesions each reported on
    every study, monthly assessments, treatment lines, corrections), the state is under 64 KB of JSON, and it never
    went far past it (the peak follows a study: its findings kept one by one beside the lesions' folds)."""
    events = history(seed, 5)
    sizes, _ = _sizes(events)
    unbounded = ScoringState()
    for e in events:
        unbounded, _ = apply_event(unbounded, e, retained=False)
    assert sizes[-1] < 64 * 1024 and max(sizes) < 72 * 1024, (sizes[-1], max(sizes))
    assert len(unbounded.model_dump_json()) > 3 * sizes[-1]


def test_the_state_does_not_grow_with_the_history() -> None:
    """Ten years of a densely followed patient (labs every 1-4 days, imaging every 1-2 months: ~3 500 events), all
    applied: the state of the last five years is no bigger than that of years 2 to 5 (what is kept depends on the
    horizon and the patient's lesions, not on the history's length), and each kind of record stays within its
    bound."""
    events = history(8, 10, lab_days=1.2, imaging_days=45)
    sizes, s = _sizes(events)
    assert len(events) > 3000
    n = len(events)
    assert max(sizes[n // 2 :]) <= 1.1 * max(sizes[n // 5 : n // 2]), (
        max(sizes[n // 2 :]),
        max(sizes[n // 5 : n // 2]),
    )
    assert len(s.labs) <= retention.LABS_KEPT + 4
    assert len(s.findings) <= retention.FINDINGS_KEPT + 8
    assert len(s.assessments) <= retention.ASSESSMENTS_KEPT + 2
