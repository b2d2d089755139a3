"""The per-patient lab aggregate and its pure transitions: LAB-CORRECTION, LAB-CA-CORR, LAB-CRCL,
LAB-VITD, LAB-CTX. No I/O."""

from __future__ import annotations

import heapq
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from itertools import compress, groupby
from operator import attrgetter, itemgetter, methodcaller
from typing import Annotated, Any, Final, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import TzInfo

from contracts.base import derived_id
from contracts.clinical import Analyte, NormalisedLab, SourceRef
from contracts.hospital import Comparator, PatientRecord, TimePrecision
from services.lab_normalisation.admission import IntakeWindow
from services.lab_normalisation.ingest import Ingested, LabInput
from services.lab_normalisation.rules import (
    age_in_years,
    closest_within,
    cockcroft_gault,
    combine_bounds,
    corrected_calcium,
    ctx_interpretability,
    flip,
    vitamin_d_bounded_class,
)
from services.lab_normalisation.stored import LabStoredJson
from services.lab_normalisation.units import value_in
from shared.errors import Rejected

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


#: issue 25: the results written from each one's JSON (a result is replaced, never changed in place once stored)
STORED: Final = LabStoredJson(("results",), fields=("dropped", "revised"))


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


def _status(status: str) -> Status:
    if status == "entered-in-error":
        return "withdrawn"
    return "final" if status == "final" else "amended"


def apply_ingested(state: LabState, batch: Ingested, cfg: LabConfig) -> tuple[LabState, list[NormalisedLab]]:
    """Apply one delivery: demographics first, then results, then re-derive what they affect."""
    # A shallow copy is enough: stored results and facts are replaced, never changed in place; the stamps are copied
    # where retention changes them (_prune), so that an unchanged table keeps its stored JSON (issue 25)
    s = state.model_copy(
        update={
            "results": dict(state.results),
            "published_derived": dict(state.published_derived),
        }
    )
    out: list[NormalisedLab] = []
    for record in batch.patients:
        _apply_patient(s, record)
    calcium_draws: set[str] = set()  # calcium result_ids whose corrected value may have changed
    # the horizon of the last retention (HAZ-25-LAB-02): the newest draw held was kept (its analyte's newest)
    horizon = max(map(_AT, state.results.values()), default=None)
    unplaced: list[str] = []  # review RL (HAZ-25-LAB-02): results the evicted stamps' watermark cannot place
    for lab in batch.labs:
        try:
            published = _apply_result(s, lab, cfg, None if horizon is None else horizon - cfg.retention)
        except _Unplaced:
            unplaced.append(lab.analyte)
            continue
        if published is None:
            continue
        out.append(published)
        if lab.analyte == "total_calcium":
            calcium_draws.add(lab.result.result_id)
        elif lab.analyte in ("albumin", "ionised_calcium"):  # may re-pair any calcium drawn within the window
            t = lab.result.occurred_at
            calcium_draws |= {
                r.result_id
                for r in s.results.values()
                if r.analyte == "total_calcium" and abs(r.occurred_at - t) <= cfg.ca_albumin_window
            }
    if unplaced:  # never silently (nothing is lost): the message to the dead letter, or a note on what it published
        names = ", ".join(sorted(set(unplaced)))
        if not out:
            raise Rejected(UNPLACED.format(analyte=names))
        out = [o.model_copy(update={"notes": [*o.notes, UNPLACED_NOTE.format(analyte=names)]}) for o in out]
    # LAB-CORRECTION: a value derived again is learnt with this delivery: never recorded before it (a withdrawal
    # that returns a derived value to an earlier state is a newer fact than the value it replaces)
    since = max([x.result.recorded_at for x in batch.labs] + [p.recorded_at for p in batch.patients], default=None)
    held = _Held(s.results)  # no result changes from here until retention has read them (issue 25)
    if calcium_draws:
        out += _recompute_corrected_calcium(s, batch.patient_id, calcium_draws, cfg.ca_albumin_window, since, held)
    if batch.patients or any(x.analyte == "body_weight" for x in batch.labs):
        out += _recompute_clearance(s, batch.patient_id, cfg, since, held=held)
    elif creatinines := {x.result.result_id for x in batch.labs if x.analyte == "creatinine"}:
        out += _recompute_clearance(s, batch.patient_id, cfg, since, creatinines, held)
    _prune(s, cfg, held)
    return s, out


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


def _kept(s: LabState, cutoff: datetime, per_analyte: int, held: _Held) -> tuple[set[str], list[StoredResult]]:
    """The results `_prune` keeps (each analyte's newest `per_analyte` within `retention`, or its newest), and the
    others (in the table's order)."""
    values = s.results.values()
    if max(map(len, held.by.values())) <= per_analyte:
        # issue 25 (the usual case: one result ages out): every result within `retention` is kept (none above its
        # analyte's cap), and an analyte's newest where none of it is within (read in C over the table)
        old = list(compress(values, map(cutoff.__gt__, map(_AT, values))))
        keep = set(s.results).difference(map(_RID, old))
        for analyte in {r.analyte for r in old}:
            if max(map(_AT, held.of(analyte))) < cutoff:  # none of it within `retention`: its newest is kept
                keep.add(max(held.of(analyte), key=_newest_first).result_id)
        return keep, [r for r in old if r.result_id not in keep]
    keep = set()
    for results in held.by.values():
        # the newest `per_analyte` within `retention` (issue 25: sorted only when there are more)
        recent = [r for r in results if r.occurred_at >= cutoff]
        if len(recent) > per_analyte:
            recent = heapq.nlargest(per_analyte, recent, key=_newest_first)
        if not recent:  # else the analyte's newest (the newest clinical time) is among them
            recent = [max(results, key=_newest_first)]  # each analyte's newest, however old
        keep.update(r.result_id for r in recent)
    return keep, [r for rid, r in s.results.items() if rid not in keep]


def _prune(s: LabState, cfg: LabConfig, held: _Held | None = None) -> None:
    """Bound the aggregate (issue 25, README "Retention: lab-normalisation"): keep each analyte's newest result,
    and its newest `per_analyte` results within `retention` of the patient's newest result. A result dropped within
    `retention` leaves a stamp of its newest version (the newest `stamps`), and one amended or withdrawn leaves one
    however old (`revised`, the newest `stamps`), so a late older version of it still changes nothing
    (LAB-CORRECTION); an amendment of a dropped result is handled as a new result. Deterministic: measured from the
    results' own times, never the wall clock."""
    if not s.results:
        return
    held = _Held(s.results) if held is None else held
    cutoff = max(map(_AT, s.results.values())) - cfg.retention
    dropping: list[StoredResult]
    if min(map(_AT, s.results.values())) >= cutoff and max(map(len, held.by.values())) <= cfg.per_analyte:
        keep, dropping = set(s.results), []  # issue 25: every result within `retention` and its analyte's cap
    else:
        keep, dropping = _kept(s, cutoff, cfg.per_analyte, held)
    if dropping:  # issue 25: the partners are looked for only among the results that would otherwise go
        keep |= _partners(s, keep, cfg.ca_albumin_window, dropping, held)
        _note_dropped(s, keep, cfg.ca_albumin_window, dropping, held)
        newest: dict[str, datetime] = {}
        for r in dropping:  # review RL: the newest dropped of each partner analyte (LabState.partner_dropped)
            if r.result_id not in keep and r.value is not None and r.analyte in _PARTNER_OF:
                newest[r.analyte] = max(r.occurred_at, newest.get(r.analyte, r.occurred_at))
        if any(s.partner_dropped.get(a, t) < t or a not in s.partner_dropped for a, t in newest.items()):
            s.partner_dropped = {
                **s.partner_dropped,
                **{a: max(t, s.partner_dropped.get(a, t)) for a, t in newest.items()},
            }
    if s.nearest_dropped.keys() - keep:
        s.nearest_dropped = {k: v for k, v in s.nearest_dropped.items() if k in keep}
    if gone := [r for r in dropping if r.result_id not in keep]:  # in the table's order
        # the previous state's tables are left as they were, and one unchanged keeps its object (and its stored JSON)
        stamped = {
            r.result_id: (max(r.occurred_at, s.moved.get(r.result_id, r.occurred_at)), r.recorded_at)
            for r in gone
            if r.occurred_at >= cutoff
        }
        revisions = {r.result_id: (r.occurred_at, r.recorded_at) for r in gone if r.status != "final"}
        if stamped:
            s.dropped = {**s.dropped, **stamped}
        if revisions:
            s.revised = {**s.revised, **revisions}
        s.results = dict(s.results)
        for r in gone:
            del s.results[r.result_id]
        if s.moved.keys() - keep:  # after their stamps took their latest draw
            s.moved = {k: v for k, v in s.moved.items() if k in keep}
        derived = s.published_derived
        if not keep.issuperset(map(_DERIVED_FROM, map(_PARTITION, derived))):  # the values of results kept (in C)
            kept_keys = list(compress(derived, map(keep.__contains__, map(_DERIVED_FROM, map(_PARTITION, derived)))))
            s.published_derived = dict(zip(kept_keys, map(derived.__getitem__, kept_keys), strict=True))
    if s.dropped and not (  # issue 25: unchanged while every stamp is within `retention`, below the cap, not held
        len(s.dropped) <= cfg.stamps
        and min(map(_DRAWN, s.dropped.values())) >= cutoff
        and s.dropped.keys().isdisjoint(s.results)
    ):
        stamps = [(rid, at) for rid, at in s.dropped.items() if at[0] >= cutoff and rid not in s.results]
        if len(stamps) != len(s.dropped) or len(stamps) > cfg.stamps:
            stamps.sort(key=lambda x: (x[1][0], x[1][1], x[0]), reverse=True)
            s.dropped = dict(stamps[: cfg.stamps])
            if evicted := [at for _, at in stamps[cfg.stamps :]]:  # HAZ-25-LAB-02: what they may have held
                s.evicted = (
                    max([at[0] for at in evicted] + ([s.evicted[0]] if s.evicted else [])),
                    max([at[1] for at in evicted] + ([s.evicted[1]] if s.evicted else [])),
                )
    if s.evicted is not None and s.evicted[0] < cutoff:  # all of them beyond `retention`, as in an unbounded state
        s.evicted = None
    if s.revised and (len(s.revised) > cfg.stamps or s.revised.keys() & s.results.keys()):
        revised = [(rid, at) for rid, at in s.revised.items() if rid not in s.results]
        if len(revised) != len(s.revised) or len(revised) > cfg.stamps:
            revised.sort(key=lambda x: (x[1][0], x[1][1], x[0]), reverse=True)
            s.revised = dict(revised[: cfg.stamps])


def _stamp(s: LabState, result_id: str) -> datetime | None:
    """The newest recorded time held of a result no longer kept whole, if it left a stamp."""
    held = [at[1] for at in (s.dropped.get(result_id), s.revised.get(result_id)) if at is not None]
    return max(held, default=None)


def _partners(s: LabState, kept: set[str], window: timedelta, dropping: list[StoredResult], held: _Held) -> set[str]:
    """The results a kept result derives from (LAB-CA-CORR: the closest albumin and ionised calcium of a calcium;
    LAB-CRCL: the closest weight of a creatinine), and the next closest ones (`PARTNERS` in all): kept with it, so
    that deriving it again gives the same value, also after its partner is withdrawn (the next closest then pairs,
    as it would in an unbounded state; review of issue 25), and while it is withdrawn (a newer version may issue it
    again with a value). Those of them among `dropping` (the results not kept otherwise) are what matters: a calcium
    is paired only when one of those is within its reach (both lists below are within the window + 2 days), a
    creatinine only when a weight is among them (issue 25: the cost of an event, not of the whole state)."""
    out: set[str] = set()
    reach = window + 2 * _DAY
    if held.of("total_calcium"):
        for analyte in ("albumin", "ionised_calcium"):
            gone = [r.occurred_at for r in dropping if r.analyte == analyte and r.value is not None]
            # the kept calciums within reach of one of them (issue 25: looked for by bisection, each tested as before)
            reached = {
                ca.result_id: ca
                for t in gone
                for ca in held.drawn_near("total_calcium", t, reach)
                if ca.result_id in kept and abs(ca.occurred_at - t) <= reach
            }.values()
            if not reached:
                continue
            active = held.active(analyte)
            for ca in reached:
                candidates = active[_near_slice(active, ca.occurred_at, reach, _FIRST_OF)]
                # the closest surely within the window (closest_within's order), and the closest whatever the draws'
                # precision: an amendment giving a date-only draw its hour pairs with one of those; none beyond the
                # closest in force dropped (HAZ-25-LAB-R01: an unbounded state holds that one)
                for near, bar in (
                    (_surely_within(ca, candidates, window), _bar(s, ca, analyte, window)),
                    (_within(ca, candidates, window + 2 * _DAY), _bar(s, ca, analyte, window + 2 * _DAY, False)),
                ):
                    near.sort(key=lambda tr: (abs(tr[0] - ca.occurred_at), tr[0]))
                    out.update(
                        r.result_id
                        for _, r in near[:PARTNERS]
                        if bar is None or not _beyond(ca, r.occurred_at, r.recorded_at, r.result_id, bar)
                    )
    weighed = any(r.analyte == "body_weight" and r.value is not None for r in dropping)
    creatinines = [r for r in held.of("creatinine") if r.result_id in kept]
    if weighed and creatinines and (weights := held.active("body_weight")):
        for creat in creatinines:
            at = creat.occurred_at
            weights.sort(key=lambda tr: (abs(tr[0] - at), -tr[0].timestamp()))  # _weight_for's order
            bar = _bar(s, creat, "body_weight")
            out.update(
                r.result_id
                for _, r in weights[:PARTNERS]
                if bar is None or not _beyond(creat, r.occurred_at, r.recorded_at, r.result_id, bar)
            )
    return out


Near = tuple[Analyte, TimePrecision, datetime, datetime, str]  # LabState.nearest_dropped's entries


def _near(r: StoredResult) -> Near:
    return r.analyte, r.precision, r.occurred_at, r.recorded_at, r.result_id


def _order(anchor: StoredResult, at: datetime, recorded: datetime, rid: str | None) -> tuple[object, ...]:
    """The pairing order of a partner of `anchor` (rid None: a patient record's weight): LAB-CA-CORR closest_within's
    (ties: the earlier draw), LAB-CRCL _weight_for's (ties: the later), then _active's (the most recently reported,
    then result ID; a patient record's weight after the results)."""
    gap = abs(at - anchor.occurred_at)
    if anchor.analyte == "creatinine":
        return gap, -at.timestamp(), rid is None, -recorded.timestamp(), rid or ""
    return gap, at, -recorded.timestamp(), rid or ""


def _beyond(anchor: StoredResult, at: datetime, recorded: datetime, rid: str | None, bar: Near | None) -> bool:
    """HAZ-25-LAB-R01: a partner no closer than the closest in force dropped (`bar`) is not the one an unbounded state
    pairs: neither kept nor used (LAB-CA-CORR L316; LAB-CRCL L1153-1156, "do not guess")."""
    if bar is None or rid == bar[4]:
        return False
    return _order(anchor, at, recorded, rid) > _order(anchor, bar[2], bar[3], bar[4])


def _bar(
    s: LabState, anchor: StoredResult, analyte: Analyte, window: timedelta | None = None, surely: bool = True
) -> Near | None:
    """The closest in force dropped of `analyte` for `anchor` that the pairing could take: within `window`, every
    possible hour of date-only draws within it (`surely`, _surely_within) or not (_within). One is kept per draw
    precision: the closest of each, as eligibility only narrows with the gap."""
    if anchor.result_id not in s.nearest_dropped:
        return None
    slack = _DAY if anchor.precision == "date" else timedelta(0)
    eligible = [
        n
        for n in s.nearest_dropped.get(anchor.result_id, ())
        if n[0] == analyte
        and (
            window is None
            or abs(n[2] - anchor.occurred_at)
            + ((slack + (_DAY if n[1] == "date" else timedelta(0))) if surely else timedelta(0))
            <= window
        )
    ]
    return min(eligible, key=lambda n: _order(anchor, n[2], n[3], n[4]), default=None)


#: the partners of LAB-CA-CORR (L316) and LAB-CRCL (L1153-1156), and the reverse
_PARTNERS_OF: Final[dict[str, tuple[Analyte, ...]]] = {
    "total_calcium": ("albumin", "ionised_calcium"),
    "creatinine": ("body_weight",),
}
_PARTNER_OF: Final = {p: anchor for anchor, partners in _PARTNERS_OF.items() for p in partners}


def _note_dropped(s: LabState, keep: set[str], window: timedelta, dropping: list[StoredResult], held: _Held) -> None:
    """HAZ-25-LAB-R01: for each kept calcium (creatinine), the closest albumin and ionised calcium within reach (weight)
    in force that retention drops, one per draw precision, kept in `LabState.nearest_dropped`."""
    gone = [r for r in dropping if r.result_id not in keep and r.value is not None and r.analyte in _PARTNER_OF]
    if not gone:
        return
    anchors = {_PARTNER_OF[r.analyte] for r in gone}
    reach = window + 2 * _DAY
    changed: dict[str, list[Near]] = {}
    # a calcium only within reach of one (issue 25: looked for by bisection), every creatinine; in the table's order
    near_calcium = {
        ca.result_id
        for r in gone
        if r.analyte in _PARTNERS_OF["total_calcium"]
        for ca in held.drawn_near("total_calcium", r.occurred_at, reach)
    }
    for anchor in (
        r
        for a in sorted(anchors)
        for r in held.of(a)
        if r.result_id in keep and (a == "creatinine" or r.result_id in near_calcium)
    ):
        analytes = _PARTNERS_OF[anchor.analyte]
        near = [
            r
            for r in gone
            if r.analyte in analytes
            and (anchor.analyte == "creatinine" or abs(r.occurred_at - anchor.occurred_at) <= reach)
        ]
        if not near:
            continue
        entries = {(n[0], n[1]): n for n in s.nearest_dropped.get(anchor.result_id, ())}
        for r in near:
            noted = entries.get((r.analyte, r.precision))
            if noted is None or _order(anchor, r.occurred_at, r.recorded_at, r.result_id) < _order(
                anchor, noted[2], noted[3], noted[4]
            ):
                entries[(r.analyte, r.precision)] = _near(r)
        changed[anchor.result_id] = sorted(entries.values())
    if changed:
        s.nearest_dropped = {**s.nearest_dropped, **changed}


#: a bar's recorded time and result ID that order it before any partner at its draw time (review RL)
_FIRST: Final = (datetime.max.replace(tzinfo=ZoneInfo("UTC")), "")


def _bar_dropped(s: LabState, anchor: StoredResult, reach: timedelta) -> None:
    """Review RL (HAZ-25-LAB-R01 residuals): a calcium (creatinine) new to the held results, or whose draw moved, was
    not held when its partners were dropped, so `_note_dropped` never saw them: any dropped partner may be the closest
    the unbounded state pairs. Its bar is the newest dropped partner's draw time (none dropped is closer than that),
    or its own draw when it is older than that: no farther partner is used, the partner is said missing instead
    (LAB-CA-CORR L316; LAB-CRCL L1153-1156, "do not guess"). A calcium's only within its pairing's `reach`."""
    entries = {(n[0], n[1]): n for n in s.nearest_dropped.get(anchor.result_id, ())}
    added = False
    for analyte in _PARTNERS_OF[anchor.analyte]:
        if (dropped := s.partner_dropped.get(analyte)) is None:
            continue
        bar: Near = (analyte, "time", min(dropped, anchor.occurred_at), *_FIRST)
        if anchor.analyte == "total_calcium" and anchor.occurred_at - bar[2] > reach:
            continue  # no dropped albumin or ionised calcium within 48 h (+ 2 days for date-only draws)
        held = entries.get((analyte, "time"))
        if held is None or _order(anchor, bar[2], bar[3], bar[4]) < _order(anchor, held[2], held[3], held[4]):
            entries[(analyte, "time")] = bar
            added = True
    if added:
        s.nearest_dropped = {**s.nearest_dropped, anchor.result_id: sorted(entries.values())}


def _apply_patient(s: LabState, r: PatientRecord) -> None:
    """Absent fields are unknown: they leave what is known unchanged (never defaulted)."""

    prov = {"occurred_at": r.occurred_at, "recorded_at": r.recorded_at, "event_id": r.event_id}
    if r.birth_date is not None and (b := Fact[date](value=r.birth_date, **prov)).newer_than(s.birth_date):
        s.birth_date = b
    if r.sex is not None and (x := Fact[str](value=r.sex, **prov)).newer_than(s.sex):
        s.sex = x
    if r.weight_kg is not None:
        measured = r.occurred_at
        if r.weight_measured_at is not None:
            measured = datetime.combine(r.weight_measured_at, datetime.min.time(), r.occurred_at.tzinfo)
        w = Fact[float](value=r.weight_kg, occurred_at=measured, recorded_at=r.recorded_at, event_id=r.event_id)
        if w.newer_than(s.weight_kg):
            s.weight_kg = w


#: review RL (HAZ-25-LAB-02 residual): the dead letter's reason for a message whose results the evicted stamps'
#: watermark cannot place, when nothing else of it is published
UNPLACED: Final = (
    "LAB-CORRECTION: a {analyte} result with no version held, drawn and recorded no later than versions of results "
    "no longer held (more than LAB_RESULT_STAMPS of this patient's results dropped within LAB_RETENTION_DAYS), cannot "
    "be placed: it may be a late older version of one of them (which must not overwrite the newer one) or a new "
    "result. Not applied, nor the rest of this message (none of it published): check it with the laboratory; a new "
    "result sent again with its current recorded time is applied"
)
#: the same, in French, on each result published from a message that also held such a result (its other results are
#: applied: a new value is never held back for an old one)
UNPLACED_NOTE: Final = (
    "Un autre résultat de ce message ({analyte}) n'a pas pu être placé : sans version connue, prélevé et enregistré "
    "avant des résultats qui ne sont plus conservés, il peut être une version ancienne arrivée en retard ou un "
    "résultat nouveau. Il n'est pas pris en compte : à vérifier auprès du laboratoire (LAB-CORRECTION)."
)


class _Unplaced(Exception):
    """A result the evicted stamps' watermark cannot place (HAZ-25-LAB-02): see `UNPLACED`."""


def _apply_result(s: LabState, lab: LabInput, cfg: LabConfig, horizon: datetime | None = None) -> NormalisedLab | None:
    """LAB-CORRECTION: a newer version of a result_id replaces the older one (by recorded_at); an older
    version arriving late changes nothing; entered-in-error withdraws it. `horizon`: the last retention's."""
    r = lab.result
    previous = s.results.get(r.result_id)
    if previous is not None and previous.recorded_at >= r.recorded_at and not _corrects_at_tie(previous, lab):
        return None
    stamp = _stamp(s, r.result_id) if previous is None else None
    # HAZ-25-LAB-02 (LAB-CORRECTION): a result drawn where stamps were evicted (within `retention`) may be one of
    # them, whose newest version was recorded at the latest at `evicted[1]`: a version no newer is never published again
    guessed = (
        previous is None
        and stamp is None
        and s.evicted is not None
        and horizon is not None
        and horizon <= r.occurred_at <= s.evicted[0]
    )
    if guessed:
        assert s.evicted is not None
        stamp = s.evicted[1]
    # an older version of a result no longer kept whole changes nothing (issue 25); at an equal time, a correction of
    # a result dropped final (without a `revised` stamp) is the newer version
    tie_corrects = stamp == r.recorded_at and r.result_id not in s.revised and r.status != "final"
    if stamp is not None and stamp >= r.recorded_at and not tie_corrects:
        if guessed:  # review RL: never ignored silently (apply_ingested: a dead letter, or a note on the others)
            raise _Unplaced
        return None
    if guessed:  # held as a stamp would (HAZ-25-LAB-R02: its withdrawal also withdraws what was derived from it)
        s.dropped = {**s.dropped, r.result_id: (r.occurred_at, stamp or r.recorded_at)}
    # review RL (LAB-CORRECTION): the latest draw of its versions, where an earlier one was drawn later (LabState.moved)
    earlier = (
        s.moved.get(r.result_id),
        previous.occurred_at if previous else None,
        s.dropped.get(r.result_id, (None,))[0],
    )
    latest = max((t for t in earlier if t is not None), default=r.occurred_at)
    if latest > r.occurred_at:
        s.moved = {**s.moved, r.result_id: latest}
    elif r.result_id in s.moved:
        s.moved = {k: v for k, v in s.moved.items() if k != r.result_id}
    status = _status(r.status)
    value = None if status == "withdrawn" else lab.value
    # issue 24: no value (FHIR dataAbsentReason) is kept as "no value in force"; it is published only as the
    # withdrawal of a value it replaces, never as a value
    # (a result no longer kept whole held a value: withdrawn too, review of issue 25)
    forgotten = previous is None and _stamp(s, r.result_id) is not None
    silent = lab.absent is not None and not forgotten and (previous is None or previous.status == "withdrawn")
    s.results[r.result_id] = StoredResult(
        result_id=r.result_id,
        event_id=r.event_id,
        analyte=lab.analyte,
        value=value,
        unit=lab.unit,
        occurred_at=r.occurred_at,
        recorded_at=r.recorded_at,
        status=status,
        comparator=r.comparator,
        precision=r.occurred_at_precision,
    )
    if lab.analyte in _PARTNERS_OF and (previous is None or previous.occurred_at != r.occurred_at):
        _bar_dropped(s, s.results[r.result_id], cfg.ca_albumin_window + 2 * _DAY)
    if silent:
        return None
    rule_ids = ["LAB-UNITS"] + (["LAB-CORRECTION"] if status != "final" else [])
    interpretation: str | None = None
    notes: list[str] = list(lab.notes)
    if lab.absent is not None:
        notes.append(f"Pas de valeur (dataAbsentReason : {lab.absent}) : la valeur précédente ne tient plus.")
    if r.comparator is not None and value is not None:
        notes.append(f"Résultat censuré ({r.comparator} {r.value:g} {r.unit}) : une borne, jamais une valeur exacte.")
    if r.occurred_at_precision == "date":
        notes.append("Date de prélèvement sans heure : l'heure n'est pas connue (elle n'est jamais supposée).")
    if value is not None and lab.analyte == "vitamin_d_25oh":
        # Tableau 1 gives both units: a result sent in nmol/L is classed in nmol/L (issue 9.10)
        nmol = value_in("vitamin_d_25oh", r.value, r.unit, "nmol/L") if r.value is not None and r.unit else None
        interpretation = (
            vitamin_d_bounded_class(nmol, "nmol/L", r.comparator)
            if nmol is not None
            else vitamin_d_bounded_class(value, "ng/mL", r.comparator)
        )
        if interpretation is None:
            notes.append("Vitamine D censurée : la classe du Tableau 1 n'est pas déterminée par cette borne.")
        rule_ids.append("LAB-VITD")
    elif value is not None and lab.analyte == "ctx_serum":
        why: str | None = "heure de prélèvement inconnue"  # a date-only draw: LAB-CTX needs the hour
        if r.occurred_at_precision == "time":
            _, why = ctx_interpretability(r.occurred_at, r.fasting, cfg.hospital_tz)
        interpretation = "interpretable" if why is None else "not_interpretable"
        if why is not None:
            notes.append(f"CTX non interprétable : {why} (à doser à jeun avant 9 h).")
        rule_ids.append("LAB-CTX")
    elif value is not None and lab.analyte == "ntx_urine":
        notes += [
            "NTX urinaire : marqueur de résorption le plus étudié ; élevé au diagnostic, il signale un "
            "risque accru d'événement osseux et de décès."
        ]
        rule_ids.append("LAB-CTX")
    return NormalisedLab(
        event_id=derived_id("normalised", r.event_id),
        patient_id=r.patient_id,
        occurred_at=r.occurred_at,
        recorded_at=r.recorded_at,
        source=SERVICE,
        analyte=lab.analyte,
        result_id=r.result_id,
        value=value,
        unit=lab.unit,
        status=status,
        original_value=r.value,
        original_unit=r.unit,
        loinc=lab.loinc,
        rule_ids=rule_ids,
        fasting=r.fasting,
        interpretation=interpretation,
        notes=notes,
        comparator=r.comparator,
        occurred_at_precision=r.occurred_at_precision,
    )


def _corrects_at_tie(previous: StoredResult, lab: LabInput) -> bool:
    """LAB-CORRECTION at an equal recorded time (a sender that did not date the new version): a correction (amended,
    corrected, entered in error, no value) is the newer version of a final result, never the reverse."""
    same_time = previous.recorded_at == lab.result.recorded_at
    return same_time and previous.status == "final" and lab.result.status != "final"


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


def _derived_status(sources: list[StoredResult]) -> Status:
    if sources[0].status == "withdrawn":
        return "withdrawn"
    return "amended" if any(x.status == "amended" for x in sources) else "final"


def _recompute_corrected_calcium(
    s: LabState,
    patient_id: str,
    calcium_draws: set[str],
    window: timedelta,
    since: datetime | None = None,
    held: _Held | None = None,
) -> list[NormalisedLab]:
    """LAB-CA-CORR for the given calcium draws; publish only what changed."""
    albumins, ionised = _active(s, "albumin", held=held), _active(s, "ionised_calcium", held=held)
    out: list[NormalisedLab] = []
    # review RQ: equal draw times by result ID, never in the set's (hash seed's) order: a replay publishes the same
    for ca in sorted((s.results[r] for r in calcium_draws), key=lambda r: (r.occurred_at, r.result_id)):
        # issue 25: among those drawn near it (bisection), the same closest as among all (closest_within's order)
        near_alb = albumins[_near_slice(albumins, ca.occurred_at, window, _FIRST_OF)]
        near_ion = ionised[_near_slice(ionised, ca.occurred_at, window, _FIRST_OF)]
        alb = closest_within(ca.occurred_at, _surely_within(ca, near_alb, window), window)
        ion = closest_within(ca.occurred_at, _surely_within(ca, near_ion, window), window)
        # HAZ-25-LAB-R01: a closer one in force was dropped: "albumin missing" (insufficient data), never a farther
        # one (LAB-CA-CORR L316); the usual text, which notification translates
        if _unproven(s, ca, "albumin", alb, window):
            alb = None
        if _unproven(s, ca, "ionised_calcium", ion, window):
            ion = None
        key = (ca.event_id, ca.status, alb and alb.event_id, ion and ion.event_id)
        if _unchanged(s, f"corrected:{ca.result_id}", key):  # issue 25: nothing to publish, so nothing to make
            continue
        sources = [x for x in (ca, alb, ion) if x is not None and x.value is not None]
        value: float | None = None
        missing: list[str] = []
        comparator: Comparator | None = None
        if ca.value is not None and alb is not None and alb.value is not None:
            # unrounded: LAB-CA-CRISIS is a strict > 3.5 mmol/L (3.504 is a crisis); display rounding only
            value = corrected_calcium(ca.value, alb.value)
            # increasing in calcium, decreasing in albumin: a censored input gives a bound, or nothing
            comparator, bounded = combine_bounds([ca.comparator, flip(alb.comparator)])
            if not bounded:
                value = None
                missing.append("exact calcium or albumin (censored results in opposite directions give no bound)")
        elif ca.value is not None:
            missing.append(f"albumin drawn within {int(window.total_seconds() // 3600)} h of the calcium")
        out += _publish_derived(
            s,
            patient_id,
            "corrected_calcium",
            f"corrected:{ca.result_id}",
            ca,
            sources,
            value,
            "mmol/L",
            "LAB-CA-CORR",
            missing,
            key=key,
            comparator=comparator,
            since=since,
        )
    return out


_DAY = timedelta(days=1)


def _unproven(s: LabState, ca: StoredResult, analyte: Analyte, paired: StoredResult | None, window: timedelta) -> bool:
    bar = _bar(s, ca, analyte, window)
    if bar is None:
        return False
    return paired is None or _beyond(ca, paired.occurred_at, paired.recorded_at, paired.result_id, bar)


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


def _weights(s: LabState, held: _Held | None = None) -> list[Fact[float]]:
    """The weights known, from lab results and patient records (once per derivation, issue 25)."""
    candidates: list[Fact[float]] = [
        Fact[float](value=r.value, occurred_at=r.occurred_at, recorded_at=r.recorded_at, event_id=r.event_id)
        for _, r in _active(s, "body_weight", held=held)
        if r.value is not None
    ]
    if s.weight_kg is not None:
        candidates.append(s.weight_kg)
    return candidates


def _weight_for(s: LabState, at: datetime, weights: list[Fact[float]] | None = None) -> Fact[float] | None:
    """The weight measured closest in time to `at` (ties: the later), from lab results and patient records."""
    candidates = _weights(s) if weights is None else weights
    return min(candidates, key=lambda w: (abs(w.occurred_at - at), -w.occurred_at.timestamp()), default=None)


def _weighed(s: LabState, held: _Held | None = None) -> dict[uuid.UUID, StoredResult]:
    """The weights sent as lab results, by event ID (the first held of each; issue 25: once per derivation)."""
    out: dict[uuid.UUID, StoredResult] = {}
    for r in s.results.values() if held is None else held.of("body_weight"):
        if r.analyte == "body_weight":
            out.setdefault(r.event_id, r)
    return out


def _weight_rid(s: LabState, weight: Fact[float], weighed: dict[uuid.UUID, StoredResult]) -> str | None:
    """The result ID of a weight sent as a lab result; None for a patient record's."""
    if s.weight_kg is not None and weight.event_id == s.weight_kg.event_id:
        return None
    held = weighed.get(weight.event_id)
    return None if held is None else held.result_id


def _weight_comparator(weight: Fact[float] | None, weighed: dict[uuid.UUID, StoredResult]) -> Comparator | None:
    """The comparator of a weight sent as a (censored) lab result; a patient record's weight is exact."""
    held = None if weight is None else weighed.get(weight.event_id)
    return None if held is None else held.comparator


def _unchanged(s: LabState, result_id: str, key: tuple[object, ...]) -> bool:
    """The derived value `result_id` was last published from the inputs `key` (`_publish_derived`'s signature): it
    would publish nothing (issue 25: checked before its value and references are made)."""
    return s.published_derived.get(result_id) == "|".join(map(str, key))


def _recompute_clearance(
    s: LabState,
    patient_id: str,
    cfg: LabConfig,
    since: datetime | None = None,
    only: set[str] | None = None,
    held: _Held | None = None,
) -> list[NormalisedLab]:
    """LAB-CRCL for every creatinine held (not only the newest: a planner reads the clearance at the start of
    an anti-resorptive, so an earlier one must not keep naming inputs that are now known); withdraws the
    clearance of a withdrawn creatinine. Publishes only what changed. `only`: the creatinines a delivery brought
    when it brought no weight and no patient record (issue 25: no other clearance's inputs changed)."""
    out: list[NormalisedLab] = []
    if only is not None and len(only) == 1:  # issue 25: the one creatinine a delivery brought
        brought = [s.results[rid] for rid in only if rid in s.results]
    elif only is not None:
        brought = [r for r in s.results.values() if r.result_id in only]
    else:  # every creatinine, in the table's order
        brought = held.of("creatinine") if held is not None else list(s.results.values())
    for r in brought:  # clearances derived from a creatinine that is now withdrawn
        if r.analyte == "creatinine" and r.status == "withdrawn":
            out += _publish_derived(
                s,
                patient_id,
                "creatinine_clearance",
                f"crcl:{r.result_id}",
                r,
                [],
                None,
                "mL/min",
                "LAB-CRCL",
                [],
                key=(r.event_id, "withdrawn"),
                since=since,
            )
    weights, weighed = _weights(s, held), _weighed(s, held)
    creatinines = _active(s, "creatinine", brought if only is not None else None, held)
    memo: dict[tuple[object, ...], SourceRef] = {}  # weight, age and sex references, while the facts stay the same
    for _, creat in sorted(creatinines, key=lambda tr: (tr[0], tr[1].recorded_at)):
        out += _clearance(s, patient_id, creat, cfg, since, weights, weighed, memo)
    return out


def _clearance(
    s: LabState,
    patient_id: str,
    creat: StoredResult,
    cfg: LabConfig,
    since: datetime | None = None,
    weights: list[Fact[float]] | None = None,
    weighed: dict[uuid.UUID, StoredResult] | None = None,
    memo: dict[tuple[object, ...], SourceRef] | None = None,
) -> list[NormalisedLab]:
    weighed = _weighed(s) if weighed is None else weighed
    weight = _weight_for(s, creat.occurred_at, weights)
    missing: list[str] = []
    # HAZ-25-LAB-R01: a closer weight in force was dropped: "weight" missing (insufficient data), never a farther
    # one (LAB-CRCL L1153-1156: "when any of them is missing, say so. Do not guess")
    if (bar := _bar(s, creat, "body_weight")) is not None and (
        weight is None or _beyond(creat, weight.occurred_at, weight.recorded_at, _weight_rid(s, weight, weighed), bar)
    ):
        weight = None
    if weight is None:
        missing.append("weight")
    elif abs(weight.occurred_at - creat.occurred_at) > cfg.weight_max_age:
        # LAB-CRCL: a weight that old no longer describes the patient (issue 9.9): never dosed from
        when = "before" if weight.occurred_at < creat.occurred_at else "after"
        missing.append(
            f"weight to measure again (last measured {weight.occurred_at.date()}, over {cfg.weight_max_age.days} "
            f"days {when} the creatinine)"
        )
    missing += [name for name, f in (("age (birth date)", s.birth_date), ("sex", s.sex)) if f is None]
    if s.sex is not None and s.sex.value not in ("female", "male"):
        missing.append("sex (female or male, for the Cockcroft-Gault factor)")
    # issue 12: inversely proportional to the creatinine, proportional to the weight; a censored input gives a bound
    weight_cmp = _weight_comparator(weight, weighed)
    comparator, bounded = combine_bounds([flip(creat.comparator), weight_cmp])
    if weight is not None and not missing and weight.value <= 0:
        missing.append("weight")
    if not missing and not bounded:
        missing.append("exact creatinine or weight (censored results in opposite directions give no bound)")
    key: tuple[object, ...] = (creat.event_id, creat.status, *(f and f.event_id for f in (weight, s.birth_date, s.sex)))
    if missing:
        key += ("|".join(missing),)
    result_id = f"crcl:{creat.result_id}"
    if _unchanged(s, result_id, key):  # issue 25: nothing to publish, so nothing to make
        return []
    refs = [creat.ref()]
    value: float | None = None
    if not missing:
        assert weight is not None and s.birth_date is not None and s.sex is not None
        age = age_in_years(s.birth_date.value, creat.occurred_at.date())
        assert creat.value is not None
        # unrounded: LAB-CRCL thresholds are strict (< 30 mL/min); rounding is for display only (issue 9.10)
        value = cockcroft_gault(age, weight.value, creat.value, s.sex.value == "female")
        # issue 25: the references of one derivation's inputs (frozen) made once for all its creatinines
        memo = {} if memo is None else memo
        refs += [
            memo.get(("weight", id(weight), weight_cmp))
            or memo.setdefault(
                ("weight", id(weight), weight_cmp),
                SourceRef(
                    event_id=weight.event_id,
                    analyte="body_weight",
                    value=weight.value,
                    unit="kg",
                    occurred_at=weight.occurred_at,
                    comparator=weight_cmp,
                ),
            ),
            memo.get(("age", age))
            or memo.setdefault(
                ("age", age),
                SourceRef(
                    event_id=s.birth_date.event_id,
                    analyte="age",
                    value=age,
                    unit="years",
                    occurred_at=s.birth_date.occurred_at,
                ),
            ),
            memo.get(("sex",))
            or memo.setdefault(
                ("sex",),
                SourceRef(
                    event_id=s.sex.event_id,
                    analyte="sex",
                    value=str(s.sex.value),
                    unit=None,
                    occurred_at=s.sex.occurred_at,
                ),
            ),
        ]
    return _publish_derived(
        s,
        patient_id,
        "creatinine_clearance",
        result_id,
        creat,
        [creat],
        value,
        "mL/min",
        "LAB-CRCL",
        missing,
        key=key,
        refs=refs,
        also_recorded=[f.recorded_at for f in (weight, s.birth_date, s.sex) if f is not None],
        comparator=comparator if value is not None else None,
        since=since,
    )


def _publish_derived(
    s: LabState,
    patient_id: str,
    analyte: Analyte,
    result_id: str,
    anchor: StoredResult,
    sources: list[StoredResult],
    value: float | None,
    unit: str,
    rule_id: str,
    missing: list[str],
    key: tuple[object, ...],
    refs: list[SourceRef] | None = None,
    also_recorded: list[datetime] | None = None,
    comparator: Comparator | None = None,
    since: datetime | None = None,
) -> list[NormalisedLab]:
    """Publish a derived value if its inputs changed. Its recorded_at is the newest of all its inputs' and of the
    delivery that made it change (`since`), so a re-derivation (e.g. when the weight arrives after the creatinine, or
    is withdrawn) is never older than what it replaces; and its event ID names that version, so a value that returns
    to an earlier state is not taken downstream for a second delivery of the earlier one (LAB-CORRECTION)."""
    signature = "|".join(map(str, key))
    if s.published_derived.get(result_id) == signature:
        return []
    if anchor.status == "withdrawn" and result_id not in s.published_derived and _stamp(s, anchor.result_id) is None:
        return []  # nothing was derived from it (a dropped result's derived value was: withdrawn with it, issue 25)
    s.published_derived[result_id] = signature
    recorded_at = max(
        [x.recorded_at for x in [anchor, *sources]] + (also_recorded or []) + ([since] if since is not None else [])
    )
    eid = derived_id(analyte, signature, recorded_at.isoformat())  # the same text as from `key`
    status = _derived_status([anchor, *sources])
    return [
        NormalisedLab(
            event_id=eid,
            patient_id=patient_id,
            occurred_at=anchor.occurred_at,
            recorded_at=recorded_at,
            source=SERVICE,
            analyte=analyte,
            result_id=result_id,
            value=None if status == "withdrawn" else value,
            unit=unit,
            status=status,
            rule_ids=[rule_id],
            derived_from=refs if refs is not None else [x.ref() for x in sources],
            missing=[] if status == "withdrawn" else missing,
            comparator=None if status == "withdrawn" else comparator,
            occurred_at_precision=anchor.precision,
        )
    ]
