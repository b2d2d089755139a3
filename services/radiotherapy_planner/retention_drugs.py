"""The drug events' part of retention (retention.py `_treatments`; issue 25, RT-FLAT2): each drug's writers (what its
fold in facts_treatments.drug_uses reads, WRITERS_KEPT deep per field) are found in one pass over its events, remembered
per list of events (by object), and found once per distinct set of events dated up to an open request's reference date
(RT-DRUG, IR-CEMENT: a suffix of the fold's order), not once per date. The chains of corrections, the version in force
and each event's drug are still worked out at each scan.

Exact: a record is frozen and `_writers` reads nothing but the events it is given, so a remembered result is what it
would compute again. The cache holds the events it keys (an object's ID is not reused while it is there) and is
bounded (cleared whole when full). Review R34-RTFLAT2: equal to the former `_writers` on random drug histories and
reference dates.
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Final

from contracts.hospital import DrugAdministration, SystemicDrug, TreatmentEvent

#: Per drug and per field of its fold, the writers kept beyond the horizon: one more than the one in force, so that
#: withdrawing the last dose or the last stop falls back to the one before, as the full history would.
WRITERS_KEPT: Final = 2
DRUG_KINDS: Final = frozenset({"systemic_drug", "drug_administration"})

_Key = tuple[date, int, int]


def is_drug(e: TreatmentEvent) -> bool:
    return isinstance(e.treatment, SystemicDrug | DrugAdministration)


def fold_key(e: TreatmentEvent) -> _Key:
    """facts_treatments.drug_uses' order: by day, a start before the day's other events, then the event ID (its integer
    orders as its text)."""
    t = e.treatment
    return (t.on, 0 if isinstance(t, SystemicDrug) and t.action == "started" else 1, e.event_id.int)


WRITERS_SIZE: Final = 8192
_WRITERS: dict[tuple[int, ...], tuple[tuple[TreatmentEvent, ...], list[TreatmentEvent]]] = {}
_LOCK: Final = threading.Lock()  # retention runs in the runtime's worker thread; tests may run several


def fold_writers(events: list[TreatmentEvent], points: list[date]) -> list[TreatmentEvent]:
    """The old events of one drug its fold keeps: `_writers` of them all and, for each of `points` (the open requests'
    reference dates before the cut), of those dated up to it. In the fold's order, newest first, the events up to a
    date are a suffix of the list: a point after every event gives the whole list again and one before every event
    none, and two points between the same events the same suffix, so each distinct suffix is folded once."""
    ordered = sorted(events, key=fold_key, reverse=True)
    out = list(writers(ordered))
    days = [e.treatment.on for e in ordered]  # non-increasing
    starts = set()
    for p in points:
        i = next((i for i, d in enumerate(days) if d <= p), len(days))
        if 0 < i < len(days):
            starts.add(i)
    for i in sorted(starts):
        out += writers(ordered[i:])
    return out


def writers(ordered: list[TreatmentEvent]) -> list[TreatmentEvent]:
    """`_writers` of these events, made once per list (the events by object, in order: an event is frozen)."""
    key = tuple(map(id, ordered))
    hit = _WRITERS.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], ordered, strict=True)):
        return hit[1]
    made = _writers(ordered)
    with _LOCK:
        if len(_WRITERS) >= WRITERS_SIZE:
            _WRITERS.clear()
        _WRITERS[key] = (tuple(ordered), made)  # held: the IDs of the key are not reused while it is here
    return made


def _writers(ordered: list[TreatmentEvent]) -> list[TreatmentEvent]:
    """The events of one drug that decide its fold in facts_treatments.drug_uses, WRITERS_KEPT deep per field: the last
    event (provenance, identity), whether it is taken (starts, stops, doses saying so), the daily dose, the last dose
    (stops and doses) with every dose or stop of that day (two doses the same day: the later one counts). `ordered`: the
    events by `fold_key`, newest first."""
    kept: dict[int, TreatmentEvent] = {id(e): e for e in ordered[:WRITERS_KEPT]}  # by object
    ongoing = dose = 0
    last: list[TreatmentEvent] = []  # the events setting the last dose (stops and doses)
    for e in ordered:  # one pass: the first WRITERS_KEPT of each kind of writer
        t = e.treatment
        if isinstance(t, DrugAdministration):
            if ongoing < WRITERS_KEPT and t.ongoing is not None:
                kept[id(e)] = e
                ongoing += 1
            if dose < WRITERS_KEPT and t.daily_dose_mg is not None:
                kept[id(e)] = e
                dose += 1
            last.append(e)
        elif isinstance(t, SystemicDrug):
            if ongoing < WRITERS_KEPT:
                kept[id(e)] = e
                ongoing += 1
            if t.action == "stopped":
                last.append(e)
    days = {e.treatment.on for e in last[:WRITERS_KEPT]}
    for e in last:
        if e.treatment.on in days:
            kept[id(e)] = e
    return list(kept.values())
