"""What every decision family of scoring shares: the decisions being built, the context they are built in (the
facts, the time they are made for, the policy), and how a score or a lab trigger is built. Pure."""

from __future__ import annotations

import bisect
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Final, TypeVar

from contracts.base import InputUsed, Message, derived_id
from contracts.clinical import Recommendation, Score, ScoreComponent, SkeletalEvent
from contracts.hospital import ImagingFinding, RadiotherapyCourse, Surgery, SystemicDrug, TreatmentEvent
from contracts.rules import RULESET_VERSION, cite
from services.scoring import rules as r
from services.scoring.state import LabValue, ScoringState, same_part
from shared.clinical.facts import Fact
from shared.clinical.newest import instant
from shared.clinical.recommend import Lazy
from shared.clinical.treatments import in_effect_order

SERVICE = r.SERVICE
F = TypeVar("F", bound=Fact[Any])


@dataclass
class Decisions:
    recommendations: dict[str, Lazy[Recommendation]] = field(default_factory=dict)
    scores: dict[str, Lazy[Score]] = field(default_factory=dict)
    sres: dict[str, SkeletalEvent] = field(default_factory=dict)
    #: published slots to leave as they are although no longer current (a crisis episode that ended)
    keep: set[str] = field(default_factory=set)
    #: the fixation surgeries counted with a fracture seen on imaging (one fracture, one SRE: sre.decide_sres)
    fixations: set[str] = field(default_factory=set)
    #: decided for this reference time only (a continuous quantity is said: a Mirels of 9 or more names the life
    #: expectancy remaining): FamilyMemo never remembers them
    volatile: bool = False

    def add(self, other: Decisions) -> None:
        """`other`'s decisions added to these (in its order)."""
        self.recommendations.update(other.recommendations)
        self.scores.update(other.scores)
        self.sres.update(other.sres)
        self.keep |= other.keep
        self.fixations |= other.fixations


@dataclass
class _Family:
    parts: tuple[object, ...]  # held: the objects keyed by identity are never changed in place once in a state
    same: Hashable  # what else the decisions read, compared by value
    #: every moment the decisions compare the reference time with, sorted, as instants (`instant`)
    moments: list[int]
    bands: OrderedDict[tuple[int, int] | None, Decisions] = field(default_factory=OrderedDict)


class FamilyMemo:
    """Issue 25: a decision family's decisions, memoised on the parts of the state it reads (by object: a transition
    copies only the table it changes, state.merge) and on where the reference time falls among the moments it
    compares that time with (a fact's time plus or minus a window): two reference times that compare the same with
    every moment give the same decisions, and these moments are the clock's deadlines (clock.py), so a family is
    decided again when a part it reads changes or a deadline passes. What the family reads must be exactly `parts`
    (by object) and `same` (by value), and it must read the reference time only through comparisons with `moments`,
    or else mark its decisions `volatile` (Decisions), which are then decided again every time.

    One entry per `slot` (a patient's family, or a lesion's): a new part replaces the entry, so what is held follows
    the states of the patients seen last (least recently used out), not the number of events."""

    def __init__(self, size: int = 4096, bands: int = 4) -> None:
        self.size = size
        self.bands = bands
        self._entries: OrderedDict[Hashable, _Family] = OrderedDict()
        self._lock = threading.Lock()  # the runtime applies events in its worker thread

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def decide(
        self,
        slot: Hashable,
        parts: tuple[object, ...],
        same: Hashable,
        moments: Callable[[], Iterable[datetime]],
        at: int | None,
        build: Callable[[Decisions], None],
        into: Decisions,
        memo: bool = True,
    ) -> Decisions:
        """Add the family's decisions to `into`; returns them (not to be changed: they are memoised). `at`: the
        reference time as an instant (Context.at). `memo` False: decided afresh, nothing remembered."""
        if not memo:
            fresh = Decisions()
            build(fresh)
            into.add(fresh)
            return fresh
        with self._lock:  # the common case, at once: the same parts by object, a band already decided
            family = self._entries.get(slot)
            if family is not None and family.same == same and _identical(family.parts, parts):
                self._entries.move_to_end(slot)
                found = family.bands.get(_band(family.moments, at))
                if found is not None:
                    into.add(found)
                    return found
            held = None if family is None or family.same != same else family.parts
        # issue 25: by object, else by content (state.same_part: a state parsed again), outside the lock (a part's
        # JSON may be made); a hit by content holds the new objects from then on
        if held is None or not all(same_part(a, b) for a, b in zip(held, parts, strict=True)):
            family = None
        elif not _identical(held, parts):
            assert family is not None
            family.parts = parts
        if family is not None:
            with self._lock:
                if self._entries.get(slot) is family:
                    self._entries.move_to_end(slot)
        if family is None:
            family = _Family(parts, same, sorted(instant(m) for m in moments()))
            with self._lock:
                self._entries[slot] = family
                self._entries.move_to_end(slot)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        band = _band(family.moments, at)
        with self._lock:
            found = family.bands.get(band)
        if found is None:
            found = Decisions()
            build(found)
            if not found.volatile:
                with self._lock:
                    family.bands[band] = found
                    while len(family.bands) > self.bands:
                        family.bands.popitem(last=False)
        into.add(found)
        return found


def _identical(held: tuple[object, ...], parts: tuple[object, ...]) -> bool:
    """The same parts, by object."""
    if len(held) != len(parts):
        return False
    return all(a is b for a, b in zip(held, parts, strict=True))


def _band(moments: list[int], at: int | None) -> tuple[int, int] | None:
    """Where the reference time (`instant`) falls among the moments (two times in the same band compare the same with
    each)."""
    if at is None:
        return None
    return bisect.bisect_left(moments, at), bisect.bisect_right(moments, at)


def around(at: datetime, policy: r.Policy, *valid: timedelta) -> tuple[datetime, ...]:
    """The moments a fact dated `at` is compared with the reference time: it stops being in the future (beyond the
    clock-skew tolerance, r.is_future), and it leaves each window `valid` (Context.usable)."""
    return (at - policy.future_tolerance, *(at + v for v in valid))


EFFECTIVE_SIZE: Final = 4096
Effective = tuple[list[TreatmentEvent], list[tuple[TreatmentEvent, str]]]
#: per patient: its treatments table (the object), the treatments that count and the local ones among them (one entry
#: a patient)
_EFFECTIVE: OrderedDict[str, tuple[dict[str, TreatmentEvent], int, Effective]] = OrderedDict()
_LOCK: Final = threading.Lock()  # the runtime applies events in its worker thread


def _with_local(treatments: list[TreatmentEvent]) -> Effective:
    """The treatments that count, and those of them with a procedure (surgery) or an intent (radiotherapy), with it."""
    local: list[tuple[TreatmentEvent, str]] = []
    for e in treatments:
        tr = e.treatment
        what: str | None = tr.procedure if isinstance(tr, Surgery) else None
        if isinstance(tr, RadiotherapyCourse):
            what = tr.intent
        if what is not None:
            local.append((e, what))
    return treatments, local


#: issue 25: per patient, the systemic-drug records that count (held, by object) and their steps in effect order (one
#: entry a patient)
_DRUG_STEPS: OrderedDict[str, tuple[tuple[TreatmentEvent, ...], list[tuple[TreatmentEvent, SystemicDrug]]]] = (
    OrderedDict()
)


def _keep(table: OrderedDict[str, Any], patient_id: str, entry: Any) -> None:
    """`entry` kept as the patient's (one entry a patient, the least recently used out past EFFECTIVE_SIZE)."""
    with _LOCK:
        table[patient_id] = entry
        table.move_to_end(patient_id)
        while len(table) > EFFECTIVE_SIZE:
            table.popitem(last=False)


def clear() -> None:
    """Forget the treatments that count by table and the drug steps by record (a cold process)."""
    with _LOCK:
        _EFFECTIVE.clear()
        _DRUG_STEPS.clear()


@dataclass(frozen=True)
class Context:
    """The facts of one patient, the time the decisions are made for, and the policy."""

    s: ScoringState
    patient_id: str
    now: datetime | None  # None: the newest recorded time among the facts (tests, deterministic replays)
    policy: r.Policy = r.DEFAULT_POLICY
    #: issue 25: remember what is decided (FamilyMemo) and derived per patient; off for the views B and C of a
    #: future-dated fact (domain.decide_now), decided afresh
    memo: bool = True

    @cached_property
    def treatments(self) -> list[TreatmentEvent]:
        """The treatment events that count (corrections applied, issue 18.7)."""
        return self._effective[0]

    @cached_property
    def local_treatments(self) -> list[tuple[TreatmentEvent, str]]:
        """The treatments that count with a procedure (surgery) or an intent (radiotherapy), with it (CLASS-SRE)."""
        return self._effective[1]

    @cached_property
    def _effective(self) -> tuple[list[TreatmentEvent], list[tuple[TreatmentEvent, str]]]:
        """`treatments` and `local_treatments`, once per treatments table (issue 25: a transition copies only the table
        it changes, so an event that adds no treatment finds them made)."""
        table = self.s.treatments
        if not self.memo:
            return _with_local(self.s.effective_treatments())
        with _LOCK:
            hit = _EFFECTIVE.get(self.patient_id)
        if hit is not None and hit[1] == len(table) and same_part(hit[0], table):  # by object, else by content
            return hit[2]
        found = _with_local(self.s.effective_treatments())
        _keep(_EFFECTIVE, self.patient_id, (table, len(table), found))
        return found

    @cached_property
    def reference(self) -> datetime | None:
        return self.now if self.now is not None else self.s.as_of()

    @cached_property
    def at(self) -> int | None:
        """The reference time as an instant (`instant`), made once: every FamilyMemo searches its bands with it."""
        ref = self.reference
        return None if ref is None else instant(ref)

    @cached_property
    def drug_steps(self) -> list[tuple[TreatmentEvent, SystemicDrug]]:
        """The drug starts and stops that count, in the order they take effect (IMG-FLARE, issue 18). Issue 25: once
        per patient while its systemic-drug records that count are the same objects (records are frozen), so the
        list is the same object too (patient.decide_flare's memo reads it by object)."""
        if not self.memo:
            return in_effect_order(self.treatments)
        drugs = tuple(e for e in self.treatments if isinstance(e.treatment, SystemicDrug))
        with _LOCK:
            hit = _DRUG_STEPS.get(self.patient_id)
            if hit is not None and _identical(hit[0], drugs):
                _DRUG_STEPS.move_to_end(self.patient_id)
                return hit[1]
        found = in_effect_order(drugs)
        _keep(_DRUG_STEPS, self.patient_id, (drugs, found))  # the records held: compared by object
        return found

    def future(self, occurred_at: datetime) -> bool:
        ref = self.reference
        return ref is not None and r.is_future(occurred_at, ref, self.policy)

    def usable(self, fact: F | None, valid: timedelta | None = None) -> F | None:
        """The fact, unless it is dated in the future (beyond the clock-skew tolerance) or, given a validity, older
        than it: such a fact does not describe the patient now, and the decision then names it as missing."""
        if fact is None or self.future(fact.occurred_at):
            return None
        ref = self.reference
        if valid is not None and ref is not None and ref - fact.occurred_at > valid:
            return None
        return fact


Component = tuple[str, str | float | bool | None, int | None, uuid.UUID | None]  # name, value, points, source


def score(
    kind: str,
    subject: str,
    trigger: Message,
    components: list[Component],
    total: int | None,
    complete: bool,
    band: str | None,
    missing: list[str],
    rule_ids: list[str],
    text: str | Callable[[], str],
    inputs: list[InputUsed] | Callable[[], list[InputUsed]],
    also: Sequence[Fact[Any] | None] = (),
) -> Lazy[Score]:
    """A score (its ID now, the message when needed); its times are the newest of all its inputs, so a
    re-scored version is never older. `text` and `inputs` may be made only when the message is (issue 25: the ID
    does not read them)."""
    signature = (kind, subject, total, band, tuple(c[:3] for c in components), tuple(missing))
    event_id = derived_id("score", trigger.patient_id, *signature)

    def build() -> Score:
        facts = [f for f in also if f is not None]
        return Score(
            event_id=event_id,
            patient_id=trigger.patient_id,
            occurred_at=max([trigger.occurred_at] + [f.occurred_at for f in facts]),
            recorded_at=max([trigger.recorded_at] + [f.recorded_at for f in facts]),
            source=SERVICE,
            score=kind,
            subject=subject,
            total=total,
            complete=complete,
            band=band,
            components=[ScoreComponent(name=n, value=v, points=p, source_event_id=src) for n, v, p, src in components],
            missing=missing,
            rule_ids=rule_ids,
            ruleset_version=RULESET_VERSION,
            text_fr=text if isinstance(text, str) else text(),
            citation=cite(rule_ids[0]),
            inputs=inputs if isinstance(inputs, list) else inputs(),
        )

    return Lazy(event_id, build)


def components(items: tuple[r.Item, ...], sources: dict[str, uuid.UUID | None]) -> list[Component]:
    return [(i.name, i.value, i.points, sources.get(i.name)) for i in items]


def finding_inputs(f: ImagingFinding) -> list[InputUsed]:
    return [
        InputUsed(
            name="imaging_finding",
            value=f"{f.lesion_id} ({f.modality})",
            occurred_at=f.occurred_at,
            source_event_id=f.event_id,
        )
    ]


class _LabTrigger(Message):
    """A message-shaped handle on a lab fact: the times and ID of what it triggers. Never published."""

    schema_id = "osteocds.internal.lab-trigger/0"


def lab_message(v: LabValue, patient_id: str) -> Message:
    return _LabTrigger(
        event_id=v.event_id, patient_id=patient_id, occurred_at=v.occurred_at, recorded_at=v.recorded_at, source=SERVICE
    )
