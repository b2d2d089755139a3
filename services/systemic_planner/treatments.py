"""What the systemic planner reads of the treatment events: the ones that count (corrections resolved, issue 18.7),
the drug history they make (`drug_history`: prescriptions, and anti-resorptive administrations under way for
their dosing interval, SYS-AR-START, SYS-REVIEW-2Y, SYS-DENO-STOP, SYS-SCHEDULE), its fold for retention
(`fold_drugs`, issue 25) and the dental events (SYS-AR-PREREQ, SYS-ONJ).

Pure. Every reader takes an `AsOf` (now) and records the deadlines at which its answer changes (a course's
interval running out, a future-dated event becoming effective)."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections import OrderedDict
from datetime import date, datetime, timedelta
from typing import Literal

from contracts.hospital import (
    DentalCare,
    DrugAdministration,
    SystemicDrug,
    TreatmentEvent,
)
from services.systemic_planner import rules as r
from services.systemic_planner.drug_replay import (
    DrugHistory,
    DrugReplay,
    OpenCourse,
    _Exposure,
    _Replay,
    exposure_needed,
)
from services.systemic_planner.memo import memo
from services.systemic_planner.state import SystemicState
from shared.clinical.dates import add_months
from shared.clinical.treatments import corrections_to_check, effective_treatments

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
