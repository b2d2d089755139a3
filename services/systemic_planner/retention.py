"""Issue 25: what the systemic planner keeps of a patient's history (`retain`), applied at the end of every
transition so that the stored aggregate is always the retained one. Pure and deterministic: it reads only the
state, never the wall clock (its clock is `newest_recorded_at`, the newest `recorded_at` merged; what is "dated after"
it is judged against `ahead_clock`, that clock or the last decision's `now` when earlier), so a rebuild gives the same
state, but where a producer's clock ran ahead (the rebuild decides at its own, later clock: it may fold what is
current by then); and retain(retain(s)) == retain(s).

What every rule reads stays (README, "Retention: systemic planner", with the guideline lines):
- lab results (per analyte): the newest RESULTS_KEPT live results (the newest one is what every reader takes; the
  others are what stands if the newest ones are withdrawn, LAB-CORRECTION), the newest two interpretable serum CTX
  (LAB-CTX, SYS-REVIEW-2Y: a rise), every result dated after the state's clock (it may still be in the future), the
  withdrawn results within that span (a late copy of one is not brought back), and for each day a course of
  zoledronic acid may have started, the clearance before it (SYS-ZA-DOSE: the dose follows the initial clearance);
- imaging findings (per lesion) and clinical assessments: the newest RECORDS_KEPT recorded, and the newest
  RECORDS_KEPT not entered-in-error (what an amendment naming none replaces: HAZ-25-SYS-04), with their correction
  chains; the others are folded into `finding_base` / `assessment_base` (first seen, every modality, the newest
  status: IMG-ISOLATED; the newest life expectancies and response: SYS-AR-START), which the fold starts from when a
  correction arrives;
- treatment events: every drug start and stop, every anti-resorptive administration, every dental event and every
  correction chain of them (the drug history is replayed from them: SYS-REVIEW-2Y exposure, SYS-DENO-STOP,
  SYS-AR-PREREQ); administrations of drugs no rule reads, only the newest ADMINISTRATIONS_KEPT; of an unidentified
  drug, those still within r.UNIDENTIFIED_RECENT_MONTHS (or still taken); radiotherapy, surgery and metabolic
  radiotherapy records, none (the planner reads none of them);
- care events: each pathway item's newest step (QUAL-PATHWAY) and the newest bone biopsy (MOL-BIOPSY), with every
  one dated after the state's clock;
- SREs, lesion folds, the oligometastatic status, life expectancies (already bounded) and what was published: all.

The exactness assumption (hazard log HAZ-25-SYS-02): a correction, a withdrawal or a late record names or follows one
of the records kept (the newest RESULTS_KEPT / RECORDS_KEPT of its kind); decisions are taken at a `now` no earlier
than `ahead_clock` (the state's clock, or the last decision's `now` when earlier: a decision at an earlier `now`
than the last one, from a replica whose clock is behind, is outside it: review R33-AHEAD 1). Under it, every output
is the same as with the whole history (tests/unit/test_issue25_systemic_retention.py)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from contracts.care import BoneBiopsy, CareEvent, PathwayStep
from contracts.hospital import DentalCare, DrugAdministration, SystemicDrug, TreatmentEvent
from services.systemic_planner import rules as r
from services.systemic_planner.inputs import (
    LAB_TABLES,
    LIFE_EXPECTANCY_KEPT,
    ZA_INTERVALS,
    AssessmentFold,
    DrugReplay,
    LabFact,
    LesionFacts,
    SystemicState,
    _merge_finding,
    _resolved,
    fold_drugs,
    treatments,
)
from services.systemic_planner.records import AssessmentRecord, FindingRecord
from shared.clinical.corrections import Correctable, effective
from shared.clinical.dates import add_months
from shared.clinical.drugs import identify
from shared.clinical.facts import newest

#: per analyte, the newest live results kept: the newest is the one every reader takes (renal function SYS-ZA-DOSE,
#: vitamin D SYS-VITD-CORR, corrected calcium LAB-CA-CRISIS, CTX SYS-REVIEW-2Y); the next ones stand if the newest are
#: withdrawn (LAB-CORRECTION). Also the newest two interpretable CTX (a rise: SYS-REVIEW-2Y L1242-1243).
RESULTS_KEPT = 4
#: per lesion (findings) and per patient (assessments): the newest recorded records kept, with their correction chains
#: (an amendment without `corrects` replaces its group's newest earlier record: shared/clinical/corrections.py)
RECORDS_KEPT = 2
#: review R32-SYS: per lesion (findings) and for the patient (assessments), the records dated after the state's clock
#: kept unfolded besides those (`_ahead_of`): a producer's clock ahead sends a few, not a flood
AHEAD_KEPT = 8
#: administrations of identified drugs that no rule reads (only a correction naming one reads it)
ADMINISTRATIONS_KEPT = 8
#: issue 25: the drug events (starts, stops, anti-resorptive administrations) dated more than this before the state's
#: clock are folded into the drug replay (`SystemicState.drug_replays`) and dropped. The fold is exact (the replay
#: goes on from it as from the events: SYS-REVIEW-2Y's exposure count and review stop, SYS-DENO-STOP's relay, drugs
#: under way); the horizon is the late-record one: a drug record arrives, or is corrected, within 120 days of the
#: newest record (a dose recorded with the radiotherapy course it preceded, weeks later; a course recorded after
#: its last fraction). A later one is still applied, after the folded history (HAZ-25-SYS-02).
DRUG_HORIZON = timedelta(days=120)
#: a history of drug events being entered (records dated long ago, recorded now) is folded only once all of them
#: were recorded this long ago, so that they are folded in clinical order
DRUG_SETTLED = timedelta(days=30)
#: dental events of each kind kept (the newest assessment, with an orthopantomogram, extraction, jaw-bone exposure)
DENTAL_KEPT = 2
#: the treatment kinds the planner reads (drug history, anti-resorptive administrations, SYS-AR-PREREQ / SYS-ONJ)
READ_KINDS = frozenset({"systemic_drug", "drug_administration", "dental"})
#: the widest offsets from UTC (-12 h to +14 h): a calendar day in any hospital time zone lies within these bounds
TZ_MARGIN = timedelta(hours=14)


L = TypeVar("L", bound=Correctable)  # what a correction chain reads (shared/clinical/corrections.py)


class _Settled:
    """Tables known to be retained already, by identity (a table is never changed in place: `merge` copies on
    write), so that a table no event changed is not examined again at each event. An entry holds its table, so the
    table's `id` is not reused while the entry lives."""

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self.entries: dict[tuple[int, Hashable], object] = {}

    def __contains__(self, key: tuple[object, Hashable]) -> bool:
        table, extra = key
        return self.entries.get((id(table), extra)) is table

    def add(self, table: object, extra: Hashable = None) -> None:
        if len(self.entries) >= self.size:
            del self.entries[next(iter(self.entries))]
        self.entries[(id(table), extra)] = table


_SETTLED = _Settled()


def _recorded(x: Correctable) -> tuple[datetime, int]:
    return (x.recorded_at, x.event_id.int)


def _clinical(x: Correctable) -> tuple[datetime, datetime, int]:
    return (x.occurred_at, x.recorded_at, x.event_id.int)


def _chains(rows: Sequence[L], group: Callable[[L], Hashable]) -> dict[uuid.UUID, uuid.UUID]:
    """Each record's chain (the root of its connected correction links): a correction is linked to the record it
    names, or, an amendment naming none, to its group's newest earlier record (as shared/clinical/corrections.py)."""
    parent: dict[uuid.UUID, uuid.UUID] = {x.event_id: x.event_id for x in rows}

    def root(i: uuid.UUID) -> uuid.UUID:
        while parent.setdefault(i, i) != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for x in rows:
        if x.record_status == "final":
            continue
        target = x.corrects
        if target is None:
            earlier = [
                y
                for y in rows
                if y.event_id != x.event_id
                and y.record_status != "entered-in-error"
                and group(y) == group(x)
                and y.recorded_at < x.recorded_at
            ]
            target = max(earlier, key=_clinical).event_id if earlier else None
        if target is not None:
            parent[root(x.event_id)] = root(target)
    return {x.event_id: root(x.event_id) for x in rows}


def _ahead_of(rows: Sequence[L], group: Callable[[L], Hashable], clock: datetime) -> set[uuid.UUID]:
    """Review R32-SYS (HAZ-27-FUTURE-HIDES): the records dated after `clock` (`ahead_clock`), which may still be in
    the future when a decision is taken (at a `now` no earlier than it), are not folded: folded with current ones,
    the base would hold a record dated ahead and hide what was current before it (`as_of.views` then cannot build
    view B). Per group, the soonest AHEAD_KEPT (the two newest by clinical time are kept anyway); they are folded
    as any other once the clock passes their date."""
    by_group: dict[Hashable, list[L]] = {}
    for x in rows:
        if x.occurred_at > clock:
            by_group.setdefault(group(x), []).append(x)
    return {x.event_id for g in by_group.values() for x in sorted(g, key=_clinical)[:AHEAD_KEPT]}


def _newest_recorded(
    rows: Sequence[L], group: Callable[[L], Hashable], n: int, ahead: Iterable[uuid.UUID] = ()
) -> set[uuid.UUID]:
    """The newest `n` records of each group, by recording and by clinical time, and the newest `n` by clinical time
    that are not entered-in-error (an amendment naming no record replaces its group's newest earlier one of those by
    clinical time: shared/clinical/corrections.py `_target`), and those `ahead` (`_ahead_of`), with every record of
    their correction chains."""
    by_group: dict[Hashable, list[L]] = {}
    for x in rows:
        by_group.setdefault(group(x), []).append(x)
    newest = {
        x.event_id for g in by_group.values() for order in (_recorded, _clinical) for x in sorted(g, key=order)[-n:]
    }
    newest.update(ahead)
    if all(x.record_status == "final" for x in rows):  # no chains (the common case)
        return newest
    # helper ZK (HAZ-25-SYS-04): an amendment naming no record replaces its group's newest record by clinical time
    # that is not entered-in-error; those never are its target, so they must not push that record out of what is kept
    for g in by_group.values():
        targets = [x for x in g if x.record_status != "entered-in-error"]
        newest.update(x.event_id for x in sorted(targets, key=_clinical)[-n:])
    chains = _chains(rows, group)
    keep_chains = {chains[i] for i in newest}
    return {x.event_id for x in rows if chains[x.event_id] in keep_chains}


# ---- lab results ---------------------------------------------------------------------------------------------
def _lab_order(kv: tuple[str, LabFact]) -> tuple[datetime, datetime, int]:
    v = kv[1]
    return (v.occurred_at, v.recorded_at, v.event_id.int)


def _lab_table(table: dict[str, LabFact], za_days: Callable[[], Iterable[date]], ahead: datetime) -> dict[str, LabFact]:
    """`ahead`: `ahead_clock(s)`, what may still be dated in the future at the next decision."""
    if len(table) <= RESULTS_KEPT and not any(v.withdrawn for v in table.values()):
        return table  # every one is among the newest live results
    rows = sorted(table.items(), key=_lab_order)
    keep = {k for k, v in rows if v.occurred_at > ahead}  # may still be dated in the future at the next decision
    live = [(k, v) for k, v in rows if not v.withdrawn and v.occurred_at <= ahead]
    newest_live = live[-RESULTS_KEPT:]
    keep.update(k for k, _ in newest_live)
    valued = [(k, v) for k, v in live if v.value is not None]
    keep.update(k for k, _ in valued[-RESULTS_KEPT:])  # corrected calcium reads valued results only
    keep.update(k for k, v in valued[-2:] if v.interpretation != "not_interpretable")  # CTX: last and previous
    good = [(k, v) for k, v in valued if v.interpretation != "not_interpretable"]
    keep.update(k for k, _ in good[-2:])
    # a withdrawn result within the span kept: a late copy of the original is not brought back (LAB-CORRECTION)
    withdrawn = [(k, v) for k, v in rows if v.withdrawn]
    if newest_live:
        floor = newest_live[0][1].occurred_at
        keep.update(k for k, v in withdrawn if v.occurred_at >= floor)
    else:
        keep.update(k for k, _ in withdrawn[-RESULTS_KEPT:])
    # SYS-ZA-DOSE (Tableau 2, L1153-1184): the dose follows the clearance before the first infusion of the course
    for day in za_days():
        lo = datetime.combine(day, time.min, UTC) - TZ_MARGIN
        hi = datetime.combine(day + timedelta(days=1), time.min, UTC) + TZ_MARGIN
        before = None
        for k, v in valued:
            if v.occurred_at < lo:
                before = k
            elif v.occurred_at < hi:
                keep.add(k)
        if before is not None:
            keep.add(before)
    if len(keep) == len(table):
        return table
    return {k: v for k, v in table.items() if k in keep}


def _za_course_days(s: SystemicState) -> set[date]:
    """The days a course of zoledronic acid may have started on (SYS-ZA-DOSE: its initial clearance is read): each
    start prescribed, each administration not covered by an earlier one's shortest interval
    (r.ZA_MONTHLY_INTERVAL_MONTHS, so that every course start under any schedule is one), and the newest
    administrations recorded (a correction of an earlier one may make one a course start)."""
    days: set[date] = set()
    given: list[tuple[date, datetime, int, bool]] = []
    recorded: list[tuple[datetime, int, date]] = []
    for e in s.treatments.values():
        t = e.treatment
        if not isinstance(t, SystemicDrug | DrugAdministration) or t.drug != "zoledronic_acid":
            continue
        if isinstance(t, SystemicDrug):
            if t.action == "started":
                days.add(t.on)
            continue
        recorded.append((e.recorded_at, e.event_id.int, t.on))
    for e in treatments(s):
        t = e.treatment
        if isinstance(t, DrugAdministration) and t.drug == "zoledronic_acid":
            given.append((t.on, e.recorded_at, e.event_id.int, bool(t.ongoing)))
    covered: date | None = None
    forever = False
    for on, _, _, ongoing in sorted(given):
        if not forever and (covered is None or on > covered):
            days.add(on)
        forever = forever or ongoing
        end = add_months(on, r.ZA_MONTHLY_INTERVAL_MONTHS)
        covered = end if covered is None else max(covered, end)
    days.update(on for _, _, on in sorted(recorded)[-RECORDS_KEPT:])
    for cp in s.drug_replays.values():  # the course under way when the older events were folded
        days.update(d for d in (cp.active.get("zoledronic_acid"), cp.course_start.get("zoledronic_acid")) if d)
    return days


# ---- findings and assessments ----------------------------------------------------------------------------------
def _finding_group(f: FindingRecord) -> Hashable:
    return f.lesion_id


def _patient_group(_: AssessmentRecord) -> Hashable:
    return "patient"


def _findings(s: SystemicState, clock: datetime) -> tuple[dict[str, FindingRecord], dict[str, LesionFacts]]:
    """`clock`: `ahead_clock(s)`."""
    rows = list(s.findings.values())
    if len(rows) <= RECORDS_KEPT or (s.findings, None) in _SETTLED:
        return s.findings, s.finding_base
    ahead = _ahead_of(rows, _finding_group, clock)
    keep = _newest_recorded(rows, _finding_group, RECORDS_KEPT, ahead)
    if len(keep) == len(rows):
        if not ahead:  # what is kept no longer depends on the clock
            _SETTLED.add(s.findings)
        return s.findings, s.finding_base
    base = dict(s.finding_base)
    for f in effective(rows, lambda f: f.lesion_id):  # what the dropped ones still say (IMG-ISOLATED)
        if f.event_id not in keep:
            base[f.lesion_id] = _merge_finding(base.get(f.lesion_id), f)
    held = {k: f for k, f in s.findings.items() if f.event_id in keep}
    if not ahead:
        _SETTLED.add(held)
    return held, dict(sorted(base.items()))


def _assessments(s: SystemicState, clock: datetime) -> tuple[dict[str, AssessmentRecord], AssessmentFold | None]:
    """`clock`: `ahead_clock(s)`."""
    rows = list(s.assessments.values())
    if len(rows) <= RECORDS_KEPT or (s.assessments, None) in _SETTLED:
        return s.assessments, s.assessment_base
    ahead = _ahead_of(rows, _patient_group, clock)
    keep = _newest_recorded(rows, _patient_group, RECORDS_KEPT, ahead)
    if len(keep) == len(rows):
        if not ahead:  # what is kept no longer depends on the clock
            _SETTLED.add(s.assessments)
        return s.assessments, s.assessment_base
    base = s.assessment_base or AssessmentFold()
    les = {str(f.event_id): f for f in base.life_expectancies}
    response = base.response
    for x in effective(rows, lambda _: "patient"):
        if x.event_id in keep:
            continue
        if x.life_expectancy_months is not None:
            les[str(x.event_id)] = x.fact(x.life_expectancy_months)
        if x.oncological_response is not None:
            response = newest(response, x.fact(x.oncological_response))
    # the same bound as the fold itself (LIFE_EXPECTANCY_KEPT): the newest estimates by clinical time
    kept = sorted(les.values(), key=lambda f: f.order())[-LIFE_EXPECTANCY_KEPT:]
    held = {k: x for k, x in s.assessments.items() if x.event_id in keep}
    if not ahead:
        _SETTLED.add(held)
    return held, AssessmentFold(life_expectancies=kept, response=response)


# ---- treatments and care -------------------------------------------------------------------------------------
def _treatments(s: SystemicState, clock: datetime) -> dict[str, TreatmentEvent]:
    if (s.treatments, clock.date()) in _SETTLED:
        return s.treatments
    kept = _treatments_kept(s, clock)
    _SETTLED.add(kept, clock.date())
    return kept


def _treatments_kept(s: SystemicState, clock: datetime) -> dict[str, TreatmentEvent]:
    rows = list(s.treatments.values())
    chains = _chains(rows, lambda e: e.treatment.kind)
    members: dict[uuid.UUID, list[TreatmentEvent]] = {}
    for e in rows:
        members.setdefault(chains[e.event_id], []).append(e)
    read_chains = {c for c, xs in members.items() if any(x.treatment.kind in READ_KINDS for x in xs)}
    alone = {c for c, xs in members.items() if len(xs) == 1}
    unread: list[TreatmentEvent] = []  # administrations of identified drugs no rule reads
    dental: list[TreatmentEvent] = []
    expired = clock.date() - timedelta(days=1)  # a day before the clock's: no earlier than today in any time zone
    drop: set[uuid.UUID] = set()
    for e in rows:
        c = chains[e.event_id]
        if c not in read_chains:
            drop.add(e.event_id)  # radiotherapy, surgery, metabolic radiotherapy: the planner reads none
            continue
        t = e.treatment
        if isinstance(t, DentalCare) and c in alone:
            dental.append(e)
            continue
        if c not in alone or not isinstance(t, DrugAdministration) or t.drug in r.ANTIRESORPTIVES:
            continue
        if identify(t.drug, t.atc_code).known:
            unread.append(e)
        elif not t.ongoing and add_months(t.on, r.UNIDENTIFIED_RECENT_MONTHS) <= expired:
            drop.add(e.event_id)  # no longer "administered recently" (unidentified(), issue 18 review)
    drop.update(e.event_id for e in sorted(unread, key=_recorded)[:-ADMINISTRATIONS_KEPT])
    extracted = {
        e.treatment.on for e in rows if isinstance(e.treatment, DentalCare) and e.treatment.action == "extraction"
    }
    drop.update(_dental_dropped(dental, clock.date() - DRUG_HORIZON, extracted))  # corrected within the horizon
    if not drop:
        return s.treatments
    return {k: e for k, e in s.treatments.items() if e.event_id not in drop}


def _dental_order(e: TreatmentEvent) -> tuple[date, int]:
    return (e.treatment.on, e.event_id.int)


def _dental_dropped(rows: list[TreatmentEvent], pending: date, extracted: set[date]) -> set[uuid.UUID]:
    """The dental events no reader can use again (`dental()`, SYS-AR-PREREQ L1096-1100 and L1272, SYS-ONJ): of those
    dated before `pending` (in the past at every decision, and beyond the horizon of corrections: those within it
    are kept, so that the one a withdrawal leaves newest is), all but the newest DENTAL_KEPT assessments, with an
    orthopantomogram or not, extractions and jaw-bone exposures, and for each extraction held (`extracted`: their
    days) the first agreement to start on or after it (the healing check)."""
    old = sorted((e for e in rows if e.treatment.on < pending), key=_dental_order)
    keep: set[uuid.UUID] = set()
    kinds: tuple[Callable[[DentalCare], bool], ...] = (
        lambda d: d.action == "assessment",
        lambda d: d.action == "assessment" and bool(d.orthopantomogram),
        lambda d: d.action == "extraction",
        lambda d: d.action == "jaw_bone_exposure" and d.exposure_weeks is not None,
    )
    for wanted in kinds:
        keep.update(e.event_id for e in [e for e in old if wanted(e.treatment)][-DENTAL_KEPT:])  # type: ignore[arg-type]
    agreed = [e for e in old if e.treatment.cleared_for_antiresorptive]  # type: ignore[union-attr]
    for on in extracted:
        cleared = next((e for e in agreed if e.treatment.on >= on), None)
        if cleared is not None:
            keep.add(cleared.event_id)
    return {e.event_id for e in old if e.event_id not in keep}


def _is_drug_event(e: TreatmentEvent) -> bool:
    t = e.treatment
    return isinstance(t, SystemicDrug) or (isinstance(t, DrugAdministration) and t.drug in r.ANTIRESORPTIVES)


def _drugs(s: SystemicState, clock: datetime) -> tuple[dict[int, DrugReplay], dict[str, TreatmentEvent]]:
    """The drug events dated before the cut (DRUG_HORIZON before the clock) folded into the drug replay, for each
    zoledronic acid interval, once all of them were recorded DRUG_SETTLED ago (a history being entered is folded
    once entered: in clinical order); those events dropped, except the correction chains a reader may still name
    (`corrections`: an amended record entered in error), which the replay then skips."""
    cut = clock.date() - DRUG_HORIZON
    previous = next(iter(s.drug_replays.values()), None)
    if previous is not None and cut <= previous.cut:
        return s.drug_replays, s.treatments
    done = set(previous.folded) if previous is not None else set()
    pending = [
        e for e in s.treatments.values() if _is_drug_event(e) and e.treatment.on < cut and e.event_id not in done
    ]
    arrived = s.late_arrivals
    if not pending or any(arrived.get(str(e.event_id), e.recorded_at) > clock - DRUG_SETTLED for e in pending):
        return s.drug_replays, s.treatments
    rows = list(s.treatments.values())
    chains = _chains(rows, lambda e: e.treatment.kind)
    members: dict[uuid.UUID, list[TreatmentEvent]] = {}
    for e in rows:
        members.setdefault(chains[e.event_id], []).append(e)
    to_check = {e.event_id for e in _resolved(s)[1]}
    folded = {e.event_id for e in pending} | done
    drop = {
        e.event_id
        for xs in members.values()
        if all(x.event_id in folded and x.event_id not in to_check for x in xs)
        for e in xs
    }
    still = sorted(i for i in folded if i not in drop and i in {e.event_id for e in rows})
    replays = {m: fold_drugs(s, cut, m).model_copy(update={"folded": still}) for m in ZA_INTERVALS}
    return replays, {k: e for k, e in s.treatments.items() if e.event_id not in drop}


def _care_order(e: CareEvent) -> tuple[datetime, datetime, int]:
    return (e.occurred_at, e.recorded_at, e.event_id.int)


def _biopsy_order(e: CareEvent) -> tuple[Any, ...]:
    b = e.event
    assert isinstance(b, BoneBiopsy)
    return (b.on, b.status == "reported", e.recorded_at, e.event_id.int)


def _care(s: SystemicState, clock: datetime) -> dict[str, CareEvent]:
    pending = clock.date() - timedelta(days=1)  # a step dated from then on may not be effective yet (QUAL-PATHWAY)
    keep: set[uuid.UUID] = set()
    steps: dict[str, CareEvent] = {}
    biopsy: CareEvent | None = None
    for e in s.care.values():
        x = e.event
        if isinstance(x, PathwayStep):
            if x.on >= pending:
                keep.add(e.event_id)
            elif (held := steps.get(x.item)) is None or _care_order(e) > _care_order(held):
                steps[x.item] = e
        elif e.occurred_at > clock:  # a biopsy dated in the future is not read yet (MOL-BIOPSY)
            keep.add(e.event_id)
        elif biopsy is None or _biopsy_order(e) > _biopsy_order(biopsy):
            biopsy = e
    keep.update(e.event_id for e in steps.values())
    if biopsy is not None:
        keep.add(biopsy.event_id)
    if len(keep) == len(s.care):
        return s.care
    return {k: e for k, e in s.care.items() if e.event_id in keep}


def ahead_clock(s: SystemicState) -> datetime:
    """What is dated after this may still be in the future at the next decision, so it is never folded (R32-SYS,
    HAZ-27-FUTURE-HIDES): the state's clock (`newest_recorded_at`), or the last decision's `now` when that is
    earlier. Review R32-RETAIN 1: a producer whose clock runs ahead stamps `recorded_at` ahead too (and a service
    whose host clock runs behind decides at an earlier `now`), so the newest `recorded_at` alone ran ahead of the
    decisions and records still in the future were folded. A rebuild (every event decided at the rebuild's clock)
    decides the same from then on, but may keep other records than the live state did (review R33-AHEAD 4)."""
    clock = s.newest_recorded_at
    assert clock is not None
    return clock if s.decided_at is None else min(clock, s.decided_at)


def retain(s: SystemicState) -> SystemicState:
    """The state with only what the rules can still use (see the module's docstring). Pure, deterministic."""
    clock = s.newest_recorded_at
    if clock is None:
        return s
    ahead = ahead_clock(s)
    update: dict[str, Any] = {}
    if s.late_arrivals and not s.late_arrivals.keys() <= s.treatments.keys():  # of the records still held only
        s = s.model_copy(update={"late_arrivals": {k: v for k, v in s.late_arrivals.items() if k in s.treatments}})
        update["late_arrivals"] = s.late_arrivals
    replays, held = _drugs(s, clock)  # first: the course starts the clearances are kept for follow from it
    if replays is not s.drug_replays:
        s = s.model_copy(update={"drug_replays": replays, "treatments": held})
        update |= {"drug_replays": replays, "treatments": held}
    treatments = _treatments(s, ahead)  # what is expired at the last decision (R32-RETAIN 1)
    if treatments is not s.treatments:
        s = s.model_copy(update={"treatments": treatments})
        update["treatments"] = treatments
    for table in LAB_TABLES.values():
        values = getattr(s, table)
        days = functools.partial(_za_course_days, s) if table == "creatinine_clearance" else tuple
        kept = _lab_table(values, days, ahead)
        if kept is not values:
            update[table] = kept
    findings, finding_base = _findings(s, ahead)
    if findings is not s.findings:
        update |= {"findings": findings, "finding_base": finding_base}
    assessments, assessment_base = _assessments(s, ahead)
    if assessments is not s.assessments:
        update |= {"assessments": assessments, "assessment_base": assessment_base}
    care = _care(s, ahead)  # a step or biopsy not yet effective at the last decision (R32-RETAIN 1)
    if care is not s.care:
        update["care"] = care
    held_now = update.get("treatments", s.treatments)
    if s.late_arrivals and not s.late_arrivals.keys() <= held_now.keys():
        update["late_arrivals"] = {k: v for k, v in s.late_arrivals.items() if k in held_now}
    return s.model_copy(update=update) if update else s
