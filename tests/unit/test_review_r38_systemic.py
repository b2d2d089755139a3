"""Review r38-sys (independent) of d249e3d (h38-sys, issue 25, HAZ-25-SYS-05): the systemic planner's span bounds and
re-offered deadlines compared in PARSED_UTC (`rules.span_utc`), lab-table retention memoised (`LAB_KEPT`) and the
drug fold's earliest unfolded date memoised (`FIRST_PENDING`). Claim: no output or stored state changes.

What is tried here, each against the uncached path (the same code with `span_utc` the identity, or every cache cleared
before each call / event):
- `AsOf`'s comparisons (`before`, `not_after`, `is_future`) with `now` and the facts' times in every tzinfo kind that
  can be built (pydantic's parsed offsets, the standard library's `timezone`, ZoneInfo with DST folds, min/max
  bounds and their overflow), `now` exactly at an edge: the same answers, deadlines (the very objects) and span;
- a memoised decision reused at any `now` inside its span, exactly at a deadline it offered: the same deadlines;
- `_lab_table` called warm over a table replaced (same length, a result withdrawn or corrected), a clock moving back
  and forth, course days changing with the same table, and from racing threads: what it computes cold;
- whole generated histories (every profile, treatments amended, entered in error, late) run warm from the first event
  to the last, and then cold with every cache cleared before each event; also warm with the state parsed back from
  JSON before each event (new objects).
Note: the author's `test_issue25_systemic_spans._run` clears the shared caches before each cold event, so the warm
run never finds an entry from its own earlier events (it holds other table objects): warm here is run whole first.

Defect found (a strict xfail, fixed since): `LAB_KEPT` keyed a table by its results' integer instants, but `_lab_table`
compares `occurred_at > ahead` as Python does: two times of one ZoneInfo object compare by their wall clocks (fold
ignored). Around a DST fall-back, two clocks with the same instants' side but other wall-clock sides shared an entry.
Fixed: `_lab_table` memoises only a clock of a fixed offset (`rules.fixed_offset`), as every parsed time is."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from contracts.base import Message
from contracts.clinical import NormalisedLab
from contracts.hospital import ClinicalAssessment
from services.systemic_planner import memo, retention
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event
from services.systemic_planner.retention_memo import FIRST_PENDING, LAB_KEPT
from services.systemic_planner.state import LabFact
from tests.unit.histories import PROFILES, _dump, in_racing_threads, systemic_history

PARIS = ZoneInfo("Europe/Paris")
PARSE = TypeAdapter(datetime)
RECENCY = r.Recency()
#: around the French DST change back (2025-10-26, 03:00 CEST -> 02:00 CET) and forward (2025-03-30)
FALL = datetime(2025, 10, 25, 23, 0, tzinfo=UTC)
SPRING = datetime(2025, 3, 30, 0, 0, tzinfo=UTC)


def _clear() -> None:
    memo.clear()
    LAB_KEPT.clear()
    FIRST_PENDING.clear()


def _as(t: datetime, kind: int) -> datetime:
    """The instant `t` (UTC) in one of the tzinfo kinds a time can hold."""
    if kind == 0:
        return r.as_parsed_utc(t)
    if kind == 1:  # parsed with +01:00 or +02:00 (each parse its own tzinfo object)
        return PARSE.validate_json(f'"{t.astimezone(PARIS).isoformat()}"')
    if kind == 2:  # the standard library's fixed offsets
        return t.astimezone(timezone(t.astimezone(PARIS).utcoffset() or timedelta(0)))
    if kind == 3:  # the hospital's zone (DST; fold set on the repeated hour)
        return t.astimezone(PARIS)
    if kind == 4:
        return t.astimezone(UTC)
    return PARSE.validate_json(f'"{t.astimezone(timezone(timedelta(hours=-5))).isoformat()}"')


TIMES = st.integers(-2 * 3600, 6 * 3600).map(lambda s: FALL + timedelta(seconds=s // 60 * 60, microseconds=s % 3))
KINDS = st.integers(0, 5)


def _probe(at: r.AsOf, calls: list[tuple[str, datetime]]) -> tuple[list[bool], list[datetime]]:
    answers = [getattr(at, name)(t) for name, t in calls]
    return answers, list(at.deadlines)


@settings(max_examples=400, deadline=None)
@given(
    now=TIMES,
    now_kind=KINDS,
    facts=st.lists(st.tuples(st.sampled_from(["before", "not_after", "is_future"]), TIMES, KINDS), max_size=6),
    exact=st.booleans(),
)
def test_asof_answers_deadlines_and_span_as_with_the_times_given(
    now: datetime, now_kind: int, facts: list[tuple[str, datetime, int]], exact: bool
) -> None:
    """`now` exactly at a fact's time when `exact`; the span and every deadline as without `span_utc`."""
    calls = [(name, _as(now if exact and i == 0 else t, k)) for i, (name, t, k) in enumerate(facts)]
    at_now = _as(now, now_kind)
    changed = r.AsOf(now=at_now, recency=RECENCY)
    got = _probe(changed, calls)
    with mock.patch.object(r, "span_utc", lambda t: t):  # the base's `_side`: the edge as given
        base = r.AsOf(now=at_now, recency=RECENCY)
        want = _probe(base, calls)
    assert got[0] == want[0]
    assert [(d, d.tzinfo, d.fold) for d in got[1]] == [(d, d.tzinfo, d.fold) for d in want[1]]  # published as given
    assert (changed.lo, changed.hi) == (base.lo, base.hi)
    for _, t in calls:  # either side of every edge, and at it: inside the span or not, the same
        for p in (t - timedelta(microseconds=1), t, t + timedelta(microseconds=1)):
            for q in (p, r.span_utc(p)):
                assert (changed.lo <= q < changed.hi) == (base.lo <= q < base.hi)


def test_span_utc_sentinels_and_overflow() -> None:
    assert r.span_utc(r.EARLIEST) is r.EARLIEST and r.span_utc(r.LATEST) is r.LATEST
    for t in (datetime.max.replace(tzinfo=timezone(timedelta(hours=-12))), datetime.min.replace(tzinfo=UTC)):
        u = r.span_utc(t)
        assert u == t
    high = datetime.max.replace(tzinfo=timezone(timedelta(hours=-1)))
    assert r.span_utc(high) is high  # its UTC is past datetime.max: left as it is, compared as before
    at = r.AsOf(now=r.as_parsed_utc(FALL), recency=RECENCY)
    got = (at.before(high), at.not_after(high), at.is_future(high), at.lo, at.hi, at.deadlines)
    with mock.patch.object(r, "span_utc", lambda t: t):
        base = r.AsOf(now=r.as_parsed_utc(FALL), recency=RECENCY)
        assert got == (base.before(high), base.not_after(high), base.is_future(high), base.lo, base.hi, base.deadlines)


@settings(max_examples=200, deadline=None)
@given(
    first=TIMES,
    offsets=st.lists(st.integers(-3 * 3600, 3 * 3600), min_size=1, max_size=5),
    facts=st.lists(st.tuples(TIMES, KINDS), min_size=1, max_size=4),
    at_deadline=st.booleans(),
)
def test_a_memo_hit_offers_the_deadlines_computing_again_offers(
    first: datetime, offsets: list[int], facts: list[tuple[datetime, int]], at_deadline: bool
) -> None:
    """A memoised decision reused at any `now` of its span, and exactly at a deadline it offered: the same value,
    the same deadlines (the very objects) as a cold decision."""
    held = [_as(t, k) for t, k in facts]

    def decide(at: r.AsOf) -> tuple[bool, ...]:
        return tuple(at.not_after(t) for t in held) + tuple(at.is_future(t) for t in held)

    _clear()
    key = (object(),)
    nows = [first + timedelta(seconds=s) for s in offsets]
    if at_deadline:
        nows += [t + timedelta(microseconds=1) for t in held] + [t - RECENCY.future_tolerance for t in held]
    try:
        for now in nows:
            now = r.as_parsed_utc(now)
            warm = r.AsOf(now=now, recency=RECENCY)
            value = memo.memo("r38", warm, key, lambda w=warm: decide(w))  # type: ignore[misc]
            cold = r.AsOf(now=now, recency=RECENCY, memo=False)
            assert value == decide(cold)
            assert [(d, d.tzinfo) for d in warm.deadlines] == [(d, d.tzinfo) for d in cold.deadlines]
            assert warm.next_due() == cold.next_due()
    finally:
        _clear()


# ---- LAB_KEPT -------------------------------------------------------------------------------------------------
def _fact(at: datetime, n: int, withdrawn: bool = False, value: float | None = 30.0) -> LabFact:
    return LabFact(
        value=value,
        withdrawn=withdrawn,
        occurred_at=at,
        recorded_at=at + timedelta(hours=1),
        event_id=uuid.UUID(int=n + 1),
        interpretation="interpretable",
    )


def _kept_cold(table: dict[str, LabFact], days: tuple[date, ...], ahead: datetime) -> dict[str, LabFact]:
    if len(table) <= retention.RESULTS_KEPT and not any(v.withdrawn for v in table.values()):
        return table
    return retention._lab_table_kept(table, tuple(sorted(set(days))), ahead)


OPS = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 40 * 24), st.integers(0, 5), st.integers(0, 11)),
    min_size=5,
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, seed=st.integers(0, 1000))
def test_lab_retention_warm_is_cold_over_replacements_clock_moves_and_course_days(
    ops: list[tuple[int, int, int, int]], seed: int
) -> None:
    """A table replaced (a result withdrawn, corrected, a late result older than the clock: same length or not),
    the clock moving on and back, the course days changing while the table stays the same object: warm == cold."""
    rng = random.Random(seed)
    base = datetime(2025, 10, 1, tzinfo=UTC)
    table: dict[str, LabFact] = {}
    n = 0
    days: tuple[date, ...] = ()
    _clear()
    for op, hours, kind, pick in ops:
        at = _as(base + timedelta(hours=hours), kind % 3 if kind != 3 else 1)  # fixed offsets only (as parsed)
        if op == 0 or not table:
            n += 1
            table = {**table, f"r{n}": _fact(at, n, value=rng.choice([None, 20.0, 40.0]))}
        elif op == 1:  # a result withdrawn: the same length, other content
            k = sorted(table)[pick % len(table)]
            table = {**table, k: table[k].model_copy(update={"withdrawn": True})}
        elif op == 2:  # a correction of one: same key and length, another date
            k = sorted(table)[pick % len(table)]
            table = {**table, k: table[k].model_copy(update={"occurred_at": at, "value": 12.0})}
        elif op == 3:
            days = tuple({(base + timedelta(days=pick * 3)).date(), *days[: pick % 3]})
        ahead = _as(base + timedelta(hours=hours + (pick - 6) * 24), kind % 3)  # on and back
        warm = retention._lab_table(table, lambda d=days: d, ahead)  # type: ignore[misc]
        cold = _kept_cold(table, days, ahead)
        assert warm == cold and list(warm) == list(cold)
        assert (warm is table) == (cold is table)
    _clear()


def test_lab_retention_from_racing_threads_is_cold() -> None:
    """The runtime retains in worker threads: racing callers on shared tables get what a cold call gives."""
    base = datetime(2025, 10, 1, tzinfo=UTC)
    tables = [
        {f"r{i}": _fact(_as(base + timedelta(hours=7 * i + j), i % 3), i, withdrawn=i % 5 == 0) for i in range(12)}
        for j in range(6)
    ]
    aheads = [_as(base + timedelta(hours=h), h % 3) for h in range(0, 90, 3)]
    want = {(t, a): _kept_cold(tables[t], (), aheads[a]) for t in range(len(tables)) for a in range(len(aheads))}
    _clear()

    def work(k: int) -> None:
        rng = random.Random(k)
        for _ in range(400):
            t, a = rng.randrange(len(tables)), rng.randrange(len(aheads))
            assert retention._lab_table(tables[t], tuple, aheads[a]) == want[(t, a)]
            if rng.random() < 0.01:
                LAB_KEPT.clear()

    assert in_racing_threads(work) == []
    _clear()


# ---- whole histories: warm from the first event to the last, then cold ------------------------------------------
def _outputs(events: list[tuple[Message, datetime]], cold: bool, reparse: bool = False) -> Iterator[tuple[Any, ...]]:
    _clear()
    s = SystemicState()
    for e, decided in events:
        if cold:
            _clear()
        if reparse:
            s = SystemicState.model_validate_json(s.model_dump_json())
        s, out = apply_event(s, e, r.AsOf(now=decided, recency=RECENCY))
        yield _dump(out), s.next_due, s.model_dump_json()
    _clear()


def _program(seed: int, length: int) -> list[tuple[int, int, int, int, int]]:
    rng = random.Random(seed)
    return [
        (rng.randrange(13), rng.randrange(31), rng.randrange(31), rng.randrange(201), rng.randrange(101))
        for _ in range(length)
    ]


@pytest.mark.parametrize("profile", range(len(PROFILES)))
def test_a_history_warm_throughout_is_what_cold_gives(profile: int) -> None:
    """Every profile (treatments amended, entered in error, late drug records before the pending ones: profile 4),
    warm from first to last event (the caches then hit across events), and with the state parsed back from JSON
    before each event (new objects): each event's outputs, `next_due` and stored state are the cold ones."""
    events = [(e, d) for e, d, _ in systemic_history(_program(profile, 90), PROFILES[profile])]
    cold = list(_outputs(events, cold=True))
    assert list(_outputs(events, cold=False)) == cold
    assert list(_outputs(events, cold=False, reparse=True)) == cold


# ---- the defect: a ZoneInfo clock and results around the DST fall-back ------------------------------------------
def _dst_history() -> list[tuple[Message, datetime]]:
    """Five vitamin D results in the hospital's zone; the newest taken at 02:45 CEST (00:45Z) on the night of the
    change and recorded 30 minutes later, at 02:15 CET (01:15Z), decided at 01:20Z; then an assessment at 03:00 CET."""
    ids = iter(range(1, 100))

    def env(occ: datetime, rec: datetime, source: str) -> dict[str, Any]:
        n = next(ids)
        return {
            "event_id": uuid.UUID(int=n),
            "patient_id": "p1",
            "occurred_at": occ,
            "recorded_at": rec,
            "source": source,
        }

    def lab(occ: datetime, rec: datetime, value: float) -> NormalisedLab:
        doc = {**env(occ, rec, "lab-normalisation"), "analyte": "vitamin_d_25oh", "value": value, "unit": "ng/mL"}
        return NormalisedLab.model_validate({**doc, "result_id": f"vd-{doc['event_id']}"})

    events: list[tuple[Message, datetime]] = []
    for d in range(20, 24):
        t = datetime(2025, 10, d, 10, tzinfo=PARIS)
        events.append((lab(t, t + timedelta(hours=1), 25.0), (t + timedelta(hours=2)).astimezone(UTC)))
    occ = datetime(2025, 10, 26, 2, 45, fold=0, tzinfo=PARIS)  # 00:45Z
    rec = datetime(2025, 10, 26, 2, 15, fold=1, tzinfo=PARIS)  # 01:15Z
    events.append((lab(occ, rec, 40.0), datetime(2025, 10, 26, 1, 20, tzinfo=UTC)))
    t3 = datetime(2025, 10, 26, 3, 0, tzinfo=PARIS)  # 02:00Z
    assessment = ClinicalAssessment.model_validate({**env(t3, t3, "t"), "oncological_response": "stable"})
    events.append((assessment, datetime(2025, 10, 26, 2, 5, tzinfo=UTC)))
    return events


def test_the_dst_history_is_well_formed() -> None:
    """The reproducer's premise: the state's clock is the record's ZoneInfo time (the same ZoneInfo object as the
    results' dates), so `_lab_table` compares them by wall clocks; cold, the oldest result is dropped at the end."""
    events = _dst_history()
    *_, (_, _, last) = _outputs(events, cold=True)
    s = SystemicState.model_validate_json(last)
    assert len(s.vitamin_d) == retention.RESULTS_KEPT


def test_lab_retention_with_zoneinfo_times_around_the_fall_back_is_cold() -> None:
    events = _dst_history()
    assert list(_outputs(events, cold=False)) == list(_outputs(events, cold=True))


def test_lab_table_with_zoneinfo_times_around_the_fall_back_is_cold() -> None:
    table = {f"r{i}": _fact(datetime(2025, 10, 20 + i, 10, tzinfo=PARIS), i) for i in range(4)}
    table["r4"] = _fact(datetime(2025, 10, 26, 2, 45, fold=0, tzinfo=PARIS), 4)  # 00:45Z
    first = datetime(2025, 10, 26, 2, 15, fold=1, tzinfo=PARIS)  # 01:15Z: r4 after it by wall clock
    then = datetime(2025, 10, 26, 3, 0, tzinfo=PARIS)  # 02:00Z: r4 before it; the same instants' side
    _clear()
    assert retention._lab_table(table, tuple, first) == _kept_cold(table, (), first)
    try:
        assert retention._lab_table(table, tuple, then) == _kept_cold(table, (), then)
    finally:
        _clear()


def test_threads_share_first_pending_without_error() -> None:
    """`FIRST_PENDING` from racing threads: the value computed for the objects given, never another's."""
    tables = [{str(i): object() for i in range(k)} for k in range(8)]
    replays = [{} for _ in range(4)]  # type: ignore[var-annotated]
    _clear()
    lock = threading.Lock()
    seen: list[str] = []

    def work(k: int) -> None:
        rng = random.Random(k)
        for _ in range(500):
            t, p = rng.randrange(len(tables)), rng.randrange(len(replays))
            got = FIRST_PENDING(tables[t], replays[p], lambda t=t, p=p: date(2025, 1, 1) + timedelta(days=10 * t + p))  # type: ignore[misc]
            if got != date(2025, 1, 1) + timedelta(days=10 * t + p):
                with lock:
                    seen.append(f"{t},{p}: {got}")

    assert in_racing_threads(work) == [] and seen == []
    _clear()
