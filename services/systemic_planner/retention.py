"""Issue 25: what the systemic planner keeps of a patient's history (`retain`), applied at the end of every
transition so that the stored aggregate is always the retained one. Pure and deterministic: it reads only the
state, never the wall clock (its clock is `newest_recorded_at`, the newest `recorded_at` merged; what is "dated after"
it is judged against `ahead_clock`, that clock or the last decision's `now` when earlier), so a rebuild gives the same
state, but where a producer's clock ran ahead (the rebuild decides at its own, later clock: it may fold what is
current by then); and retain(retain(s)) == retain(s). Treatment and care events: retention_treatments.py; the
correction chains both read: retention_chains.py.

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
from typing import Any

from contracts.hospital import DrugAdministration, SystemicDrug
from services.systemic_planner import rules as r
from services.systemic_planner.records import AssessmentRecord, FindingRecord
from services.systemic_planner.retention_chains import _SETTLED, L, _clinical, _newest_recorded
from services.systemic_planner.retention_memo import LAB_KEPT
from services.systemic_planner.retention_treatments import _care, _drugs, _treatments
from services.systemic_planner.state import (
    LAB_TABLES,
    LIFE_EXPECTANCY_KEPT,
    AssessmentFold,
    LabFact,
    LesionFacts,
    SystemicState,
    _merge_finding,
)
from services.systemic_planner.treatments import treatments
from shared.clinical.corrections import effective
from shared.clinical.dates import add_months
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
#: the widest offsets from UTC (-12 h to +14 h): a calendar day in any hospital time zone lies within these bounds
TZ_MARGIN = timedelta(hours=14)


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


# ---- lab results ---------------------------------------------------------------------------------------------
def _lab_order(kv: tuple[str, LabFact]) -> tuple[datetime, datetime, int]:
    v = kv[1]
    return (v.occurred_at, v.recorded_at, v.event_id.int)


def _lab_table(table: dict[str, LabFact], za_days: Callable[[], Iterable[date]], ahead: datetime) -> dict[str, LabFact]:
    """`ahead`: `ahead_clock(s)`, what may still be dated in the future at the next decision. h38-sys: memoised
    (`LAB_KEPT`, retention_memo.py) on the table's object, which of its results are dated after `ahead` (all it reads
    of `ahead`) and the course days (all it reads of `za_days`)."""
    if len(table) <= RESULTS_KEPT and not any(v.withdrawn for v in table.values()):
        return table  # every one is among the newest live results
    days = tuple(sorted(set(za_days())))
    if not r.fixed_offset(ahead):  # review R38-SYS: a ZoneInfo clock compares by wall clock, not by the memo's instants
        return _lab_table_kept(table, days, ahead)
    return LAB_KEPT(table, ahead, days, lambda: _lab_table_kept(table, days, ahead))


def _lab_table_kept(table: dict[str, LabFact], za_days: Iterable[date], ahead: datetime) -> dict[str, LabFact]:
    """`_lab_table` computed (its `za_days` given)."""
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
    for day in za_days:
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
