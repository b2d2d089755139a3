"""What the systemic planner reads: the per-patient facts (merged by clinical time) and how current each one is.

Pure. Every reader takes an `AsOf` (now, recency windows) and records the deadlines at which its answer changes
(an input going stale, a crisis ceasing to be current, a future-dated fact becoming effective)."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal, cast

from pydantic import BaseModel, Field, TypeAdapter

from contracts.base import InputUsed, Message
from contracts.care import CareEvent
from contracts.clinical import NormalisedLab, Score, SkeletalEvent
from contracts.clock import ClockTick
from contracts.hospital import (
    ClinicalAssessment,
    Comparator,
    DentalCare,
    DrugAdministration,
    ImagingFinding,
    SystemicDrug,
    TreatmentEvent,
)
from contracts.plan import PlanItem
from contracts.rules import cite
from services.systemic_planner import rules as r
from services.systemic_planner.fr import fr_date
from services.systemic_planner.memo import memo
from services.systemic_planner.records import AssessmentRecord, FindingRecord
from shared.clinical import censored
from shared.clinical.corrections import effective, fold_finding, is_correction
from shared.clinical.dates import add_months
from shared.clinical.drugs import DrugIdentity, identify
from shared.clinical.facts import Fact, earliest, newest
from shared.clinical.life_expectancy import SIX_WEEKS_IN_MONTHS, remaining_months, when_remaining_reaches
from shared.clinical.treatments import canonical, corrections_to_check, effective_treatments, in_effect_order
from shared.runtime.parts_json import StoredJson, json_key

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


class _StoredState(StoredJson):
    """StoredJson, with the fields it leaves to pydantic written field by field (issue 25, helper ZD): pydantic's
    `exclude` of the 18 other fields cost ~20 µs per state. Each of those fields is written by its own type's
    serializer (the same JSON as the model's), the lists and dicts among them (replaced, never changed in place, as
    every table here) reused by object."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rest_fields: tuple[tuple[str, str, TypeAdapter[Any], bool], ...] | None = None
        self._kept: OrderedDict[int, tuple[object, int, str]] = OrderedDict()

    def _rest(self, state: BaseModel) -> str:
        fields = self._rest_fields
        if fields is None:  # the model's fields other than the excluded ones, in the model's order
            fields = self._rest_fields = tuple(
                (name, json_key(name), TypeAdapter[Any](cast(Any, info.annotation)), _held(info))
                for name, info in type(state).model_fields.items()
                if name not in self.exclude
            )
        out = []
        for name, key, adapter, held in fields:
            value: Any = getattr(state, name)
            if held and value:
                size = len(value)
                with self._lock:
                    hit = self._kept.get(id(value))
                    if hit is not None and hit[0] is value and hit[1] == size:
                        self._kept.move_to_end(id(value))
                        out.append(f"{key}:{hit[2]}")
                        continue
                text = adapter.dump_json(value).decode()
                with self._lock:
                    self._kept[id(value)] = (value, size, text)
                    while len(self._kept) > self.bodies_size:
                        self._kept.popitem(last=False)
            else:
                text = adapter.dump_json(value).decode()
            out.append(f"{key}:{text}")
        return "{" + ",".join(out) + "}"


def _held(info: Any) -> bool:
    """A list or dict field: its JSON is kept by object."""
    origin = getattr(info.annotation, "__origin__", None)
    return origin in (list, dict)


#: issue 25: the tables written from each record's and fact's JSON (merge copies a table it changes, and a record or
#: fact in a state is replaced, never changed in place: shared/runtime/parts_json.py)
STORED: Final = _StoredState(
    (
        "sres",
        "sre_currency",
        "lesions",
        "findings",
        "assessments",
        "creatinine_clearance",
        "vitamin_d",
        "corrected_calcium",
        "ctx",
        "treatments",
        "care",
        "finding_base",
    ),
    ("response", "oligometastatic", "plan_event", "assessment_base"),
    fields=("published", "late_arrivals"),
)


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


def bone_metastasis(s: SystemicState, at: r.AsOf) -> Fact[str] | None:
    """SYS-AR-START's "découverte d'une métastase osseuse" (L1070-1074, L1263-1265): the earliest confirmed lesion,
    never a suspected one (stated, or seen only on PET or bone scan: IMG-ISOLATED, L489-491), a resolved one, or one
    first seen on a date in the future."""
    confirmed = [
        x.first
        for x in s.lesions.values()
        if x.effective_status() == "confirmed" and not at.is_future(x.first.occurred_at)
    ]
    return min(confirmed, key=lambda f: f.order(), default=None)


@dataclass(frozen=True)
class LifeExpectancy:
    """The newest life-expectancy estimate not dated in the future, and what remains of it now. `remaining` is set
    only when the estimate is within its validity window (else it is to be estimated again)."""

    fact: Fact[float] | None
    status: Literal["unknown", "stale", "current"]
    remaining: float | None = None
    future_ignored: bool = False

    @property
    def missing(self) -> tuple[str, ...]:
        if self.status == "current":
            return ()
        if self.fact is None:
            return ("life expectancy estimate",)
        return (
            f"a current life expectancy estimate (the last one, {self.fact.value:g} months, dated "
            f"{self.fact.occurred_at:%Y-%m-%d})",
        )


def life_expectancy(s: SystemicState, at: r.AsOf) -> LifeExpectancy:
    """A future-dated estimate is ignored (it becomes effective on its date: a deadline) and never hides a current
    one; past the validity window the estimate is to be made again; within it, the thresholds (3 months, 6 weeks)
    apply to what remains (the estimate minus the time since), and the moments they are crossed are deadlines.
    Issue 25: the estimate read is memoised (memo.py); what remains of it is computed at `now`."""
    found = memo("life_expectancy", at, (s.life_expectancies,), lambda: _life_expectancy(s, at))
    if found.status != "current":
        return found
    assert found.fact is not None
    remaining = remaining_months(found.fact.value, found.fact.occurred_at, at.exact_now())
    return LifeExpectancy(found.fact, "current", remaining, found.future_ignored)


def _life_expectancy(s: SystemicState, at: r.AsOf) -> LifeExpectancy:
    """`life_expectancy` but what remains (None)."""
    future = False
    past = []
    for f in s.life_expectancies:
        if at.is_future(f.occurred_at):  # its deadline offered by is_future (HAZ-27-SYS-FUTURE)
            future = True
        else:
            past.append(f)
    fact = max(past, key=lambda f: f.order(), default=None)
    if fact is None:
        return LifeExpectancy(None, "unknown", future_ignored=future)
    if not at.is_current(fact.occurred_at, at.recency.life_expectancy):
        return LifeExpectancy(fact, "stale", future_ignored=future)
    for threshold in (r.AR_START_MIN_LIFE_EXPECTANCY_MONTHS, SIX_WEEKS_IN_MONTHS):  # SYS-AR-START, SURG-LE
        at.after(when_remaining_reaches(fact.value, fact.occurred_at, threshold) + timedelta(seconds=1))
    return LifeExpectancy(fact, "current", None, future)


def item(key: str, rule_id: str, status: str, severity: str, title: str, text: str, **extra: object) -> PlanItem:
    return PlanItem.model_validate(
        {
            "key": key,
            "rule_id": rule_id,
            "status": status,
            "severity": severity,
            "title": title,
            "text_fr": text,
            "citation": cite(rule_id),
            **extra,
        }
    )


# ---- lab values ---------------------------------------------------------------------------------------------
def latest(table: dict[str, LabFact], at: r.AsOf, before: date | None = None) -> LabFact | None:
    """The newest live value by clinical time. A value dated in the future is not current and never hides the
    newest real one (it becomes effective, if still there, when its date comes: a deadline)."""
    live = []
    for v in table.values():
        if v.withdrawn or (before is not None and at.day(v.occurred_at) > before):
            continue
        if at.is_future(v.occurred_at):  # its deadline offered by is_future (HAZ-27-SYS-FUTURE)
            continue
        live.append(v)
    return max(live, key=lambda v: (v.occurred_at, v.recorded_at, v.event_id.int), default=None)


def future_dated(table: dict[str, LabFact], at: r.AsOf) -> bool:
    return any(not v.withdrawn and at.is_future(v.occurred_at) for v in table.values())


@dataclass(frozen=True)
class Renal:
    """Creatinine clearance as the rules may use it. `value` is set only when current (item: stale inputs)."""

    crcl: LabFact | None
    status: Literal["unknown", "not_computable", "stale", "current"]
    value: float | None
    stale: tuple[str, ...] = ()  # what to measure again, in French
    missing: tuple[str, ...] = ()  # what is needed, for `missing`

    @property
    def failure(self) -> censored.Side | None:
        """CrCl < 30 (SYS-DENO, SYS-RENAL-TOX, SYS-ZA-DOSE contraindication) on the clearance as an interval
        (issue 12): "below" = severe renal failure for certain, "straddles" = undecided. None unless current."""
        if self.value is None or self.crcl is None:
            return None
        return r.renal_failure_side(self.value, self.crcl.comparator)

    def censored_missing(self) -> list[str]:
        """Issue 12: what to measure again when a censored clearance leaves a threshold undecided."""
        assert self.crcl is not None
        return [f"exact value: {x} is censored, measure again" for x in self.crcl.censored_sources] or [
            f"exact creatinine clearance: {self.crcl.shown()} mL/min is censored, measure again"
        ]


def renal(s: SystemicState, at: r.AsOf) -> Renal:
    crcl = latest(s.creatinine_clearance, at)
    if crcl is None:
        # LAB-CRCL is derived by lab-normalisation from a creatinine and the patient record; without one the
        # planner only knows that the clearance is missing (never which of weight, age or sex: it does not read
        # the record, and naming them when they are known would be wrong).
        return Renal(None, "unknown", None, missing=("creatinine clearance",))
    if crcl.value is None:
        return Renal(crcl, "not_computable", None, missing=("creatinine clearance", *crcl.missing))
    w = at.recency
    stale: list[str] = []
    missing: list[str] = []
    if not at.is_current(crcl.occurred_at, w.creatinine):
        stale.append(f"créatininémie du {fr_date(crcl.occurred_at)}")
        missing.append(f"creatinine measured within {w.creatinine.days} days")
    if crcl.weight_at is None or not at.is_current(crcl.weight_at, w.weight):
        when = f"du {fr_date(crcl.weight_at)}" if crcl.weight_at else "sans date de pesée"
        stale.append(f"poids {when}")
        missing.append(f"weight measured within {w.weight.days} days")
    if stale:
        return Renal(crcl, "stale", None, tuple(stale), tuple(missing))
    return Renal(crcl, "current", crcl.value)


@dataclass(frozen=True)
class Calcium:
    """Corrected calcium as the plan uses it.

    `emergency`: a *current* hypercalcaemic crisis (newest corrected calcium > 3.5 mmol/L, within the recency
    window; or a hypercalcaemia SRE with no newer calcium known, itself recent). A late crisis value older than a
    newer normal one is history, never an emergency (the SRE still counts as an SRE for SYS-AR-START).
    `hold_supplements`: no vitamin D loading and no calcium advice while the newest corrected calcium is above
    normal, or a hypercalcaemia is known with no normal calcium since (whatever its age: only a normal corrected
    calcium lifts it)."""

    latest: LabFact | None
    emergency: bool
    hold_supplements: bool
    current: bool
    inputs: tuple[InputUsed, ...] = ()
    #: issue 12: the newest corrected calcium is censored and its bound leaves the upper normal limit undecided
    #: (e.g. "> 2.5"): neither held for a hypercalcaemia nor known normal; the reported value(s), to name
    uncertain: str | None = None


def calcium(s: SystemicState, at: r.AsOf) -> Calcium:
    values = {k: v for k, v in s.corrected_calcium.items() if v.value is not None}
    ca = latest(values, at)
    sres = [f for f in s.sres.values() if f.value == "hypercalcaemia" and not at.is_future(f.occurred_at)]
    last_sre = max(sres, key=lambda f: f.order(), default=None)
    inputs: list[InputUsed] = []
    if ca is not None and (last_sre is None or ca.occurred_at >= last_sre.occurred_at):
        assert ca.value is not None
        inputs.append(ca.used("corrected_calcium", "mmol/L"))
        current = at.is_current(ca.occurred_at, at.recency.calcium)
        # strict and unrounded; a censored value decides only when its whole interval lies on one side (issue 12):
        # an emergency never from a bound that may be below 3.5 (LAB-CA-CRISIS L304-306)
        crisis = r.calcium_side(ca.value, ca.comparator, r.CRISIS_CORRECTED_CALCIUM_MMOL_L) == "above"
        high = r.calcium_side(ca.value, ca.comparator, r.CALCIUM_UPPER_NORMAL_MMOL_L)
        uncertain = ca.reported("corrected_calcium", "mmol/L") if high == "straddles" else None
        return Calcium(ca, current and crisis, high == "above", current, tuple(inputs), uncertain)
    if last_sre is not None:  # a crisis known from scoring, no newer calcium here
        inputs.append(last_sre.used("sre:hypercalcaemia"))
        current = sre_is_current(s, last_sre, at, at.recency.calcium)
        return Calcium(ca, current, True, current, tuple(inputs))
    return Calcium(None, False, False, False)


def sre_is_current(s: SystemicState, sre: Fact[str], at: r.AsOf, window: timedelta) -> bool:
    """An SRE is under way: as scoring assessed it (`current`, until `current_until`), else judged here from its
    newest evidence within `window`. Either way, never from a future date."""
    assessed = s.sre_currency.get(str(sre.event_id))
    if assessed is not None and assessed.current is not None:
        if not assessed.current:
            return False
        if assessed.current_until is not None:  # current up to it inclusive (contracts SkeletalEvent, scoring)
            return at.not_after(assessed.current_until) and not at.is_future(assessed.evidence_at or sre.occurred_at)
    return at.is_current(assessed.evidence_at if assessed and assessed.evidence_at else sre.occurred_at, window)


@dataclass(frozen=True)
class VitaminD:
    fact: LabFact | None
    #: censored: the level is a bound spanning two of the correction scheme's bands (issue 12): nothing is decided
    status: Literal["unknown", "stale", "current", "censored"]
    #: SYS-AR-PREREQ: a deficiency (< 20 ng/mL) whose loading is not complete
    deficiency_uncorrected: bool = False
    loading_since: date | None = None
    loading_ends: date | None = None
    #: r.VITD_CUTS band (0: < 20 ... 4: > 150) when current; and a certain Tableau 1 deficiency (< 10 ng/mL)
    band: int | None = None
    severe: bool = False
    #: SYS-VITD-CORR (issue 18 review): the loading on this level was stopped on this day, before its weeks were
    #: given (L851, L855: 8 or 4 weekly doses): not complete
    loading_stopped: date | None = None
    loading_weeks: int = 0

    @property
    def decided_value(self) -> float | None:
        """A value inside the level's band, standing for it in the band's decisions (the exact value when exact)."""
        if self.fact is None or self.fact.value is None or self.band is None:
            return None
        return self.fact.value if self.fact.comparator is None else r.VITD_BAND_VALUE[self.band]


def vitamin_d(s: SystemicState, drugs: DrugHistory, at: r.AsOf) -> VitaminD:
    v = latest(s.vitamin_d, at)
    if v is None or v.value is None:
        return VitaminD(v, "unknown")
    if not at.is_current(v.occurred_at, at.recency.vitamin_d):
        return VitaminD(v, "stale")
    # issue 12: a censored level decides only when its whole interval lies in one band of the scheme (SYS-VITD-CORR
    # L849-855: < 20, 20 to 30; Tableau 1 L821-831: 30-70, > 150)
    band = r.vitamin_d_band(v.value, v.comparator)
    if band is None:
        return VitaminD(v, "censored")
    severe = r.severe_vitamin_d_deficiency(v.value, v.comparator)
    weeks = {0: 8, 1: 4}.get(band, 0)
    if not weeks:
        return VitaminD(v, "current", band=band, severe=severe)
    # the loading prescribed on this level (one 50 000 IU dose a week): cholecalciferol started on or after the
    # level; a deficiency is corrected once a course lasted the loading's weeks (issue 18 review: a course stopped
    # before then is not a complete loading, L851 "8 prises de 50 000 UI hebdomadaires", L795-799)
    deficient = band == 0
    courses = [(a, b) for a, b in drugs.runs.get("cholecalciferol", ()) if a >= at.day(v.occurred_at)]
    if not courses:
        return VitaminD(v, "current", deficiency_uncorrected=deficient, band=band, severe=severe, loading_weeks=weeks)
    loaded = timedelta(weeks=weeks)
    complete = next(
        ((a, b) for a, b in courses if (b >= a + loaded if b is not None else at.today_ge(a + loaded))), None
    )
    started, stopped = complete or courses[-1]
    ends = started + loaded
    if complete is None and stopped is not None:  # interrupted before its weeks, not started again since
        return VitaminD(
            v,
            "current",
            deficiency_uncorrected=deficient,
            loading_since=started,
            band=band,
            severe=severe,
            loading_stopped=stopped,
            loading_weeks=weeks,
        )
    at.after_date(ends)
    uncorrected = deficient and complete is None
    return VitaminD(
        v,
        "current",
        deficiency_uncorrected=uncorrected,
        loading_since=started,
        loading_ends=ends,
        band=band,
        severe=severe,
        loading_weeks=weeks,
    )


# ---- treatments ------------------------------------------------------------------------------------------------
#: issue 25: a treatments table's effective events and corrections to check, resolved once per table rather than at
#: each of the readers of each decision (a table is never changed in place: `merge` copies on write). The entry holds
#: the table, so its `id` is not reused while the entry lives.
_RESOLVED: dict[int, tuple[dict[str, TreatmentEvent], list[TreatmentEvent], list[TreatmentEvent]]] = {}
_RESOLVED_MAX = 512


def _resolved(s: SystemicState) -> tuple[list[TreatmentEvent], list[TreatmentEvent]]:
    table = s.treatments
    hit = _RESOLVED.get(id(table))
    if hit is not None and hit[0] is table:
        return hit[1], hit[2]
    events = table.values()
    counted = effective_treatments(events)
    to_check = corrections_to_check(events) if any(e.record_status != "final" for e in events) else []
    if len(_RESOLVED) >= _RESOLVED_MAX:
        del _RESOLVED[next(iter(_RESOLVED))]
    _RESOLVED[id(table)] = (table, counted, to_check)
    return counted, to_check


def treatments(s: SystemicState) -> list[TreatmentEvent]:
    """The treatment events that count, in clinical order: corrected and entered-in-error ones left out (shared
    clinical context, issue 18.7). Shared: not to be changed by the caller."""
    return _resolved(s)[0]


@dataclass(frozen=True)
class DrugHistory:
    active: dict[str, date]  # drug -> started on (current course; a same-day re-prescription keeps it)
    ever_started: dict[str, date]  # drug -> first start
    #: drug -> its last stop, when its last event is a stop; issue 18 review: the stop of a drug that is not under way
    #: (a duplicate, a stray record) moves nothing; a stop with no start known is kept (SYS-DENO-STOP warns on it)
    stopped: dict[str, date]
    starts: tuple[tuple[str, date], ...]  # every start, in order
    #: SYS-REVIEW-2Y (issue 18 review): the first start of the current count of anti-resorptive exposure, summed over
    #: the courses of any anti-resorptive; a gap of r.AR_FRESH_COUNT_GAP_MONTHS or more with none starts a new count
    ar_course_start: date | None
    #: the date every anti-resorptive was stopped after 2 years of cumulative exposure (the review stop), if that
    #: is the last word (a zoledronic acid relay after a denosumab review stop does not clear it: `ar_relay`)
    ar_review_stop: date | None
    #: drug -> the ATC code it was last sent with (it places a drug the vocabulary does not list by name)
    atc: dict[str, str] = field(default_factory=dict)
    #: drug -> its prescriptions (start, stop or None while under way), in order; a same-day re-prescription is a
    #: new one (SYS-VITD-CORR: a loading prescribed on a new level), though `active` keeps the course's start
    runs: dict[str, tuple[tuple[date, date | None], ...]] = field(default_factory=dict)
    #: days of anti-resorptive exposure in the current count, up to today
    ar_exposure_days: int = 0
    #: the day the current count reaches 2 years of exposure, while an anti-resorptive is under way
    ar_review_due: date | None = None
    #: the current count spans an interruption (shorter than r.AR_FRESH_COUNT_GAP_MONTHS)
    ar_interrupted: bool = False
    #: SYS-DENO-STOP: the start of a zoledronic acid relay under way after a denosumab review stop, while within
    #: r.DENO_RELAY_WINDOW_MONTHS of that stop (not a restart: SYS-AR-START stays stopped after review)
    ar_relay: date | None = None

    def started_on_or_after(self, drug: str, day: date) -> date | None:
        return min((on for d, on in self.starts if d == drug and on >= day), default=None)

    def identity(self, drug: str) -> DrugIdentity:
        return identify(drug, self.atc.get(drug))

    def antiresorptives(self) -> dict[str, date]:
        """The anti-resorptives under way as a treatment (a relay within its window is not: SYS-DENO-STOP)."""
        return {
            d: since
            for d, since in self.active.items()
            if d in r.ANTIRESORPTIVES and not (self.ar_relay is not None and d == "zoledronic_acid")
        }


def exposure_needed(count_start: date) -> int:
    """Days of exposure that make 2 years from `count_start` (uninterrupted, the review falls on the anniversary)."""
    return (add_months(count_start, 12 * r.REVIEW_AFTER_YEARS) - count_start).days


@dataclass
class _Exposure:
    """SYS-REVIEW-2Y and SYS-DENO-STOP bookkeeping while the drug events are replayed (`drug_history`)."""

    count_start: date | None = None
    days: int = 0  # exposure of the count's closed periods
    period_start: date | None = None  # an anti-resorptive is under way since
    last_end: date | None = None  # every anti-resorptive stopped on
    interrupted: bool = False
    review_stop: date | None = None
    review_drug: str | None = None
    relay: date | None = None

    def start(self, drug: str, on: date) -> None:
        """The first anti-resorptive under way after none."""
        relay = (
            drug == "zoledronic_acid"
            and self.review_drug == "denosumab"
            and self.review_stop is not None
            and on < add_months(self.review_stop, r.DENO_RELAY_WINDOW_MONTHS)
        )
        if self.last_end is None or on >= add_months(self.last_end, r.AR_FRESH_COUNT_GAP_MONTHS):
            self.count_start, self.days, self.interrupted = on, 0, False  # a new count
        elif on > self.last_end:
            self.interrupted = True
        self.period_start = on
        if relay:
            self.relay = on  # the review stop stands (SYS-DENO-STOP, L1249-1253)
        else:
            self.review_stop = self.review_drug = self.relay = None

    def exposure_at(self, day: date) -> int:
        return self.days + (0 if self.period_start is None else (day - self.period_start).days)

    def stop(self, drug: str, on: date, left: dict[str, date], deliberate: bool = True) -> None:
        """`drug` stopped on `on`; `left`: the anti-resorptives still under way. Not `deliberate`: the interval of
        the last administration ran out (second review): the exposure ends, but no one decided a stop at the
        review."""
        reached = self.count_start is not None and self.exposure_at(on) >= exposure_needed(self.count_start)
        reached = reached and deliberate
        if left:
            # denosumab stopped at the review with zoledronic acid started that day: the relay (L1249-1253)
            if drug == "denosumab" and reached and left == {"zoledronic_acid": on}:
                self.review_stop, self.review_drug, self.relay = on, drug, on
            return
        assert self.period_start is not None
        self.days += (on - self.period_start).days
        self.period_start, self.last_end = None, on
        if self.relay is not None:
            self.relay = None  # the relay is over; the review stop stands
        elif reached:
            self.review_stop, self.review_drug = on, drug
        else:
            self.review_stop = self.review_drug = None


def _interval_months(s: SystemicState, drug: str) -> int:
    """The dosing interval an anti-resorptive administration covers (r.DENOSUMAB_INTERVAL_MONTHS and the ZA ones):
    zoledronic acid on the schedule the plan proposes (SYS-SCHEDULE), monthly unless it is spaced."""
    if drug == "denosumab":
        return r.DENOSUMAB_INTERVAL_MONTHS
    oligo = s.oligometastatic is not None and s.oligometastatic.value == "oligometastatic"
    good = s.response is not None and s.response.value in ("complete", "good")
    spaced = r.schedule(oligo, good, drug) != "monthly"
    return r.ZA_SPACED_INTERVAL_MONTHS if spaced else r.ZA_MONTHLY_INTERVAL_MONTHS


#: the zoledronic acid intervals a replay may be taken with (SYS-SCHEDULE): the drug history is kept folded for each
ZA_INTERVALS = (r.ZA_MONTHLY_INTERVAL_MONTHS, r.ZA_SPACED_INTERVAL_MONTHS)


def _months(drug: str, za_months: int) -> int:
    """`_interval_months` with zoledronic acid's interval given (only zoledronic acid is ever spaced)."""
    return za_months if drug == "zoledronic_acid" else r.DENOSUMAB_INTERVAL_MONTHS


def _step(
    e: TreatmentEvent, drug: str, atc: str | None, action: Literal["started", "stopped"], on: date
) -> TreatmentEvent:
    """A start or stop standing for administrations (second review), with an ID derived from the event it comes
    from, so that a rebuild gives the same one."""
    return e.model_copy(
        update={
            "event_id": uuid.uuid5(e.event_id, f"administered:{action}"),
            "treatment": SystemicDrug(drug=drug, atc_code=atc, action=action, on=on),
        }
    )


class OpenCourse(BaseModel):
    """Issue 25: an anti-resorptive course known from administrations, started before a replay's cut and not ended
    by it: its last dose (the end's step comes from it) and the day its interval runs out (None: still taken)."""

    last: TreatmentEvent
    end: date | None


class DrugReplay(BaseModel):
    """Issue 25 (retention.py): `drug_history`'s replay over the drug events dated before `cut` (starts, stops, the
    anti-resorptive courses known from administrations), for zoledronic acid given at one interval; the replay goes
    on from it with the later events. What no reader can use again is left out: the prescriptions (`runs`) but the
    last of each drug (SYS-VITD-CORR reads the loading on a current level only), the starts of zoledronic acid but
    the first after a denosumab stop (SYS-DENO-STOP)."""

    cut: date
    active: dict[str, date] = Field(default_factory=dict)
    ever: dict[str, date] = Field(default_factory=dict)
    stopped: dict[str, date] = Field(default_factory=dict)
    starts: list[tuple[str, date]] = Field(default_factory=list)
    runs: dict[str, list[tuple[date, date | None]]] = Field(default_factory=dict)
    course_start: dict[str, date] = Field(default_factory=dict)
    atc: dict[str, str] = Field(default_factory=dict)
    given_only: list[str] = Field(default_factory=list)
    under_way: list[str] = Field(default_factory=list)  # in_effect_order's drugs under way at the cut
    exposure: _Exposure = Field(default_factory=lambda: _Exposure())
    open: dict[str, OpenCourse] = Field(default_factory=dict)
    #: the events folded in but still held (correction chains `corrections` names): never replayed again
    folded: list[uuid.UUID] = Field(default_factory=list)


@dataclass
class _Replay:
    """The drug replay's state while the events are applied (`drug_history`)."""

    active: dict[str, date] = field(default_factory=dict)
    ever: dict[str, date] = field(default_factory=dict)
    stopped: dict[str, date] = field(default_factory=dict)
    starts: list[tuple[str, date]] = field(default_factory=list)
    runs: dict[str, list[tuple[date, date | None]]] = field(default_factory=dict)
    course_start: dict[str, date] = field(default_factory=dict)
    atc: dict[str, str] = field(default_factory=dict)
    given_only: set[str] = field(default_factory=set)
    under_way: set[str] = field(default_factory=set)
    x: _Exposure = field(default_factory=_Exposure)

    @classmethod
    def resume(cls, cp: DrugReplay | None) -> _Replay:
        if cp is None:
            return cls()
        return cls(
            dict(cp.active),
            dict(cp.ever),
            dict(cp.stopped),
            list(cp.starts),
            {k: list(v) for k, v in cp.runs.items()},
            dict(cp.course_start),
            dict(cp.atc),
            set(cp.given_only),
            set(cp.under_way),
            dataclasses.replace(cp.exposure),
        )

    def ordered(self, events: list[TreatmentEvent], before: date | None) -> list[tuple[TreatmentEvent, SystemicDrug]]:
        """`in_effect_order` of `events` (all dated from `before` on) as if the earlier ones had come first: the drugs
        under way at `before` are so for its same-day ties (a start of each, the day before, taken out again)."""
        if not self.under_way or not events or before is None:
            out = in_effect_order(events)
        else:
            e0 = events[0]
            # the day before any event (a late one dated before the cut included)
            seeded = min(before, *(t.on for e in events if isinstance(t := e.treatment, SystemicDrug)))
            seeded -= timedelta(days=1)
            seeds = [
                e0.model_copy(
                    update={
                        "event_id": uuid.uuid5(e0.event_id, f"under-way:{d}"),
                        "treatment": SystemicDrug(drug=d, action="started", on=seeded),
                    }
                )
                for d in sorted(self.under_way)
            ]
            out = in_effect_order([*seeds, *events])[len(seeds) :]
        for _, d in out:
            (self.under_way.add if d.action == "started" else self.under_way.discard)(d.drug)
        return out

    def apply(
        self, steps: list[tuple[TreatmentEvent, SystemicDrug]], given: set[uuid.UUID], ends: set[uuid.UUID]
    ) -> None:
        """Starts and stops in effect order (see `drug_history`)."""
        active, x = self.active, self.x
        for e, d in steps:
            if d.atc_code is not None:
                self.atc[d.drug] = d.atc_code
            ar = d.drug in r.ANTIRESORPTIVES
            lapse = e.event_id in ends
            if d.action == "started":
                self.starts.append((d.drug, d.on))
                if d.drug in active:
                    if e.event_id not in given:
                        self.given_only.discard(d.drug)  # prescribed while given: the prescription now holds it
                    continue  # a start sent again: the same course
                if e.event_id in given:
                    self.given_only.add(d.drug)
                if ar and not active.keys() & r.ANTIRESORPTIVES:
                    x.start(d.drug, d.on)
                prescriptions = self.runs.setdefault(d.drug, [])
                # stopped and started again the same day (a re-prescription): the course goes on from its start
                renewed = bool(prescriptions) and prescriptions[-1][1] == d.on
                active[d.drug] = self.course_start[d.drug] if renewed else d.on
                prescriptions.append((d.on, None))
                self.ever.setdefault(d.drug, d.on)
                self.stopped.pop(d.drug, None)
            elif lapse and not (d.drug in active and d.drug in self.given_only):
                continue  # the interval of an administration never ends a prescription, nor a course stopped since
            elif d.drug in active:
                self.given_only.discard(d.drug)
                self.course_start[d.drug] = active.pop(d.drug)
                self.runs[d.drug][-1] = (self.runs[d.drug][-1][0], d.on)
                if not lapse:
                    self.stopped[d.drug] = d.on
                if ar:
                    left = {k: v for k, v in active.items() if k in r.ANTIRESORPTIVES}
                    x.stop(d.drug, d.on, left, deliberate=not lapse)
            elif d.drug not in self.ever and d.drug not in self.stopped:
                self.stopped[d.drug] = d.on  # a stop with no start known (SYS-DENO-STOP still asks for the relay)

    def checkpoint(self, cut: date, open_courses: dict[str, OpenCourse]) -> DrugReplay:
        deno = self.stopped.get("denosumab")
        relay = min((on for d, on in self.starts if d == "zoledronic_acid" and deno and on >= deno), default=None)
        return DrugReplay(
            cut=cut,
            active=self.active,
            ever=self.ever,
            stopped=self.stopped,
            starts=[] if relay is None else [("zoledronic_acid", relay)],
            runs={k: v[-1:] for k, v in self.runs.items()},
            course_start=self.course_start,
            atc=self.atc,
            given_only=sorted(self.given_only),
            under_way=sorted(self.under_way),
            exposure=dataclasses.replace(self.x),
            open=open_courses,
        )


def _courses(
    doses: list[tuple[TreatmentEvent, DrugAdministration]], months: int, open_course: OpenCourse | None
) -> list[tuple[TreatmentEvent | None, TreatmentEvent, date | None]]:
    """Administrations whose intervals meet or overlap make one course: (first dose, last dose, end or None while
    still taken); an open course (`DrugReplay.open`) goes on with the doses that meet it (its first is before)."""
    courses: list[tuple[TreatmentEvent | None, TreatmentEvent, date | None]] = []
    if open_course is not None:
        courses.append((None, open_course.last, open_course.end))
    for e, t in sorted(doses, key=lambda x: (x[1].on, x[0].recorded_at, x[0].event_id.int)):
        end = None if t.ongoing else add_months(t.on, months)
        if courses and (courses[-1][2] is None or t.on <= courses[-1][2]):
            first, _, until = courses[-1]
            courses[-1] = (first, e, None if until is None or end is None else max(until, end))
        else:
            courses.append((e, e, end))
    return courses


def _doses(
    s: SystemicState, at: r.AsOf | None, folded: frozenset[uuid.UUID], until: date | None = None
) -> dict[str, list[tuple[TreatmentEvent, DrugAdministration]]]:
    """The known anti-resorptives given (effective DrugAdministration events), by drug, not folded in the replay
    already and dated before `until`; with `at`, a future-dated one takes effect on its date (a deadline) and is left
    out."""
    given: dict[str, list[tuple[TreatmentEvent, DrugAdministration]]] = {}
    for e in treatments(s):
        t = e.treatment
        if not isinstance(t, DrugAdministration) or t.drug not in r.ANTIRESORPTIVES:
            continue
        if e.event_id in folded or (until is not None and t.on >= until):
            continue
        if at is not None and at.today_lt(t.on):
            at.after_date(t.on)
            continue
        given.setdefault(t.drug, []).append((e, t))
    return given


def administered(
    s: SystemicState, at: r.AsOf, cp: DrugReplay | None = None
) -> tuple[list[TreatmentEvent], set[uuid.UUID]]:
    """Second review (SYS-AR-START, SYS-REVIEW-2Y, SYS-DENO-STOP): a known anti-resorptive given (a DrugAdministration,
    e.g. "Xgeva 120 mg" on a date) is under way from that date for its dosing interval (`_interval_months`; still
    taken: no end). Administrations whose intervals meet or overlap make one course. Returns a start for each course
    and, once its interval ran out, an end (their IDs: the second list), for `drug_history` to apply with the
    prescriptions. A future-dated administration takes effect on its date; a course's end is a deadline. With `cp`
    (issue 25), the doses dated from its cut on, the courses open at the cut going on."""
    given = _doses(s, at, frozenset(cp.folded) if cp is not None else frozenset())
    steps: list[TreatmentEvent] = []
    ends: set[uuid.UUID] = set()
    opened = cp.open if cp is not None else {}
    for drug in sorted(given.keys() | opened.keys()):
        for first, last, end in _courses(given.get(drug, []), _interval_months(s, drug), opened.get(drug)):
            if first is not None:
                assert isinstance(first.treatment, DrugAdministration)
                steps.append(_step(first, drug, first.treatment.atc_code, "started", first.treatment.on))
            if end is None:
                continue
            if at.today_lt(end):
                at.after_date(end)
                continue
            stop = _step(last, drug, None, "stopped", end)
            steps.append(stop)
            ends.add(stop.event_id)
    return steps, ends


def fold_drugs(s: SystemicState, cut: date, za_months: int) -> DrugReplay:
    """Issue 25 (retention.py): the replay of `s.drug_replays[za_months]` carried on with the drug events dated
    before `cut` not folded yet (none of them in the future: `cut` is in the past of every decision) and the courses
    they make. `folded` is left for the caller (the events it still holds)."""
    cp = s.drug_replays.get(za_months)
    since = cp.cut if cp is not None else None
    done = frozenset(cp.folded) if cp is not None else frozenset()
    given = _doses(s, None, done, cut)
    steps: list[TreatmentEvent] = []
    ends: set[uuid.UUID] = set()
    opened: dict[str, OpenCourse] = {}
    before = cp.open if cp is not None else {}
    for drug in sorted(given.keys() | before.keys()):
        for first, last, end in _courses(given.get(drug, []), _months(drug, za_months), before.get(drug)):
            if first is not None:
                assert isinstance(first.treatment, DrugAdministration)
                steps.append(_step(first, drug, first.treatment.atc_code, "started", first.treatment.on))
            if end is None or end >= cut:
                opened[drug] = OpenCourse(last=last, end=end)
                continue
            stop = _step(last, drug, None, "stopped", end)
            steps.append(stop)
            ends.add(stop.event_id)
    ids = {e.event_id for e in steps}
    for e in treatments(s):
        t = e.treatment
        if isinstance(t, SystemicDrug) and e.event_id not in done and t.on < cut:
            steps.append(e)
    rp = _Replay.resume(cp)
    rp.apply(rp.ordered(steps, since), ids, ends)
    return rp.checkpoint(cut, opened)


#: issue 25: the drug history of a state's treatments and drug replay for a day (and time zone, and zoledronic acid
#: interval), with the deadlines it found: computed once while they are unchanged (every event of a batch). The entry
#: holds the tables, so their `id`s are not reused while it lives. (With `at.memo`, memo.py's instead.)
_HISTORIES: dict[
    tuple[int, int, int, date, str], tuple[object, object, tuple[DrugHistory, _Exposure], list[datetime]]
] = {}
_HISTORIES_MAX = 512
_HISTORIES_LOCK = threading.Lock()  # the runtime applies events in a worker thread while the API builds plans


def drug_history(s: SystemicState, at: r.AsOf) -> DrugHistory:
    """`_drug_history`, memoised on the state's treatments and drug replay (by identity: `merge` copies on write) and
    the zoledronic acid interval: with `at.memo`, for the span of `now` its comparisons hold over (memo.py), else for
    the day; the deadlines it offered are offered again. The exposure up to today is added to it (it grows daily)."""
    za = _interval_months(s, "zoledronic_acid")
    if at.memo:
        found, x = memo("drug_history", at, (s.treatments, s.drug_replays), lambda: _drug_history(s, at), (za,))
    else:
        key = (id(s.treatments), id(s.drug_replays), za, at.today, str(at.tz))
        with _HISTORIES_LOCK:
            hit = _HISTORIES.get(key)
        if hit is not None and hit[0] is s.treatments and hit[1] is s.drug_replays:
            for d in hit[3]:
                at.after(d)
            found, x = hit[2]
        else:
            mark = len(at.offered)
            found, x = _drug_history(s, at)
            with _HISTORIES_LOCK:
                if len(_HISTORIES) >= _HISTORIES_MAX:
                    del _HISTORIES[next(iter(_HISTORIES))]
                _HISTORIES[key] = (s.treatments, s.drug_replays, (found, x), at.offered[mark:])
    days = x.days if x.period_start is None else x.exposure_at(at.today)
    return found if found.ar_exposure_days == days else _with_exposure(found, days)


#: issue 25 (helper HV): the drug history with its exposure up to today, made once per history object and count of
#: days (`dataclasses.replace` at every event cost ~10 µs); the entry holds the history (a DrugHistory is frozen)
_EXPOSED: OrderedDict[tuple[int, int], tuple[DrugHistory, DrugHistory]] = OrderedDict()
_EXPOSED_MAX = 1024
_EXPOSED_LOCK = threading.Lock()


def _with_exposure(found: DrugHistory, days: int) -> DrugHistory:
    key = (id(found), days)
    with _EXPOSED_LOCK:
        hit = _EXPOSED.get(key)
    if hit is not None and hit[0] is found:
        return hit[1]
    made = dataclasses.replace(found, ar_exposure_days=days)
    with _EXPOSED_LOCK:
        _EXPOSED[key] = (found, made)
        if len(_EXPOSED) > _EXPOSED_MAX:
            _EXPOSED.popitem(last=False)
    return made


def _drug_history(s: SystemicState, at: r.AsOf) -> tuple[DrugHistory, _Exposure]:
    """Drug events dated up to today; a future-dated start or stop takes effect on its date (a deadline). Starts and
    stops are applied in `in_effect_order` (a same-day re-prescription of a drug under way keeps it under way; a
    renewal then a stop recorded in that order is a stop). Second review: an anti-resorptive given is under way for
    its dosing interval (`administered`); the interval running out ends a course known from administrations only,
    never a prescription, and is not a stop decided by a clinician (`stopped`, SYS-DENO-STOP, the review stop).
    Issue 25: the events before the cut of the retained replay (`s.drug_replays`, for the zoledronic acid interval
    in effect) are not replayed again: the replay goes on from it."""
    cp = s.drug_replays.get(_interval_months(s, "zoledronic_acid"))
    cut = cp.cut if cp is not None else None
    folded = frozenset(cp.folded) if cp is not None else frozenset()
    events, ends = administered(s, at, cp)
    given = {e.event_id for e in events}  # the starts and ends standing for administrations
    for e in treatments(s):
        if isinstance(e.treatment, SystemicDrug):
            if e.event_id in folded:
                continue  # in the replay already
            if at.today_lt(e.treatment.on):
                at.after_date(e.treatment.on)
                continue
            events.append(e)
    rp = _Replay.resume(cp)
    rp.apply(rp.ordered(events, cut), given, ends)
    x, active = rp.x, rp.active
    relay = x.relay if "zoledronic_acid" in active else None
    review_stop = x.review_stop
    if relay is not None and review_stop is not None:
        window_ends = add_months(review_stop, r.DENO_RELAY_WINDOW_MONTHS)
        if at.today_ge(window_ends):  # still under way past the relay window: a treatment again
            relay = review_stop = None
        else:
            at.after_date(window_ends)
    due = None
    if x.period_start is not None and x.count_start is not None:
        due = x.period_start + timedelta(days=exposure_needed(x.count_start) - x.days)
    return DrugHistory(
        active,
        rp.ever,
        rp.stopped,
        tuple(rp.starts),
        x.count_start,
        review_stop,
        rp.atc,
        {k: tuple(v) for k, v in rp.runs.items()},
        0,  # the exposure up to today: `drug_history`
        due,
        x.interrupted,
        relay,
    ), x


@dataclass(frozen=True)
class Unidentified:
    """A drug under way (or administered recently) that the vocabulary cannot identify (issue 18 review)."""

    key: str
    atc: str | None
    since: date
    conflict: bool

    @property
    def name_fr(self) -> str:
        return self.key.replace("_", " ")

    @property
    def missing(self) -> str:
        return f"identity of {self.name_fr} (anti-resorptive? nephrotoxic? TKI?)"


def unidentified(s: SystemicState, drugs: DrugHistory, at: r.AsOf) -> list[Unidentified]:
    """Drugs under way, or administered within r.UNIDENTIFIED_RECENT_MONTHS (or still taken), whose identity the
    vocabulary cannot establish (unlisted, or name and ATC code disagreeing): never counted silently as not an
    anti-resorptive, not nephrotoxic, not a TKI, not a cancer treatment."""
    found: dict[str, Unidentified] = {}
    for name, since in drugs.active.items():  # an unknown drug keeps the name it was sent with (canonical)
        who = drugs.identity(name)
        if not who.known:
            found[who.key] = Unidentified(who.key, drugs.atc.get(name), since, who.conflict)
    for e in treatments(s):
        t = e.treatment
        if not isinstance(t, DrugAdministration) or at.today_lt(t.on):
            continue
        who = identify(t.drug, t.atc_code)
        if who.known or who.key in found:
            continue
        until = add_months(t.on, r.UNIDENTIFIED_RECENT_MONTHS)
        if t.ongoing or at.today_lt(until):
            if not t.ongoing:
                at.after_date(until)
            found[who.key] = Unidentified(who.key, t.atc_code, t.on, who.conflict)
    return [found[k] for k in sorted(found)]


@dataclass(frozen=True)
class CorrectionToCheck:
    """An amended drug record later entered in error: what it replaced is not brought back (issue 18 review). Or
    (second review, `in_force`) the version of a drug record that still counts although an entered-in-error named one
    of its superseded versions: the hospital may have meant the whole record."""

    event: TreatmentEvent
    drugs: tuple[str, ...]  # the drug named by the amendment and by the record it replaced
    on: date
    in_force: bool = False

    @property
    def holds_start(self) -> bool:
        """An anti-resorptive, or a drug not identified, may have been given: no new start before checking."""
        return any(d in r.ANTIRESORPTIVES or not identify(d).known for d in self.drugs)

    @property
    def missing(self) -> str:
        names = " / ".join(d.replace("_", " ") for d in self.drugs)
        if self.in_force:
            return (
                f"whether {names} recorded on {self.on.isoformat()} is right (an earlier, superseded version was "
                "entered in error)"
            )
        return f"whether {names} recorded on {self.on.isoformat()} was given (its amended record was entered in error)"


def corrections(s: SystemicState) -> list[CorrectionToCheck]:
    out: list[CorrectionToCheck] = []
    to_check = _resolved(s)[1]
    if not to_check:  # the common case (helper HV): no set of every counted event's ID made for nothing
        return out
    counted = {e.event_id for e in treatments(s)}
    for e in to_check:
        t = e.treatment
        if not isinstance(t, SystemicDrug | DrugAdministration):
            continue
        if e.event_id in counted:  # still in force: an earlier version of it was entered in error
            out.append(CorrectionToCheck(e, (t.drug,), t.on, in_force=True))
            continue
        names = [t.drug]
        replaced = s.treatments.get(str(e.corrects)) if e.corrects is not None else None
        if replaced is not None and isinstance(replaced.treatment, SystemicDrug | DrugAdministration):
            names.append(replaced.treatment.drug)
        out.append(CorrectionToCheck(e, tuple(dict.fromkeys(names)), t.on))
    return out


def dental(s: SystemicState, at: r.AsOf) -> list[tuple[TreatmentEvent, DentalCare]]:
    """Dental events dated up to today (a future date is an appointment, not a fact yet)."""
    items = []
    for e in treatments(s):
        if isinstance(e.treatment, DentalCare):
            if at.today_lt(e.treatment.on):
                at.after_date(e.treatment.on)
                continue
            items.append((e, e.treatment))
    return sorted(items, key=lambda x: (x[1].on, x[0].event_id.int))


SystemicState.model_rebuild()  # DrugReplay is defined after it
