"""The systemic planner's per-patient state (`SystemicState`: the facts it reads, merged by clinical time) and how an
event is merged into it (`merge`: copy on write, corrections folded as scoring folds them).

Pure. The readers of these facts are in disease.py, labs.py and treatments.py; what is kept of them, retention.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from contracts.base import InputUsed, Message
from contracts.care import CareEvent
from contracts.clinical import NormalisedLab, Score, SkeletalEvent
from contracts.clock import ClockTick
from contracts.hospital import (
    ClinicalAssessment,
    Comparator,
    ImagingFinding,
    TreatmentEvent,
)
from services.systemic_planner import rules as r
from services.systemic_planner.drug_replay import DrugReplay
from services.systemic_planner.records import AssessmentRecord, FindingRecord
from services.systemic_planner.stored import STORED
from shared.clinical import censored
from shared.clinical.corrections import effective, fold_finding, is_correction
from shared.clinical.facts import Fact, earliest, newest
from shared.clinical.treatments import canonical

#: the lab analytes the planner keeps, and the table each goes to
LAB_TABLES = {
    "creatinine_clearance": "creatinine_clearance",
    "vitamin_d_25oh": "vitamin_d",
    "corrected_calcium": "corrected_calcium",
    "ctx_serum": "ctx",
}


class LabFact(BaseModel):
    value: float | None
    missing: list[str] = Field(default_factory=list)
    withdrawn: bool
    occurred_at: datetime
    recorded_at: datetime
    event_id: uuid.UUID
    #: creatinine clearance: when the weight it used was measured (LAB-CRCL provenance, `derived_from`)
    weight_at: datetime | None = None
    #: LAB-CTX: interpretable / not_interpretable, and why (French notes from lab-normalisation)
    interpretation: str | None = None
    notes: list[str] = Field(default_factory=list)
    #: issue 12: a censored value (or one derived from a censored result) is a bound, never an exact value
    comparator: Comparator | None = None
    #: the censored results it was derived from, as reported ("creatinine > 1326.3 µmol/L")
    censored_sources: list[str] = Field(default_factory=list)

    def used(self, name: str, unit: str) -> InputUsed:
        return InputUsed(
            name=name,
            value=self.value,
            unit=unit,
            occurred_at=self.occurred_at,
            source_event_id=self.event_id,
            comparator=self.comparator,
        )

    def shown(self, fmt: str = "g") -> str:
        """The value as reported: "> 171.8", "< 8", "2.4" (no unit)."""
        assert self.value is not None
        return censored.shown(self.value, self.comparator, fmt=fmt)

    def reported(self, analyte: str, unit: str) -> str:
        """What to name when a censored value leaves a threshold undecided: its censored sources, else itself."""
        return "; ".join(self.censored_sources) or f"{analyte} {self.shown()} {unit}"


class SreCurrency(BaseModel):
    """What scoring says of an SRE being under way (SkeletalEvent.current / evidence_at / current_until)."""

    current: bool | None = None
    evidence_at: datetime | None = None
    current_until: datetime | None = None


class LesionFacts(BaseModel):
    """What the planner knows of one bone lesion: whether it is a confirmed metastasis (IMG-ISOLATED, the same rule
    as scoring's `Lesion.effective_status`)."""

    first: Fact[str]  # the earliest finding (value: skeletal site)
    modalities: list[str] = Field(default_factory=list)
    status: Fact[str] | None = None  # the newest stated status (suspected, confirmed, resolved)

    def effective_status(self) -> str:
        if self.status is not None:
            return self.status.value
        return "suspected" if set(self.modalities) <= r.METABOLIC_MODALITIES else "confirmed"


#: life-expectancy estimates kept (the newest by clinical time): enough for future-dated ones never to hide the
#: newest current one
LIFE_EXPECTANCY_KEPT = 10


class AssessmentFold(BaseModel):
    """What clinical assessments no longer held said (issue 25): the newest life-expectancy estimates and the newest
    oncological response, merged as `_merge_assessment` merges them."""

    life_expectancies: list[Fact[float]] = Field(default_factory=list)
    response: Fact[str] | None = None


class SystemicState(BaseModel):
    sres: dict[str, Fact[str]] = Field(default_factory=dict)  # SRE event_id -> kind
    sre_currency: dict[str, SreCurrency] = Field(default_factory=dict)  # SRE event_id -> currency, when assessed
    lesions: dict[str, LesionFacts] = Field(default_factory=dict)  # by lesion_id
    #: every imaging finding received, corrections included (by event_id): a lesion is folded from the effective
    #: ones only, so a corrected or entered-in-error finding never starts anything (SYS-AR-START)
    findings: dict[str, FindingRecord] = Field(default_factory=dict)
    #: every clinical assessment (what the planner reads of it), corrections included: what a corrected one said
    #: is folded again from the effective ones
    assessments: dict[str, AssessmentRecord] = Field(default_factory=dict)
    life_expectancies: list[Fact[float]] = Field(default_factory=list)  # by clinical time, newest last
    response: Fact[str] | None = None
    oligometastatic: Fact[str] | None = None  # status band
    oligo_missing: list[str] = Field(default_factory=list)
    creatinine_clearance: dict[str, LabFact] = Field(default_factory=dict)  # by result_id
    vitamin_d: dict[str, LabFact] = Field(default_factory=dict)  # by result_id
    corrected_calcium: dict[str, LabFact] = Field(default_factory=dict)  # by result_id
    ctx: dict[str, LabFact] = Field(default_factory=dict)  # serum CTX by result_id
    #: every treatment event received, corrections included (by event_id), its drug named by the shared vocabulary
    #: (canonical): the plan reads the effective ones only (`treatments`), so an entered-in-error or amended event
    #: never counts again, whatever the order the events arrive in (issue 18.7)
    treatments: dict[str, TreatmentEvent] = Field(default_factory=dict)
    care: dict[str, CareEvent] = Field(default_factory=dict)  # care-pathway steps and bone biopsies, by event_id
    #: what was last published: item key -> "rule_id|recommendation ID|content digest"; plan version, digest, ID
    published: dict[str, str] = Field(default_factory=dict)
    plan_version: int = 0
    plan_digest: str = ""
    plan_event: Fact[str] | None = None
    #: the earliest deadline after the last decision (shared/runtime/timers.py fires a clock tick then)
    next_due: datetime | None = None
    #: `now` of the last decision: the plan served by the API is rebuilt as of then, as it was published
    decided_at: datetime | None = None
    #: issue 25 (retention.py): the newest `recorded_at` of the inputs merged, the state's own clock for retention
    newest_recorded_at: datetime | None = None
    #: issue 25: each lesion's fold of the findings no longer held (retention.py), the base its lesion is folded
    #: again from when a correction arrives (IMG-ISOLATED: first seen, every modality, the newest stated status)
    finding_base: dict[str, LesionFacts] = Field(default_factory=dict)
    #: issue 25: the fold of the clinical assessments no longer held (the newest life expectancies and response)
    assessment_base: AssessmentFold | None = None
    #: issue 25: the drug replay over the treatment events dated before its cut (retention.py), one per zoledronic
    #: acid interval (SYS-SCHEDULE: monthly or every 3 months), which `drug_history` goes on from
    drug_replays: dict[int, DrugReplay] = Field(default_factory=dict)
    #: issue 25: treatment events that arrived after newer records (event_id -> the state's clock then): retention
    #: folds a drug record once it has been held a while, whatever its own dates (a second delivery is still known)
    late_arrivals: dict[str, datetime] = Field(default_factory=dict)

    def model_dump_json(self, **kwargs: Any) -> str:
        """The stored JSON (what the runtime writes): each record's and fact's JSON is reused by object (issue 25,
        STORED); with arguments, pydantic's."""
        if kwargs:
            return super().model_dump_json(**kwargs)
        return STORED.dump(self)


def merge(state: SystemicState, e: Message) -> SystemicState:
    """The state with the event's facts. Copy on write (issue 25): a table the event does not change is shared with
    `state`, never changed in place, so what is derived from it once (`treatments`) holds for both."""
    if isinstance(e, ClockTick):
        return state.model_copy()  # time passed: the facts are unchanged, the decision is taken again with `now`
    s = state.model_copy()
    if s.newest_recorded_at is None or e.recorded_at > s.newest_recorded_at:
        s.newest_recorded_at = e.recorded_at
    if isinstance(e, SkeletalEvent) and e.status == "withdrawn":  # its source was corrected (LAB-CORRECTION)
        gone = {str(sre_id) for sre_id in e.supersedes}
        s.sres = {k: v for k, v in state.sres.items() if k not in gone}
        s.sre_currency = {k: v for k, v in state.sre_currency.items() if k not in gone}
    elif isinstance(e, SkeletalEvent):
        s.sres = {**state.sres, str(e.event_id): Fact[str].of(e, e.kind)}
        if e.current is not None:
            currency = SreCurrency(current=e.current, evidence_at=e.evidence_at, current_until=e.current_until)
            s.sre_currency = {**state.sre_currency, str(e.event_id): currency}
    elif isinstance(e, ImagingFinding):
        found = FindingRecord.of(e)
        s.findings = dict(sorted({**state.findings, str(e.event_id): found}.items()))
        s.lesions = dict(state.lesions)
        _apply_finding(s, found)
        s.lesions = dict(sorted(s.lesions.items()))
    elif isinstance(e, ClinicalAssessment):
        assessed = AssessmentRecord.of(e)
        s.assessments = dict(sorted({**state.assessments, str(e.event_id): assessed}.items()))
        if any(is_correction(x) for x in s.assessments.values()):  # what a corrected one said no longer counts
            base = s.assessment_base or AssessmentFold()  # issue 25: from what assessments no longer held said
            s.life_expectancies, s.response = list(base.life_expectancies), base.response
            for x in effective(s.assessments.values(), lambda _: "patient"):
                _merge_assessment(s, x)
        else:
            _merge_assessment(s, assessed)
    elif isinstance(e, TreatmentEvent):
        s.treatments = {**state.treatments, str(e.event_id): canonical(e)}  # "Xgeva" is denosumab
        if state.newest_recorded_at is not None and e.recorded_at < state.newest_recorded_at:
            s.late_arrivals = {**state.late_arrivals, str(e.event_id): state.newest_recorded_at}
    elif isinstance(e, CareEvent):
        s.care = {**state.care, str(e.event_id): e}
    # Scores and lab values come from one producer, in order on the patient's partition: a version recorded at
    # the same time as the one held is a re-derivation and replaces it (ties go to the later delivery).
    elif isinstance(e, Score) and e.score == "oligometastatic" and e.band is not None:
        if s.oligometastatic is None or e.recorded_at >= s.oligometastatic.recorded_at:
            s.oligometastatic, s.oligo_missing = Fact[str].of(e, e.band), list(e.missing)
    elif isinstance(e, NormalisedLab) and e.analyte in LAB_TABLES:
        table: dict[str, LabFact] = dict(getattr(state, LAB_TABLES[e.analyte]))
        setattr(s, LAB_TABLES[e.analyte], table)
        prev = table.get(e.result_id)
        if prev is None or e.recorded_at >= prev.recorded_at:
            # LAB-CRCL: the clearance is dated by its creatinine; the weight it used has its own date
            weight_at = max((x.occurred_at for x in e.derived_from if x.analyte == "body_weight"), default=None)
            table[e.result_id] = LabFact(
                value=e.value,
                missing=e.missing,
                withdrawn=e.status == "withdrawn",
                occurred_at=e.occurred_at,
                recorded_at=e.recorded_at,
                event_id=e.event_id,
                weight_at=weight_at,
                interpretation=e.interpretation,
                notes=e.notes,
                comparator=e.comparator,
                censored_sources=[
                    f"{x.analyte} {censored.shown(x.value, x.comparator, x.unit)}"
                    for x in e.derived_from
                    if x.comparator is not None and isinstance(x.value, float)
                ],
            )
    return s


def _merge_assessment(s: SystemicState, e: AssessmentRecord) -> None:
    if e.life_expectancy_months is not None:
        known = {str(f.event_id): f for f in s.life_expectancies}
        known[str(e.event_id)] = e.fact(e.life_expectancy_months)
        s.life_expectancies = sorted(known.values(), key=lambda f: f.order())[-LIFE_EXPECTANCY_KEPT:]
    if e.oncological_response is not None:
        s.response = newest(s.response, e.fact(e.oncological_response))


def _apply_finding(s: SystemicState, f: FindingRecord) -> None:
    """Fold the finding into its lesion; when corrections are known, fold the lesions concerned again from their
    effective findings only (the same rule as scoring: shared/clinical/corrections.py)."""
    base = s.finding_base
    if not base:
        fold_finding(s.lesions, s.findings.values(), f, _merge_finding)
        return
    # issue 25: a lesion is folded again from the fold of its findings no longer held (retention.py), never from
    # nothing: a lesion whose held findings are all withdrawn is that fold
    fold_finding(
        s.lesions,
        s.findings.values(),
        f,
        lambda lesion, x: _merge_finding(base.get(x.lesion_id) if lesion is None else lesion, x),
    )
    for lesion_id in {f.lesion_id, *(x.lesion_id for x in s.findings.values() if x.event_id == f.corrects)}:
        if lesion_id in base and lesion_id not in s.lesions:
            s.lesions[lesion_id] = base[lesion_id]


def _merge_finding(lesion: LesionFacts | None, f: FindingRecord) -> LesionFacts:
    found = f.fact(f.skeletal_site)
    if lesion is None:
        lesion = LesionFacts(first=found)
    status = lesion.status
    if f.status is not None:
        status = newest(status, f.fact(f.status))
    return LesionFacts(
        first=earliest(lesion.first, found), modalities=sorted({*lesion.modalities, f.modality}), status=status
    )
