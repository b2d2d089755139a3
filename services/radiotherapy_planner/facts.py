"""The local-treatment planner's facts per patient and the views the rules read (pure).

Findings are kept per lesion with their corrections; only the effective ones count (shared/clinical/corrections.py: a
corrected finding never counts again, even if it arrives late: issue 11, finding corrections); assessments as
facts merged by clinical time; treatments, requests, scores and haemostasis labs as received. The views of the
treatments, drug uses and haemostasis results: facts_treatments.py; which findings a lesion keeps: findings_kept.py."""

from __future__ import annotations

import functools
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import InputUsed
from contracts.hospital import ClinicalAssessment, Comparator, ImagingFinding, TreatmentEvent
from contracts.local import LocalTreatmentRequest
from services.radiotherapy_planner import stored
from services.radiotherapy_planner.items_base import In
from shared.clinical.corrections import effective, findings_by_lesion, linked_lesions
from shared.clinical.facts import Fact, newest
from shared.clinical.newest import instant

#: The signs the rules read as "the newest finding reporting it" (Lesion.newest): RT-MSCC (L1397-1402) cord
#: compression and epiduritis; RT-SBRT-CI (L1629-1636) canal narrowing, tumour-cord distance; RT-FRACT-PALL,
#: RT-FRACTURE-RISK, IR-CEMENT (L2559-2643) fracture, lesion type, body involvement, posterior wall, joint opening.
SIGNS: Final = (
    "cord_compression",
    "epidural_extension",
    "pathological_fracture",
    "canal_narrowing_pct",
    "tumour_cord_distance_mm",
    "vertebral_body_involvement_fraction",
    "posterior_wall_involvement",
    "joint_opening",
    "lesion_type",
)
#: Haemostasis results kept per analyte (the newest; older ones never decide anything).
LABS_PER_ANALYTE: Final = 3


class LabFact(BaseModel):
    value: float | None
    withdrawn: bool
    occurred_at: datetime
    recorded_at: datetime
    event_id: uuid.UUID
    #: issue 12: a censored result ("< 40 G/L") is a bound, never an exact value
    comparator: Comparator | None = None

    def used(self, name: str, unit: str) -> In:
        """The result as an input a rule used, with its provenance (a censored value keeps its comparator)."""
        return In(name, self.value, unit, self.occurred_at, self.event_id, self.comparator)


class ScoreFact(BaseModel):
    model_config = ConfigDict(frozen=True)  # replaced, never changed: its stored JSON is reused (stored.py)

    total: int | None
    band: str | None
    complete: bool
    floor: int | None  # sum of the known items (a lower bound when incomplete)
    missing: list[str] = Field(default_factory=list)
    occurred_at: datetime
    recorded_at: datetime
    event_id: uuid.UUID

    def used(self, name: str) -> InputUsed:
        value = self.total if self.total is not None else (f">= {self.floor} (incomplet)" if self.floor else None)
        return InputUsed(
            name=name, value=value, unit=self.band, occurred_at=self.occurred_at, source_event_id=self.event_id
        )


class SurgicalOpinionFact(BaseModel):
    model_config = ConfigDict(frozen=True)  # replaced, never changed: its stored JSON is reused (stored.py)

    operable: bool
    on: date
    lesion_id: str | None
    event_id: uuid.UUID
    occurred_at: datetime
    recorded_at: datetime | None = None  # of its assessment (issue 25: the order of a re-fold; older states: None)

    def order(self) -> tuple[date, datetime, datetime, int]:
        """The order a re-fold keeps a lesion's opinion by: the later opinion date, then the later assessment
        (clinical time, recorded time, event ID: the order `effective()` folds assessments in)."""
        return (self.on, self.occurred_at, self.recorded_at or self.occurred_at, self.event_id.int)


class FindingFact(BaseModel):
    """What the local-treatment rules read from one ImagingFinding (kept compact: the state is stored per event)."""

    model_config = ConfigDict(frozen=True)  # never changed once made: its stored JSON is reused (stored.py)

    event_id: uuid.UUID
    lesion_id: str
    occurred_at: datetime
    recorded_at: datetime
    skeletal_site: str
    vertebral_level: str | None = None
    lesion_type: str | None = None
    epidural_extension: bool | None = None
    cord_compression: bool | None = None
    pathological_fracture: bool | None = None
    canal_narrowing_pct: float | None = None
    tumour_cord_distance_mm: float | None = None
    vertebral_body_involvement_fraction: float | None = None
    posterior_wall_involvement: str | None = None
    joint_opening: bool | None = None
    status: str | None = None  # lesion status: suspected / confirmed / resolved
    record_status: str = "final"  # final / amended / entered-in-error (a correction of an earlier finding)
    corrects: uuid.UUID | None = None

    @classmethod
    def of(cls, f: ImagingFinding) -> FindingFact:
        return cls.model_validate(f.model_dump(include=set(cls.model_fields)))


class LocalState(BaseModel):
    findings: dict[str, FindingFact] = Field(default_factory=dict)  # by event_id
    assessed: dict[str, Fact[bool | float | str]] = Field(default_factory=dict)  # name -> newest fact
    opinions: dict[str, SurgicalOpinionFact] = Field(default_factory=dict)  # lesion_id or "*" -> newest
    #: every clinical assessment, corrections included: `assessed` and `opinions` are folded again from the
    #: effective ones when a correction is known (shared/clinical/corrections.py)
    assessments: dict[str, ClinicalAssessment] = Field(default_factory=dict)  # by event_id
    treatments: dict[str, TreatmentEvent] = Field(default_factory=dict)  # by event_id
    requests: dict[str, LocalTreatmentRequest] = Field(default_factory=dict)  # by request_id
    scores: dict[str, ScoreFact] = Field(default_factory=dict)  # "mirels:<lesion>", "sins:<lesion>", "oligo"
    labs: dict[str, dict[str, LabFact]] = Field(default_factory=dict)  # analyte -> result_id -> fact
    #: what was last published: item key -> "rule_id|recommendation ID|digest"; plan version, digest, ID
    published: dict[str, str] = Field(default_factory=dict)
    plan_version: int = 0
    plan_digest: str = ""
    plan_event: Fact[str] | None = None
    #: the next moment a decision may change with no new event (shared/runtime/timers.py: a clock tick then)
    next_due: datetime | None = None
    #: the time the plan was last decided for: it never goes back (an event recorded earlier but delivered later
    #: does not make a compression "dated in the future"; issue 18 review)
    decided_at: datetime | None = None
    # ---- retention (issue 25, services/radiotherapy_planner/retention.py); defaults: states stored before it load
    #: the newest `recorded_at` applied: the retention horizon counts back from it (never from the wall clock)
    newest_at: datetime | None = None
    #: the newest fact per name, and opinion per lesion, of the assessments folded away: a re-fold starts from them
    assessed_base: dict[str, Fact[bool | float | str]] = Field(default_factory=dict)
    opinions_base: dict[str, SurgicalOpinionFact] = Field(default_factory=dict)
    #: cancelled requests folded away: request_id -> (occurred_at, recorded_at) of the version that closed them
    closed_requests: dict[str, tuple[datetime, datetime]] = Field(default_factory=dict)
    #: per kind of record, how many were past the cut after its last fold (retention.py: no scan again until a record
    #: crosses the cut, arrives late or is corrected)
    fold_marks: dict[str, str] = Field(default_factory=dict)
    #: IDs of the records of correction chains folded away (corrected, withdrawn, or the version in force whose
    #: facts live in the bases): a second delivery of one is not merged again (it would count again)
    withdrawn: list[str] = Field(default_factory=list)
    #: how many records of each kind were folded away (audit)
    folded: dict[str, int] = Field(default_factory=dict)

    def model_dump_json(self, **kwargs: Any) -> str:
        """The stored JSON (what the runtime writes): the frozen records' JSON is reused (stored.py); with
        arguments, pydantic's."""
        if kwargs:
            return super().model_dump_json(**kwargs)
        return stored.dump(self)


ASSESSED: Final = (
    "life_expectancy_months",
    "neurological_deficit",
    "frail",
    "hard_to_move",
    "mri_contraindicated",
    "opioid_complications",
    "diffuse_pain",
    "radiculopathy",
    "active_infection",
    "cement_allergy",
    "severe_coagulation_disorder",
)


def fold_assessment(s: LocalState, e: ClinicalAssessment, refold: bool = False) -> None:
    """Fold one assessment into the newest facts (per name, per lesion for lesion pain) and surgical opinions, in
    place. `refold`: opinions kept by `SurgicalOpinionFact.order` (a re-fold from the bases, issue 25); else the
    later opinion date wins, a tie going to the later delivery."""
    for name in ASSESSED:
        v = getattr(e, name)
        if v is not None:
            s.assessed[name] = newest(s.assessed.get(name), Fact[bool | float | str].of(e, v))
    if e.pain is not None:
        for name, v in (
            ("pain_resistant_to_analgesics", e.pain.resistant_to_analgesics),
            ("pain_intensity", e.pain.intensity),
            ("pain_character", e.pain.character),
        ):
            if v is not None:
                s.assessed[name] = newest(s.assessed.get(name), Fact[bool | float | str].of(e, v))
    for lp in e.lesion_pain:  # the pain of one lesion wins over the patient's overall pain for that lesion
        for name, v in (
            ("pain_resistant_to_analgesics", lp.resistant_to_analgesics),
            ("pain_intensity", lp.intensity),
            ("pain_character", lp.character),
        ):
            if v is not None:
                key = f"{name}@{lp.lesion_id}"
                s.assessed[key] = newest(s.assessed.get(key), Fact[bool | float | str].of(e, v))
    o = e.surgical_opinion
    if o is not None:
        key = o.lesion_id or "*"
        prev_op = s.opinions.get(key)
        new = SurgicalOpinionFact(
            operable=o.operable,
            on=o.on,
            lesion_id=o.lesion_id,
            event_id=e.event_id,
            occurred_at=e.occurred_at,
            recorded_at=e.recorded_at,
        )
        if prev_op is None or (
            new.order() >= prev_op.order() if refold else (o.on, e.occurred_at) >= (prev_op.on, prev_op.occurred_at)
        ):
            s.opinions[key] = new


def refold_assessments(s: LocalState) -> None:
    """`assessed` and `opinions` folded again (in place) from the effective assessments, over what the assessments
    folded away said (`assessed_base`, `opinions_base`): a corrected assessment no longer counts (shared/corrections).
    In a re-fold every merge is by a total order, so the result depends only on the records."""
    # a folded assessment a correction names (past the retention horizon) no longer speaks: unknown, never its value
    named = {a.corrects for a in s.assessments.values() if a.corrects is not None}
    s.assessed = {k: f for k, f in s.assessed_base.items() if f.event_id not in named}
    s.opinions = {k: o for k, o in s.opinions_base.items() if o.event_id not in named}
    for x in effective(s.assessments.values(), lambda _: "patient"):
        fold_assessment(s, x, refold=True)


def _order(f: FindingFact) -> tuple[datetime, datetime, str]:
    return f.occurred_at, f.recorded_at, str(f.event_id)


@dataclass(frozen=True)
class Lesion:
    """A lesion's current picture: the newest finding, and for each signal the newest finding that reports it."""

    lesion_id: str
    latest: FindingFact
    history: tuple[FindingFact, ...]  # oldest first

    @functools.cached_property
    def newest_at(self) -> int:
        """Its findings' newest clinical time, as an instant (as_of.ahead: a lesion none of whose findings is dated
        ahead is not scanned; once per lesion object, as `ids`: issue 25)."""
        return max((instant(f.occurred_at) for f in self.history), default=-(1 << 62))

    @functools.cached_property
    def ids(self) -> tuple[int, ...]:
        """Its findings' event IDs, oldest first (the plan's families are memoised on them; lesions() objects are
        shared by the states of one findings table, so once per table: issue 25)."""
        return tuple(f.event_id.int for f in self.history)

    def newest(self, attr: str) -> FindingFact | None:
        for f in reversed(self.history):
            if getattr(f, attr) is not None:
                return f
        return None

    def value(self, attr: str) -> object:
        f = self.newest(attr)
        return None if f is None else getattr(f, attr)

    def used(self, attr: str, unit: str | None = None) -> InputUsed:
        f = self.newest(attr)
        v = None if f is None else getattr(f, attr)
        return InputUsed(
            name=attr,
            value=v if isinstance(v, str | int | float | bool) or v is None else str(v),
            unit=unit,
            occurred_at=None if f is None else f.occurred_at,
            source_event_id=None if f is None else f.event_id,
        )

    @property
    def level(self) -> str | None:
        return self.latest.vertebral_level

    @property
    def spine(self) -> bool:
        return self.latest.skeletal_site == "spine"

    def compression_last_seen(self) -> FindingFact | None:
        """The newest finding of the current run of "cord compression: yes": a compression re-confirmed on imaging is
        current from it, not from its first sighting (issue 18 review)."""
        if self.compression_onset() is None:
            return None
        return next(f for f in reversed(self.history) if f.cord_compression)

    def compression_onset(self) -> FindingFact | None:
        return self._onset

    @functools.cached_property
    def _onset(self) -> FindingFact | None:
        """The first finding of the current run of 'cord compression: yes' (None when the newest finding that
        reports it says no: resolved, issue 9.11)."""
        if self.latest.status == "resolved":  # the lesion is no longer seen: nothing it caused stands (9.11)
            return None
        reporting = [f for f in self.history if f.cord_compression is not None]
        if not reporting or not reporting[-1].cord_compression:
            return None
        onset = reporting[-1]
        for f in reversed(reporting):
            if not f.cord_compression:
                break
            onset = f
        return onset


#: lesions() by findings table: an event that brings no finding keeps the previous state's table (fold.merge copies
#: only the table it changes), so its lesions are those already folded. Held strongly (IDs not reused meanwhile).
LESIONS_CACHED: Final = 2048
_LESIONS: OrderedDict[int, tuple[dict[str, FindingFact], int, dict[str, Lesion]]] = OrderedDict()
_LESIONS_LOCK: Final = threading.Lock()


def lesions(s: LocalState, previous: LocalState | None = None) -> dict[str, Lesion]:
    """Each lesion's effective findings (corrected and entered-in-error ones left out), oldest first. The result is
    shared: not to be changed. `previous`: the state `s` was made from (domain.apply_event); when its lesions are
    known, only the lesions whose findings changed, with those corrections link to them, are folded again (issue 25:
    an imaging event costs its lesion's findings, not the history's)."""
    table = s.findings
    found = _cached(table)
    if found is not None:
        return found
    before = None if previous is None else _cached(previous.findings)
    if previous is None or before is None:
        found = _lesions_of(findings_by_lesion(table))
    else:
        found = _lesions_since(before, previous.findings, table)
    with _LESIONS_LOCK:
        _LESIONS[id(table)] = (table, len(table), found)
        if len(_LESIONS) > LESIONS_CACHED:
            _LESIONS.popitem(last=False)
    return found


def _cached(table: dict[str, FindingFact]) -> dict[str, Lesion] | None:
    with _LESIONS_LOCK:  # the runtime's worker thread decides, the HTTP API reads on the loop
        hit = _LESIONS.get(id(table))
        if hit is not None and hit[0] is table and hit[1] == len(table):
            _LESIONS.move_to_end(id(table))
            return hit[2]
    return None


def _lesions_of(by: dict[str, list[FindingFact]]) -> dict[str, Lesion]:
    return {lid: Lesion(lid, fs[-1], tuple(fs)) for lid, fs in sorted(by.items())}


def _lesions_since(
    before: dict[str, Lesion], old: dict[str, FindingFact], new: dict[str, FindingFact]
) -> dict[str, Lesion]:
    """`lesions` of the table `new` from those of `old`: the lesions of the records added or removed, and every
    lesion a correction links to them (before or after: shared/corrections.linked_lesions), folded again from their
    records in `new` (corrections resolve within such a set, so the others are as they were)."""
    # a record replaced under its key counts with both versions: a same-ID record that names another lesion leaves
    # its old lesion too (review RZG, HAZ-25-LOCAL-04)
    changed = [f for k, f in new.items() if old.get(k) is not f] + [f for k, f in old.items() if new.get(k) is not f]
    if not changed:
        return before
    concerned = {f.lesion_id for f in changed}
    links = [linked_lesions(old), linked_lesions(new)]
    while more := {lid for ln in links for lid, name in ln.items() if name in {ln.get(x) for x in concerned}}:
        if more <= concerned:
            break
        concerned |= more
    refolded = findings_by_lesion({k: f for k, f in new.items() if f.lesion_id in concerned})
    kept = {lid: lesion for lid, lesion in before.items() if lid not in concerned}
    return dict(sorted({**kept, **_lesions_of(refolded)}.items()))
