"""Issue 25: the systemic planner's retention of treatment and care events (retention.py `retain` applies it):
the drug events folded into the drug replay past DRUG_HORIZON (`_drugs`: SYS-REVIEW-2Y, SYS-DENO-STOP), the
treatment events no rule reads dropped (`_treatments`: administrations of drugs no rule reads, unidentified
drugs no longer recent, old dental events: SYS-AR-PREREQ, SYS-ONJ), each pathway item's newest step and the newest
bone biopsy (`_care`: QUAL-PATHWAY, MOL-BIOPSY). Pure and deterministic, as retention.py (its docstring states
the policy and its exactness assumption, HAZ-25-SYS-02)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from contracts.care import BoneBiopsy, CareEvent, PathwayStep
from contracts.hospital import DentalCare, DrugAdministration, SystemicDrug, TreatmentEvent
from services.systemic_planner import rules as r
from services.systemic_planner.drug_replay import DrugReplay
from services.systemic_planner.retention_chains import _SETTLED, _chains, _recorded
from services.systemic_planner.retention_memo import FIRST_PENDING
from services.systemic_planner.state import SystemicState
from services.systemic_planner.treatments import ZA_INTERVALS, _resolved, fold_drugs
from shared.clinical.dates import add_months
from shared.clinical.drugs import identify

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
    first = FIRST_PENDING(  # h38-sys: memoised (retention_memo.py), so a new day's cut scans no unchanged table
        s.treatments,
        s.drug_replays,
        lambda: min(
            (e.treatment.on for e in s.treatments.values() if _is_drug_event(e) and e.event_id not in done),
            default=None,
        ),
    )
    if first is None or first >= cut:
        return s.drug_replays, s.treatments  # no drug event dated before the cut is left to fold: `pending` is empty
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
