"""The systemic planner's drug history (`DrugHistory`) and the replay that builds it from the drug events: starts and
stops in effect order, anti-resorptive courses, SYS-REVIEW-2Y's exposure count and review stop, SYS-DENO-STOP's
relay (`_Exposure`), and the replay's checkpoint kept in the state (issue 25: `DrugReplay`, retention.py).

Pure; it reads no state: treatments.py replays a state's events with it."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from pydantic import BaseModel, Field

from contracts.hospital import (
    SystemicDrug,
    TreatmentEvent,
)
from services.systemic_planner import rules as r
from shared.clinical.dates import add_months
from shared.clinical.drugs import DrugIdentity, identify
from shared.clinical.treatments import in_effect_order


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
