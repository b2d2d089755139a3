"""The per-patient lab aggregate (its configuration, stored results and demographic facts) and the results held for one
delivery, with the pairing windows LAB-CA-CORR (L316) and LAB-CRCL (L1153-1156) read them through. Pure, no I/O."""

from __future__ import annotations

import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from itertools import groupby
from operator import attrgetter, itemgetter, methodcaller
from typing import Annotated, Any, Final, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import TzInfo

from contracts.clinical import Analyte, SourceRef
from contracts.hospital import Comparator, TimePrecision
from services.lab_normalisation.admission import IntakeWindow
from shared.runtime.parts_json import StoredJson

SERVICE = "lab-normalisation"
T = TypeVar("T", date, str, float)
#: review of issue 25: the closest partners kept per kept calcium (albumin, ionised calcium) or creatinine (weight):
#: the one it was derived with and the next two, so that up to two withdrawals of its partners re-pair it as an
#: unbounded state would (LAB-CA-CORR L316, LAB-CRCL L1153-1156, LAB-CORRECTION)
PARTNERS = 3
Status = Literal["final", "amended", "withdrawn"]


@dataclass(frozen=True)
class LabConfig:
    ca_albumin_window: timedelta
    hospital_tz: ZoneInfo
    #: results older than this (before the patient's newest) are dropped, except each analyte's newest
    retention: timedelta = timedelta(days=90)
    #: issue 25: at most this many results per analyte are kept whole (the newest); the versions of the others
    #: within `retention` are kept as stamps, at most `stamps` of them (the newest)
    per_analyte: int = 32
    stamps: int = 256
    #: LAB-CRCL: a weight further than this from the creatinine is to measure again (WEIGHT_MAX_AGE_DAYS)
    weight_max_age: timedelta = timedelta(days=30)


#: issue 25: the one tzinfo object of each fixed offset pydantic parsed (a handful: the senders' UTC offsets)
_ZONES: dict[tzinfo, tzinfo] = {}
_MAX_ZONES: Final = 256


def _shared_zone(at: datetime) -> datetime:
    """Issue 25: a stored result's time with the one tzinfo object of its offset, so that comparing two of them (every
    pairing window and retention cutoff does) is not two `utcoffset()` calls into pydantic's tzinfo (~1 us each pair,
    the bulk of a delivery's cost). The same offset, class and instant: the same JSON, order and arithmetic. Only
    pydantic's fixed offsets (`TzInfo`): a named zone shared by two times would compare them by wall clock."""
    zone = at.tzinfo
    if type(zone) is not TzInfo or (len(_ZONES) >= _MAX_ZONES and zone not in _ZONES):
        return at  # a flood of odd offsets is not kept: those times compare as before
    shared = _ZONES.setdefault(zone, zone)  # TzInfo equality and hash: its offset
    return at if shared is zone else at.astimezone(shared)


SharedZone = Annotated[datetime, AfterValidator(_shared_zone)]


class StoredResult(BaseModel):
    result_id: str
    event_id: uuid.UUID
    analyte: Analyte
    value: float | None
    unit: str
    occurred_at: SharedZone
    recorded_at: datetime
    status: Status
    comparator: Comparator | None = None
    precision: TimePrecision = "time"

    def ref(self) -> SourceRef:
        assert self.value is not None
        return SourceRef(
            event_id=self.event_id,
            analyte=self.analyte,
            value=self.value,
            unit=self.unit,
            occurred_at=self.occurred_at,
            comparator=self.comparator,
        )


class Fact(BaseModel, Generic[T]):
    """A demographic fact with its provenance; a newer clinical time wins."""

    value: T
    occurred_at: datetime
    recorded_at: datetime
    event_id: uuid.UUID

    def newer_than(self, other: Fact[T] | None) -> bool:
        return other is None or (self.occurred_at, self.recorded_at) > (other.occurred_at, other.recorded_at)


#: issue 25: the results written from each one's `"result_id":{...}` entry (shared/runtime/parts_json.py `Entries`: a
#: result is replaced, never changed in place once stored). A delivery copies the table and changes one or two results,
#: so the table is never the same object twice (its entries are): its body is not kept by object (`keep_maps=False`),
#: which would only hold dead states' results alive
STORED: Final = StoredJson(("results",), fields=("dropped", "revised"), keep_maps=False)


class LabState(BaseModel):
    results: dict[str, StoredResult] = Field(default_factory=dict)  # by the lab's result_id
    birth_date: Fact[date] | None = None
    sex: Fact[str] | None = None
    weight_kg: Fact[float] | None = None
    #: derived result_id -> signature of the inputs last published for it (publish only what changed)
    published_derived: dict[str, str] = Field(default_factory=dict)
    #: issue 25: the results admitted from the bus in the current admission window (admission.py)
    intake: IntakeWindow | None = None
    #: issue 25 (retention): results no longer kept whole, by result_id -> (occurred_at, newest recorded_at held), so
    #: that a late older version of one still changes nothing (LAB-CORRECTION)
    dropped: dict[str, tuple[datetime, datetime]] = Field(default_factory=dict)
    #: review of issue 25 (HAZ-25-LAB-R04): the same stamps for results whose newest version held was amended or
    #: withdrawn, kept beyond `retention` (the newest `stamps`; corrections are rare), so that a resent old message
    #: never brings a withdrawn or replaced value back (LAB-CORRECTION)
    revised: dict[str, tuple[datetime, datetime]] = Field(default_factory=dict)
    #: HAZ-25-LAB-02 (LAB-CORRECTION: "an older result arriving late must not overwrite a newer one"): the newest draw
    #: time and the newest recorded time of the stamps evicted past `stamps` while within `retention`. A result with
    #: no state drawn at or before the first (and within `retention`) may be one of them: a version of it recorded at
    #: or before the second is taken for a late older version (changes nothing), never published again
    evicted: tuple[datetime, datetime] | None = None
    #: HAZ-25-LAB-R01 (LAB-CA-CORR L316, LAB-CRCL L1153-1156 "do not guess"): by kept calcium or creatinine, the
    #: closest partner in force dropped (analyte, draw precision, draw time, recorded time, result_id; one per analyte
    #: and precision). A partner no closer than it is neither kept nor used: the unbounded state would pair the
    #: dropped one, so the partner is said missing (insufficient data) rather than a farther one used
    nearest_dropped: dict[str, list[tuple[Analyte, TimePrecision, datetime, datetime, str]]] = Field(
        default_factory=dict
    )
    #: review RL (HAZ-25-LAB-R01, LAB-CA-CORR L316, LAB-CRCL L1153-1156): by partner analyte (albumin, ionised
    #: calcium, weight), the newest draw time of one dropped with a value. A calcium or creatinine not held when it was
    #: dropped (new, late, an amendment of a dropped one, or moving its draw) cannot know which: no partner farther
    #: than that time is used (`_bar_dropped`): the partner is said missing rather than a farther one paired
    partner_dropped: dict[str, datetime] = Field(default_factory=dict)
    #: review RL (HAZ-25-LAB-02, LAB-CORRECTION): by result held whose draw an earlier version put later, that latest
    #: draw: its stamp carries it, so the evicted stamps' watermark also covers a late version drawn then (rare)
    moved: dict[str, datetime] = Field(default_factory=dict)

    def model_dump_json(self, **kwargs: Any) -> str:
        """The stored JSON (what the runtime writes): each result's JSON is reused by object (issue 25,
        shared/runtime/parts_json.py); with arguments, pydantic's."""
        if kwargs:
            return super().model_dump_json(**kwargs)
        return STORED.dump(self)


class _Held:
    """Issue 25: the results held, by analyte in the table's order, made once per delivery after its results are
    applied; its derivations and retention read it, and change no result before their last read. Each analyte's
    results in force are put in `_active`'s order once, and its results in draw order once."""

    __slots__ = ("_active", "_drawn", "by")

    def __init__(self, results: dict[str, StoredResult]) -> None:
        # grouped in C: a stable sort by analyte keeps the table's order within each analyte
        self.by: dict[str, list[StoredResult]] = {
            analyte: list(group) for analyte, group in groupby(sorted(results.values(), key=_ANALYTE), _ANALYTE)
        }
        self._active: dict[str, list[tuple[datetime, StoredResult]]] = {}
        self._drawn: dict[str, list[StoredResult]] = {}

    def of(self, analyte: str) -> list[StoredResult]:
        return self.by.get(analyte, [])

    def active(self, analyte: Analyte) -> list[tuple[datetime, StoredResult]]:
        """`_active(s, analyte)`, as a new list (its callers sort theirs)."""
        hit = self._active.get(analyte)
        if hit is None:
            hit = self._active[analyte] = _in_force(self.of(analyte), analyte)
        return list(hit)

    def drawn_near(self, analyte: str, at: datetime, reach: timedelta) -> list[StoredResult]:
        """The results of `analyte` (withdrawn too) that may be drawn within `reach` of `at`, in draw order: every one
        that is, and a few beyond (`_near_slice`); the caller tests each."""
        hit = self._drawn.get(analyte)
        if hit is None:
            hit = self._drawn[analyte] = sorted(self.of(analyte), key=_AT)
        return hit[_near_slice(hit, at, reach, _AT)]


def _near_slice(ordered: Sequence[Any], at: datetime, reach: timedelta, key: Callable[[Any], datetime]) -> slice:
    """Issue 25: the part of a list in draw order (`key`) that holds every item drawn within `reach` of `at`, found by
    bisection rather than by testing each (the pairing windows of LAB-CA-CORR, L316, and the retention of their
    partners). Widened by a day: two times in one named zone (an HL7 time without an offset) compare by wall clock, a
    DST change apart from the instant order by an hour at most, so the slice is a superset and the caller's own test
    decides, as before."""
    margin = reach + _DAY
    return slice(bisect_left(ordered, at - margin, key=key), bisect_right(ordered, at + margin, key=key))


def _newest_first(r: StoredResult) -> tuple[datetime, datetime, str]:
    return r.occurred_at, r.recorded_at, r.result_id


#: issue 25: a result's draw time and analyte, a stamp's draw time, read in C over a whole table
_AT: Final = attrgetter("occurred_at")
_ANALYTE: Final = attrgetter("analyte")
_RID: Final = attrgetter("result_id")
_DRAWN: Final = itemgetter(0)
_FIRST_OF: Final = itemgetter(0)
#: a derived value's key ("corrected:<result_id>", "crcl:<result_id>"): the result it is derived from
_PARTITION: Final = methodcaller("partition", ":")
_DERIVED_FROM: Final = itemgetter(2)


def _active(
    s: LabState, analyte: Analyte, among: Iterable[StoredResult] | None = None, held: _Held | None = None
) -> list[tuple[datetime, StoredResult]]:
    """The results in force of one analyte (`among` those given, else every one held), in an order of their own
    (draw time, the most recently reported first, result ID): the pairing of LAB-CA-CORR and LAB-CRCL takes the first
    of equally close ones, which must not depend on the order they were delivered in or re-held after retention
    (review of issue 25)."""
    if among is None and held is not None:
        return held.active(analyte)
    return _in_force(s.results.values() if among is None else among, analyte)


def _in_force(results: Iterable[StoredResult], analyte: str) -> list[tuple[datetime, StoredResult]]:
    held = [r for r in results if r.analyte == analyte and r.value is not None]
    held.sort(key=lambda r: (r.occurred_at, -r.recorded_at.timestamp(), r.result_id))
    return [(r.occurred_at, r) for r in held]


_DAY = timedelta(days=1)


def _within(
    ca: StoredResult, candidates: list[tuple[datetime, StoredResult]], window: timedelta
) -> list[tuple[datetime, StoredResult]]:
    return [(t, r) for t, r in candidates if abs(t - ca.occurred_at) <= window]


def _surely_within(
    ca: StoredResult, candidates: list[tuple[datetime, StoredResult]], window: timedelta
) -> list[tuple[datetime, StoredResult]]:
    """LAB-CA-CORR pairing with a date-only draw: its hour is unknown (any time that day), so it pairs only when
    every possible hour is within the window."""
    day = timedelta(days=1)
    slack = day if ca.precision == "date" else timedelta(0)
    return [
        (t, r)
        for t, r in candidates
        if abs(t - ca.occurred_at) + slack + (day if r.precision == "date" else timedelta(0)) <= window
    ]
