"""Issue 25: scoring's retention of systemic-drug starts and stops (IMG-FLARE, L391-395), split from retention.py.
Pure and deterministic, as retention.py: the fold is a function of the treatments table, the days IMG-FLARE reads
(each lesion's newest new focus) and the horizon's start.

The fold runs once a day of the horizon (retention.py: `drugs_cutoff`). Issue 25: it compares the horizon's start
with the systemic-drug records in two ways only: a date D (a record's day, or a stop's day plus
FLARE_RESTART_INTERRUPTION_MONTHS) before the cutoff day (`D < cutoff`), and a record's clinical time at or after the
start. Each turns only once as the horizon moves on, so a fold that kept a table whole keeps it whole, for the same
focus days, until the cutoff passes the next such date or the start the next such time (`fold_drugs`): it is not
run again before.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final, TypeVar

from contracts.hospital import ClinicalAssessment, ImagingFinding, SystemicDrug, TreatmentEvent
from services.scoring import rules as r
from services.scoring.state import ScoringState
from shared.clinical.corrections import chains
from shared.clinical.dates import add_months, local_day
from shared.clinical.newest import instant
from shared.clinical.treatments import effective_treatments, in_effect_order


def fold_drugs(
    patient: str | None,
    table: dict[str, TreatmentEvent],
    treatments: dict[str, TreatmentEvent],
    foci: set[date],
    start: datetime,
) -> dict[str, TreatmentEvent]:
    """`_retain_drugs(treatments, foci, start)`, where `treatments` is derived from the state's `table` alone; with the
    `patient`, not run again while a fold of the same table (by object) and focus days kept it whole and no date or
    time it compares with the start was passed since (the module's docstring)."""
    cutoff, at = local_day(start) - timedelta(days=1), instant(start)
    if patient is not None:
        with _LOCK:
            hit = _WHOLE.get(patient)
        if hit is not None and hit[0] is table and hit[1] == foci and _within(hit[2], cutoff) and _within(hit[3], at):
            return treatments
    out = _retain_drugs(treatments, foci, start)
    if patient is not None and out is treatments:  # kept whole: until which cutoff and start it stays so
        drugs = [(e, e.treatment) for e in treatments.values() if isinstance(e.treatment, SystemicDrug)]
        days = [x.on for _, x in drugs] + [_reach(x.on) for _, x in drugs if x.action == "stopped"]
        times = [instant(e.occurred_at) for e, _ in drugs]
        limits = (cutoff, min((d for d in days if d >= cutoff), default=None))
        entry = (table, frozenset(foci), limits, (at, min((t for t in times if t >= at), default=None)))
        with _LOCK:
            _WHOLE[patient] = entry
            _WHOLE.move_to_end(patient)
            while len(_WHOLE) > WHOLE_SIZE:
                _WHOLE.popitem(last=False)
    return out


def _within(limits: tuple[Any, Any], value: Any) -> bool:
    """From the first limit (included) until the second (included; None: no end)."""
    since, until = limits
    return bool(since <= value and (until is None or value <= until))


def _reach(stop: date) -> date:
    """A stop's day plus FLARE_RESTART_INTERRUPTION_MONTHS: a start before it resumes the treatment (IMG-FLARE)."""
    return add_months(stop, r.FLARE_RESTART_INTERRUPTION_MONTHS)


#: per patient: the treatments table and focus days a fold last kept whole, and from and until which cutoff day and
#: start (an instant, newest.instant) a fold keeps them whole (one entry a patient, the patients seen last)
WHOLE_SIZE: Final = 16384
_WHOLE: OrderedDict[
    str, tuple[dict[str, TreatmentEvent], frozenset[date], tuple[date, date | None], tuple[int, int | None]]
] = OrderedDict()
_LOCK: Final = threading.Lock()  # the runtime applies events in its worker thread


def clear() -> None:
    """Forget what is memoised (a cold process)."""
    with _LOCK:
        _WHOLE.clear()


@dataclass
class _Run:
    """One continuous treatment by a drug (patient._active_drugs): from its start to its last stop, restarts within
    FLARE_RESTART_INTERRUPTION_MONTHS included; `stop` None while under way. `steps`: its starts and stops in the
    order they take effect, each with whether it changed anything (a start sent again while under way does not)."""

    first: date
    stop: date | None = None
    steps: list[tuple[uuid.UUID, SystemicDrug, bool]] = field(default_factory=list)


#: a drug's state after a step, as patient._active_drugs has it: (under way since, its ATC code) or None; (paused: the
#: continuous start, the day it stopped) or None
_DrugState = tuple[tuple[date, str | None] | None, tuple[date, date] | None]


def _replay(steps: list[SystemicDrug]) -> list[_DrugState]:
    """The drug's state after each step (patient._active_drugs' rules, one drug, from no treatment)."""
    active: tuple[date, str | None] | None = None
    paused: tuple[date, date] | None = None
    out: list[_DrugState] = []
    for x in steps:
        if x.action == "started" and active is None:
            since = x.on
            if paused is not None and x.on < add_months(paused[1], r.FLARE_RESTART_INTERRUPTION_MONTHS):
                since = paused[0]  # resumed: the same continuous treatment
            active, paused = (since, x.atc_code), None
        elif x.action == "stopped" and active is not None:
            paused = (active[0], x.on)
            active = None
        out.append((active, paused))
    return out


def _run_kept(run: _Run, foci: set[date], cutoff: date) -> list[uuid.UUID]:
    """The steps of a continuous treatment to keep: none once it ended before the cutoff (no start can resume it) and
    was not under way on a focus day; else, day by day (a day's steps are kept together: their order depends on what
    is under way that morning, shared/clinical/treatments.in_effect_order), its first day, every day from the cutoff
    on, and the day before each focus day and before the cutoff with the day before that; then every day needed for
    each kept day to begin in the state it began in (under way since the same day, or paused since the same stop),
    found by replaying them. Replaying what is kept gives the same continuous start, ATC code and pause after every
    kept day and on every day read; when it would not, the whole treatment is kept."""
    reach = None if run.stop is None else add_months(run.stop, r.FLARE_RESTART_INTERRUPTION_MONTHS)
    read = sorted({day for day in foci if run.first <= day and (reach is None or day <= reach)})
    if reach is not None and reach < cutoff and not read:
        return []
    steps = [x for _, x, _ in run.steps]
    days = sorted({x.on for x in steps})
    if len(days) <= 2:
        return [event_id for event_id, _, _ in run.steps]
    full = _replay(steps)
    after = [full[max(i for i, x in enumerate(steps) if x.on == day)] for day in days]  # the state after each day

    def begins(state: _DrugState | None) -> tuple[date | None, tuple[date, date] | None]:
        return (None if state is None or state[0] is None else state[0][0]), (None if state is None else state[1])

    kept = {0} | {j for j, day in enumerate(days) if day >= cutoff}
    for day in [*read, cutoff - timedelta(days=1)]:
        k = max((j for j, d in enumerate(days) if d <= day), default=None)
        if k is not None:
            kept |= {k, max(k - 1, 0)}
    while True:
        order = sorted(kept)
        mine = _replay([x for x in steps if x.on in {days[j] for j in order}])
        ends = {}  # the state after each kept day, replaying only what is kept
        n = 0
        for j in order:
            n += sum(1 for x in steps if x.on == days[j])
            ends[j] = mine[n - 1]
        missing = [
            j - 1
            for prev, j in itertools.pairwise(order)
            if begins(ends[prev]) != begins(after[j - 1]) and j - 1 not in kept
        ]
        if not missing:
            break
        kept.add(missing[0])
    same = all(ends[j] == after[j] for j in order)
    for day in read:
        k = max((j for j, d in enumerate(days) if d <= day), default=None)
        last = max((j for j in order if days[j] <= day), default=None)
        same = same and (k is None) == (last is None) and (k is None or last is None or ends[last] == after[k])
    keep_days = {days[j] for j in order}
    if not same:
        return [event_id for event_id, _, _ in run.steps]
    return [event_id for event_id, x, _ in run.steps if x.on in keep_days]


def focus_days(s: ScoringState) -> set[date]:
    """The days IMG-FLARE may read the drugs under way on: each lesion's newest new focus, and every focus a
    correction within the horizon could make the newest again (its summary's, its findings kept one by one)."""
    foci = [f for x in (*s.lesions.values(), *s.lesion_bases.values()) for f in x.new_foci[-1:]]
    days = {local_day(f.occurred_at) for f in foci}
    days |= {
        local_day(f.occurred_at) for f in s.findings.values() if f.new_focus and f.modality in r.METABOLIC_MODALITIES
    }
    return days


def _retain_drugs(treatments: dict[str, TreatmentEvent], foci: set[date], start: datetime) -> dict[str, TreatmentEvent]:
    """The treatment events without the systemic-drug treatments no decision can read again: a continuous treatment
    that ended (its last stop more than FLARE_RESTART_INTERRUPTION_MONTHS before the cutoff, so no start can resume
    it) and was not under way on a day IMG-FLARE reads (a focus day), with every record of its chains of versions."""
    cutoff = local_day(start) - timedelta(days=1)
    drugs = [e for e in treatments.values() if isinstance(e.treatment, SystemicDrug)]
    if not any(e.treatment.on < cutoff for e in drugs):
        return treatments
    runs: list[_Run] = []
    active: dict[str, _Run] = {}
    paused: dict[str, _Run] = {}
    for e, x in in_effect_order(effective_treatments(treatments.values())):  # as patient._active_drugs reads them
        run = active.get(x.drug)
        changed = True
        if x.action == "started" and run is None:
            run = paused.pop(x.drug, None)
            if run is None or run.stop is None or x.on >= add_months(run.stop, r.FLARE_RESTART_INTERRUPTION_MONTHS):
                run = _Run(x.on)  # a new treatment (a longer interruption starts the window again)
                runs.append(run)
            run.stop = None
            active[x.drug] = run
        elif x.action == "stopped" and run is not None:
            run.stop = x.on
            paused[x.drug] = active.pop(x.drug)
        elif run is None:  # a stop of a drug not under way changes nothing: on its own, dropped once old
            run = _Run(x.on, x.on)
            runs.append(run)
        else:
            changed = False  # a start sent again while under way
        run.steps.append((e.event_id, x, changed))
    kept = {event_id for run in runs for event_id in _run_kept(run, foci, cutoff)}
    rows = list(treatments.values())
    roots = chain_roots(rows, _treatment_kind)
    # a chain of versions goes whole: one with a record kept, not a systemic drug, or not older than the cutoff stays
    needed = {
        roots[e.event_id]
        for e in rows
        if e.event_id in kept
        or not isinstance(e.treatment, SystemicDrug)
        or e.treatment.on >= cutoff
        or e.occurred_at >= start
    }
    if all(roots[e.event_id] in needed for e in rows):
        return treatments
    return {k: e for k, e in treatments.items() if roots[e.event_id] in needed}


def _treatment_kind(e: TreatmentEvent) -> str:
    return e.treatment.kind


R = TypeVar("R", ImagingFinding, ClinicalAssessment, TreatmentEvent)  # (retention.py: the same)


def chain_roots(rows: list[R], group: Callable[[R], Hashable]) -> dict[uuid.UUID, uuid.UUID]:
    """Each record's chain of versions, named by its original's ID (as shared/clinical/corrections.resolve does)."""
    walked = chains(rows, group)
    return {x.event_id: walked.root(x.event_id) for x in rows}
