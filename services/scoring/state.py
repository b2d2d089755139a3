"""The scoring aggregate's facts per patient, merged commutatively.

Facts merge by clinical time (the newest wins, ties broken by recorded time then event ID), so the same events
give the same state in any order: a late event never hides a newer one, and a rebuild from the Kafka topics
reproduces the state exactly.
"""

from __future__ import annotations

import functools
import uuid
import weakref
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Final

from pydantic import BaseModel, Field

from contracts.base import Message
from contracts.clinical import NormalisedLab, SourceRef
from contracts.hospital import ClinicalAssessment, Comparator, ExtraOsseousMetastases, ImagingFinding, TreatmentEvent
from services.scoring import rules as r
from shared.clinical.corrections import effective, effective_findings, is_correction
from shared.clinical.facts import Fact, earliest, newest
from shared.clinical.treatments import canonical, effective_treatments
from shared.runtime.parts_json import StoredJson


class Lesion(BaseModel):
    latest: ImagingFinding
    first_seen: datetime
    modalities: list[str]
    cord_compression: Fact[str] | None = None  # first finding showing it
    fracture: Fact[str] | None = None  # first finding showing it
    new_foci: list[Fact[str]] = Field(default_factory=list)  # metabolic findings flagged new_focus; value=modality
    #: the newest finding that stated each of these (an absent field states nothing)
    status: Fact[str] | None = None
    compression_stated: Fact[bool] | None = None
    epidural_stated: Fact[bool] | None = None
    fracture_seen_last: Fact[str] | None = None  # the newest finding showing the fracture
    compression_seen_last: Fact[str] | None = None  # the newest finding showing the compression

    def effective_status(self) -> str:
        """The stated status, else suspected when seen only on PET or bone scan (IMG-ISOLATED), else confirmed."""
        if self.status is not None:
            return self.status.value
        return "suspected" if set(self.modalities) <= r.METABOLIC_MODALITIES else "confirmed"


LIFE_EXPECTANCY_KEPT = 10


#: the assessment's facts held by name, the newest of each (Assessment.named; scoring's as_of.py re-dates them)
NAMED: Final = (
    "ecog",
    "pain_character",
    "pain_intensity",
    "neurological_deficit",
    "life_expectancy_months",
    "primary_controlled",
    "extra_osseous",
)


class Assessment(BaseModel):
    ecog: Fact[int] | None = None
    pain_character: Fact[str] | None = None  # the patient's overall pain: never a lesion's Mirels/SINS item
    pain_intensity: Fact[str] | None = None
    neurological_deficit: Fact[bool] | None = None
    life_expectancy_months: Fact[float] | None = None
    #: the newest estimates by clinical time (at most LIFE_EXPECTANCY_KEPT), so that one dated in the future never
    #: hides the newest current one
    life_expectancy_estimates: list[Fact[float]] = Field(default_factory=list)
    primary_controlled: Fact[bool] | None = None
    lesion_pain_intensity: dict[str, Fact[str]] = Field(default_factory=dict)  # by lesion_id
    lesion_pain_character: dict[str, Fact[str]] = Field(default_factory=dict)
    extra_osseous: Fact[ExtraOsseousMetastases] | None = None

    def named(self) -> list[Fact[Any]]:
        """The patient's facts held by name (the newest of each), those present."""
        return [f for name in NAMED if (f := getattr(self, name)) is not None]

    def every(self) -> list[Fact[Any]]:
        """Every fact it holds: by name, the estimates kept, each lesion's pain (HAZ-27-FUTURE-HIDES: scoring's
        as_of.py looks for one dated in the future)."""
        return [
            *self.named(),
            *self.life_expectancy_estimates,
            *self.lesion_pain_intensity.values(),
            *self.lesion_pain_character.values(),
        ]


class LabValue(BaseModel):
    analyte: str
    value: float | None
    sources: list[SourceRef] = Field(default_factory=list)  # what a derived value came from
    measured_total_calcium: float | None
    #: issue 12: the value (or the measured total calcium) was censored: a bound, never an exact value
    comparator: Comparator | None = None
    measured_comparator: Comparator | None = None
    withdrawn: bool
    occurred_at: datetime
    recorded_at: datetime
    event_id: uuid.UUID


class ScoringState(BaseModel):
    lesions: dict[str, Lesion] = Field(default_factory=dict)
    #: every imaging finding received, corrections included (by event_id): a lesion is folded from the effective
    #: ones (shared/clinical/corrections.py), so a corrected finding never counts again, even delivered late
    findings: dict[str, ImagingFinding] = Field(default_factory=dict)
    assessment: Assessment = Field(default_factory=Assessment)
    #: every clinical assessment received, corrections included (by event_id): `assessment` is folded again from
    #: the effective ones when a correction is known
    assessments: dict[str, ClinicalAssessment] = Field(default_factory=dict)
    #: every treatment event received, corrections included (by event_id), its drug named by the shared vocabulary
    #: (canonical): the decisions read the effective ones only (`effective_treatments`), so an entered-in-error or
    #: amended event never counts again, whatever the order the events arrive in (issue 18.7)
    treatments: dict[str, TreatmentEvent] = Field(default_factory=dict)
    labs: dict[str, LabValue] = Field(default_factory=dict)  # by result_id
    #: what was last published, derived from the facts: slot -> recommendation ID; slot -> score ID; SRE IDs
    recommendations: dict[str, str] = Field(default_factory=dict)
    scores: dict[str, str] = Field(default_factory=dict)
    #: HAZ-22-ORDER-03: slot -> ID of the score version last published (a withdrawn one included), when it is not
    #: the content ID in `scores` (a version after another, a withdrawal); a version's ID derives from it
    score_ids: dict[str, str] = Field(default_factory=dict)
    sres: list[str] = Field(default_factory=list)
    calcium_sres: list[str] = Field(default_factory=list)  # the published SREs that are hypercalcaemias
    lesion_sres: dict[str, str] = Field(default_factory=dict)  # the other published SREs: ID -> kind
    #: the next moment a decision may change with no new event (services/scoring/clock.py; a clock tick then)
    next_due: datetime | None = None
    #: issue 25, what retention (services/scoring/retention.py) folded away: per lesion, the fold of its findings no
    #: longer kept one by one; the fold of the assessments no longer kept; the newest recorded time of the labs and
    #: treatment events no longer kept (`as_of` reads it); the newest recorded time of any event (the horizon's end)
    lesion_bases: dict[str, Lesion] = Field(default_factory=dict)
    assessment_base: Assessment | None = None
    dropped_recorded: datetime | None = None
    newest_recorded: datetime | None = None
    #: the cutoff day of the last fold of systemic-drug treatments (it runs once a day of the horizon)
    drugs_cutoff: date | None = None

    def model_dump_json(self, **kwargs: Any) -> str:
        """The stored JSON (what the runtime writes): each record's, lesion's and fold's JSON is reused by object
        (issue 25: they are frozen or replaced, never changed in place; shared/runtime/parts_json.py); with
        arguments, pydantic's."""
        if kwargs:
            return super().model_dump_json(**kwargs)
        if sum(len(getattr(self, name)) for name in STORED.maps) < STORED.small:
            return _small(self)
        return STORED.dump(self)

    def effective_treatments(self) -> list[TreatmentEvent]:
        """The treatment events that count, in clinical order (shared/clinical/treatments.py)."""
        return effective_treatments(self.treatments.values())

    def as_of(self) -> datetime | None:
        """The newest recorded time among the facts: the reference time of decisions when no clock is given."""
        times = [x.latest.recorded_at for x in self.lesions.values()]
        times += [e.recorded_at for e in self.treatments.values()]
        times += [v.recorded_at for v in self.labs.values()]
        times += [f.recorded_at for f in self.assessment.named()]
        if self.dropped_recorded is not None:  # labs and treatment events retention no longer keeps (issue 25)
            times.append(self.dropped_recorded)
        return max(times, default=None)


#: issue 25: the tables written from their parts' JSON (merge and retention replace a lesion, a lab or a fold, and
#: never change one in place once it is in a state; the records are frozen)
STORED: Final = StoredJson(
    ("lesions", "findings", "assessments", "treatments", "labs", "lesion_bases"),
    ("assessment", "assessment_base"),
    small=32,
)

#: issue 25 (helper ZC): the fields a small state's JSON takes from its parts' JSON (in field order, below)
_FROM_PARTS: Final[set[str]] = {*STORED.maps, *STORED.ones}
_TAIL: Final = ',"dropped_recorded":'


def _small(s: ScoringState) -> str:
    """Issue 25 (helper ZC): a small state's JSON (the same bytes either way): from its parts' JSON once its assessment
    was written before (a patient's states after their first write share their parts), else by pydantic at once,
    cheaper than making every part's (a state just parsed, written once before the parsed-state cache drops it)."""
    a = s.assessment
    seen = _WRITTEN.get(id(a))
    if seen is not None and seen() is a:
        return _in_field_order(s)
    key = id(a)
    _WRITTEN[key] = weakref.ref(a, functools.partial(_forget_written, key))
    return BaseModel.model_dump_json(s)


#: issue 25 (helper ZC): the assessments (by object, weakly) of the small states written by pydantic at once
_WRITTEN: Final[dict[int, weakref.ref[Assessment]]] = {}


def _forget_written(key: int, _: object) -> None:
    seen = _WRITTEN.get(key)
    if seen is not None and seen() is None:
        _WRITTEN.pop(key, None)


def _in_field_order(s: ScoringState) -> str:
    """Issue 25 (helper ZC): a small state's JSON, byte for byte pydantic's (`BaseModel.model_dump_json`: fields in
    their declared order), assembled from each table's and fold's JSON kept by object (`STORED`), so that an event
    writes again only the table it changed; pydantic writes the plain fields. `dropped_recorded` is the first plain
    field after `lesion_bases` and `assessment_base`; its key's last occurrence is the top-level one (the fields after
    it are times, and a key inside a string value would have its quotes escaped)."""
    rest = BaseModel.model_dump_json(s, exclude=_FROM_PARTS)
    cut = rest.rfind(_TAIL)
    body: Callable[[Any], str] = STORED._body
    part, base = STORED.parts, s.assessment_base
    return "".join(
        (
            '{"lesions":{',
            body(s.lesions),
            '},"findings":{',
            body(s.findings),
            '},"assessment":',
            part(s.assessment),
            ',"assessments":{',
            body(s.assessments),
            '},"treatments":{',
            body(s.treatments),
            '},"labs":{',
            body(s.labs),
            "},",
            rest[1:cut],
            ',"lesion_bases":{',
            body(s.lesion_bases),
            '},"assessment_base":',
            "null" if base is None else part(base),
            rest[cut:],
        )
    )


def same_part(old: object, new: object) -> bool:
    """Issue 25: whether what was remembered for `old` (a table, a lesion, a fold, a fact, or None) holds for `new`: the
    same object, or else the same content, compared by the stored JSON (`STORED`, which keeps it by object: the store
    makes it anyway). A state parsed again (the runtime's parsed-state cache missed, a restart's first batch) holds
    equal parts as new objects; what is decided from a part reads only its content. A table is a dict of models
    never changed in place once in a state (merge and retention copy it), so its JSON, kept by object and length,
    stays its content."""
    if old is new:
        return True
    if isinstance(old, dict) and isinstance(new, dict):
        return len(old) == len(new) and STORED._body(old) == STORED._body(new)
    if isinstance(old, BaseModel) and isinstance(new, BaseModel):
        return type(old) is type(new) and STORED.parts(old) == STORED.parts(new)
    if isinstance(old, tuple) and isinstance(new, tuple):  # of parts, or of (record, str) pairs
        return len(old) == len(new) and all(same_part(a, b) for a, b in zip(old, new, strict=True))
    if isinstance(old, str) and isinstance(new, str):
        return old == new
    return False  # one None, or another kind of value: not remembered by content


_FACT = Fact[Any]  # the parametrised class, looked up once (not on every fact)


def _fact(event: Message, value: Any) -> Fact[Any]:
    return _FACT.of(event, value)


def merge(state: ScoringState, event: Message) -> ScoringState:
    # issue 25: only the table the event changes is copied (and sorted again): the others stay the same objects, so
    # their stored JSON and retention's and the clock's per-table work are reused (parts_json.py, retention.py)
    table = (
        "lesions"
        if isinstance(event, ImagingFinding)
        else "treatments"
        if isinstance(event, TreatmentEvent)
        else "labs"
        if isinstance(event, NormalisedLab) and event.analyte == "corrected_calcium"
        else None
    )
    s = state.model_copy(update={table: dict(getattr(state, table))}) if table is not None else state.model_copy()
    if isinstance(event, ImagingFinding):
        lesion_id = event.lesion_id
        # issue 25: a lesion with no finding kept one by one is its own summary (retention.py)
        if (
            lesion_id in state.lesions
            and lesion_id not in state.lesion_bases
            and not any(x.lesion_id == lesion_id for x in state.findings.values())
        ):
            s.lesion_bases = {**state.lesion_bases, lesion_id: state.lesions[lesion_id]}
        s.findings = dict(sorted({**state.findings, str(event.event_id): event}.items()))
        _apply_finding(s, event)
    elif isinstance(event, ClinicalAssessment):
        if not state.assessments:  # issue 25: with no assessment kept one by one, the fold is its own summary
            s.assessment_base = state.assessment if state.assessment != Assessment() else None
        s.assessments = dict(sorted({**state.assessments, str(event.event_id): event}.items()))
        records = list(s.assessments.values())
        if any(is_correction(x) for x in records):  # what a corrected assessment said no longer counts
            s.assessment = s.assessment_base or Assessment()  # what retention folded away (issue 25)
            for x in effective(records, lambda a: a.patient_id):
                s.assessment = merge_assessment(s.assessment, x)
        else:
            s.assessment = merge_assessment(s.assessment, event)
    elif isinstance(event, TreatmentEvent):
        s.treatments[str(event.event_id)] = canonical(event)  # "Tagrisso" is osimertinib (IMG-FLARE)
    elif isinstance(event, NormalisedLab) and event.analyte == "corrected_calcium":  # the only lab scoring uses
        prev = s.labs.get(event.result_id)
        # one producer, in order on the patient's partition: an equal recorded_at is a re-derivation (ties go to
        # the later delivery); only a strictly older version is ignored
        if prev is None or event.recorded_at >= prev.recorded_at:
            total = next(
                (x for x in event.derived_from if x.analyte == "total_calcium" and isinstance(x.value, float)), None
            )
            measured = total.value if total is not None and isinstance(total.value, float) else None
            s.labs[event.result_id] = LabValue(
                analyte=event.analyte,
                value=event.value,
                sources=event.derived_from,
                measured_total_calcium=measured,
                comparator=event.comparator,
                measured_comparator=None if total is None else total.comparator,
                withdrawn=event.status == "withdrawn",
                occurred_at=event.occurred_at,
                recorded_at=event.recorded_at,
                event_id=event.event_id,
            )
    # canonical key order, so that the same facts always serialise to the same bytes
    update: dict[str, Any] = {} if table is None else {table: dict(sorted(getattr(s, table).items()))}
    if isinstance(event, ImagingFinding | ClinicalAssessment | TreatmentEvent) or (
        isinstance(event, NormalisedLab) and event.analyte == "corrected_calcium"
    ):  # issue 25: the end of retention's horizon (an older version of a lab, not kept, is older than the newest)
        held = state.newest_recorded if state.newest_recorded is not None else newest_held(state)
        update["newest_recorded"] = event.recorded_at if held is None else max(held, event.recorded_at)
    # issue 25 (helper ZC): `s` is this merge's own copy, never seen outside it: updated as `model_copy(update=...)`
    # would update a copy of it (the fields and the fields set), without copying it again
    s.__dict__.update(update)
    s.__pydantic_fields_set__.update(update)
    return s


def newest_held(s: ScoringState) -> datetime | None:
    """The newest recorded time among the records the state holds (a state stored before issue 25)."""
    times = [x.recorded_at for x in (*s.findings.values(), *s.assessments.values(), *s.treatments.values())]
    times += [x.recorded_at for x in s.labs.values()]
    return max(times, default=None)


def _apply_finding(s: ScoringState, f: ImagingFinding) -> None:
    """Fold the finding into its lesion; when corrections are known, fold the lesions concerned again from their
    effective findings only (an entered-in-error finding withdraws what it caused: its SRE, its score's
    recommendation, through apply_event's withdrawal path, as LAB-CORRECTION does for labs)."""
    rows = list(s.findings.values())
    if not any(is_correction(x) for x in rows):
        s.lesions[f.lesion_id] = merge_finding(s.lesions.get(f.lesion_id), f)
        return
    # shared.clinical.corrections.fold_finding, from the fold of the findings retention no longer keeps (issue 25)
    concerned = {f.lesion_id} | {x.lesion_id for x in rows if x.event_id == f.corrects}
    folded = {lesion_id: s.lesion_bases[lesion_id] for lesion_id in concerned if lesion_id in s.lesion_bases}
    for x in effective_findings(rows):
        if x.lesion_id in concerned:
            folded[x.lesion_id] = merge_finding(folded.get(x.lesion_id), x)
    for lesion_id in concerned:
        if lesion_id in folded:
            s.lesions[lesion_id] = folded[lesion_id]
        else:
            s.lesions.pop(lesion_id, None)


def merge_finding(lesion: Lesion | None, f: ImagingFinding) -> Lesion:
    key = (f.occurred_at, f.recorded_at, str(f.event_id))
    if lesion is None:
        lesion = Lesion(latest=f, first_seen=f.occurred_at, modalities=[])
    elif key > (lesion.latest.occurred_at, lesion.latest.recorded_at, str(lesion.latest.event_id)):
        lesion = lesion.model_copy(update={"latest": f})
    lesion = lesion.model_copy(
        update={
            "first_seen": min(lesion.first_seen, f.occurred_at),
            "modalities": sorted({*lesion.modalities, f.modality}),
        }
    )
    if f.cord_compression:
        lesion.cord_compression = earliest(lesion.cord_compression, _fact(f, f.modality))
        lesion.compression_seen_last = newest(lesion.compression_seen_last, _fact(f, f.modality))
    if f.pathological_fracture:
        lesion.fracture = earliest(lesion.fracture, _fact(f, f.modality))
        lesion.fracture_seen_last = newest(lesion.fracture_seen_last, _fact(f, f.modality))
    for name, value in (
        ("status", f.status),
        ("compression_stated", f.cord_compression),
        ("epidural_stated", f.epidural_extension),
    ):
        if value is not None:
            setattr(lesion, name, newest(getattr(lesion, name), _fact(f, value)))
    if f.new_focus and f.modality in r.METABOLIC_MODALITIES:
        foci = {str(x.event_id): x for x in lesion.new_foci}
        foci[str(f.event_id)] = _fact(f, f.modality)
        lesion.new_foci = sorted(foci.values(), key=lambda x: x.order())
    return lesion


def merge_assessment(a: Assessment, e: ClinicalAssessment) -> Assessment:
    a = a.model_copy(
        update={
            "lesion_pain_intensity": dict(a.lesion_pain_intensity),
            "lesion_pain_character": dict(a.lesion_pain_character),
        }
    )
    pain = e.pain
    for name, value in (
        ("ecog", e.ecog),
        ("pain_character", pain.character if pain else None),
        ("pain_intensity", pain.intensity if pain else None),
        ("neurological_deficit", e.neurological_deficit),
        ("life_expectancy_months", e.life_expectancy_months),
        ("primary_controlled", e.primary_controlled),
        ("extra_osseous", e.extra_osseous_metastases),
    ):
        if value is not None:  # an absent field leaves what is known unchanged
            setattr(a, name, newest(getattr(a, name), _fact(e, value)))
    for lp in e.lesion_pain:
        for table, value in ((a.lesion_pain_intensity, lp.intensity), (a.lesion_pain_character, lp.character)):
            if value is not None:
                table[lp.lesion_id] = newest(table.get(lp.lesion_id), _fact(e, value))
    a.lesion_pain_intensity = dict(sorted(a.lesion_pain_intensity.items()))
    a.lesion_pain_character = dict(sorted(a.lesion_pain_character.items()))
    if e.life_expectancy_months is not None:
        known = {str(f.event_id): f for f in a.life_expectancy_estimates}
        known[str(e.event_id)] = _fact(e, e.life_expectancy_months)
        a.life_expectancy_estimates = sorted(known.values(), key=lambda f: f.order())[-LIFE_EXPECTANCY_KEPT:]
    return a
