"""Review RN (issue 25, HAZ-25-SYS-03): attacks on the systemic planner's memoised decisions (memo.py).

Each test decides the same state with the memo on and with it off (`AsOf.memo` False, the reference that computes
every family again) and compares the whole plan and the next deadline. The attacks: the edges of every memoised
span (the instant a comparison flips, a microsecond either side), settings and time zones changed between calls,
a patient's history replayed from scratch (identifiers of freed tables reused), interleaved patients with equal
tables, a tiny memo (eviction at every decision), the remaining life expectancy crossing 3 months (SYS-AR-START)
and 6 weeks (SURG-LE, SYS-ONCO) inside a span, time zones with odd clock changes, and memoised items changed in
place after they were stored."""

from __future__ import annotations

import gc
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, TreatmentEvent
from contracts.plan import PlanItem
from services.systemic_planner import domain, memo
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, build_plan
from services.systemic_planner.settings import SystemicSettings
from shared.clinical.life_expectancy import SIX_WEEKS_IN_MONTHS, when_remaining_reaches
from tests.unit.histories import PROFILES, T0, World, _prologue, in_racing_threads, steps, systemic_history
from tests.unit.test_issue25_systemic_memo import _run as hn_run

RECENCY = r.Recency()
TICK = timedelta(microseconds=1)
#: a fixed mixed history (HN's non-vacuous program): labs, findings, assessments, drugs, dental and care events
PROGRAM = [(k % 13, k * 7 % 31, k * 5 % 31, k * 11 % 201, k * 3 % 101) for k in range(60)]


def _plan(s: SystemicState, now: datetime, recency: r.Recency = RECENCY, tz: ZoneInfo | None = None) -> Any:
    """The plan and the next deadline, memo on and off: must be equal."""
    zone = tz or ZoneInfo("Europe/Paris")
    on = r.AsOf(now=now, tz=zone, recency=recency)
    off = r.AsOf(now=now, tz=zone, recency=recency, memo=False)
    got = ([x.model_dump(mode="json") for x in build_plan(s, on)], on.next_due())
    want = ([x.model_dump(mode="json") for x in build_plan(s, off)], off.next_due())
    return got, want


def _history(program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...]) -> list[tuple[Message, datetime]]:
    """The generated events and the `now` each is decided at (the retention tests' generator)."""
    return [(e, now) for e, now, _ in systemic_history(program, profile)]


def _edges(limit: int) -> list[datetime]:
    """The finite edges of the spans the memo holds now (newest entries first): where a memoised answer flips."""
    found: list[datetime] = []
    for entry in reversed(memo._MEMO.values()):
        for t in (entry.lo, entry.hi, *entry.offered):
            if r.EARLIEST < t < r.LATEST and t not in found:
                found.append(t)
        if len(found) >= limit:
            break
    return found[:limit]


def _probe_edges(program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...]) -> int:
    """After each event, the state is decided (memo warm) then again at the edges of the memoised spans and deadlines
    offered (the exact instant a lab stops being current, a date's midnight, a future-dated fact's tolerance), a
    microsecond before and after each, and far back and ahead: the memo's answer is the reference's everywhere.
    Returns how many edges changed the plan (the probes are where decisions change)."""
    memo.clear()
    s = SystemicState()
    flips = 0
    for k, (e, now) in enumerate(_history(program, profile)):
        s, _ = apply_event(s, e, r.AsOf(now=now, recency=RECENCY))
        if k % 4:
            continue
        for edge in _edges(6):
            plans = []
            for t in (edge - TICK, edge, edge + TICK):
                got, want = _plan(s, t)
                assert got == want, (e, t)
                plans.append(got)
            flips += plans[0] != plans[2]
        for t in (now - timedelta(days=400), now - TICK, now + timedelta(days=400), now):  # back and forth
            got, want = _plan(s, t)
            assert got == want, (e, t)
    return flips


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=steps, profile=st.sampled_from(PROFILES))
def test_at_every_span_edge_and_a_microsecond_either_side_the_memo_decides_as_the_reference(
    program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...]
) -> None:
    _probe_edges(program, profile)


def test_the_span_edges_probed_are_where_decisions_change() -> None:
    """Not vacuous: over a mixed history most edges probed change the plan between their two sides."""
    assert _probe_edges(PROGRAM, PROFILES[0]) > 20


def test_settings_and_time_zone_changed_between_calls_never_reuse_a_decision() -> None:
    """The impact replay's candidate settings: the same state at the same `now` decided under other recency windows
    (a 1-day creatinine and vitamin D window, no future tolerance) and another hospital time zone, alternately."""
    memo.clear()
    strict = (
        SystemicSettings(
            creatinine_max_age_days=1, vitamin_d_max_age_days=1, calcium_max_age_hours=1, future_tolerance_minutes=0
        )
        .as_of(T0)
        .recency
    )
    assert strict != RECENCY
    zones = (ZoneInfo("Europe/Paris"), ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago"))
    s = SystemicState()
    differs = 0
    for k, (e, now) in enumerate(_history(PROGRAM, PROFILES[0])):
        s, _ = apply_event(s, e, r.AsOf(now=now, recency=RECENCY))
        plans = []
        for recency in (RECENCY, strict):
            for tz in zones[: 1 + k % 3]:
                got, want = _plan(s, now, recency, tz)
                assert got == want, (e, recency, tz)
                plans.append(got)
        differs += any(p != plans[0] for p in plans)
    assert differs > 0  # not vacuous: the settings do change decisions here


def test_a_history_replayed_from_scratch_and_interleaved_patients_with_equal_tables() -> None:
    """Two patients with the same events (equal, distinct tables) and a third with another history, decided in turn
    in one memo; then every state dropped (their tables' identifiers free for reuse) and a new history replayed for
    the same patient: every decision is the reference's."""
    memo.clear()
    a = _history(PROGRAM, PROFILES[0])
    b = _history(PROGRAM[::-1], PROFILES[1])
    states = [SystemicState(), SystemicState(), SystemicState()]
    for k in range(max(len(a), len(b))):
        for i, h in enumerate((a, a, b)):
            if k < len(h):
                e, now = h[k]
                states[i], _ = apply_event(states[i], e, r.AsOf(now=now, recency=RECENCY))
                got, want = _plan(states[i], now)
                assert got == want, (i, e)
    del states
    gc.collect()
    s = SystemicState()
    for e, now in _history(PROGRAM[::2], PROFILES[4]):
        s, _ = apply_event(s, e, r.AsOf(now=now, recency=RECENCY))
        got, want = _plan(s, now)
        assert got == want, e


def test_a_tiny_memo_evicting_at_every_decision_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """HN's whole-history comparison (outputs, next_due, stored state, served plan), with the memo and the published
    contents evicting all but a few entries, decision times going back and forth."""
    monkeypatch.setattr(memo, "MEMO_SIZE", 3)
    monkeypatch.setattr(domain, "_PUBLISHED_MAX", 2)
    hn_run(PROGRAM, PROFILES[0], shuffle_now=True)
    hn_run(PROGRAM[::-1], PROFILES[3], shuffle_now=True)


@pytest.mark.parametrize("estimate", [3.4, 1.7])
def test_the_remaining_life_expectancy_crossing_a_threshold_inside_a_span(estimate: float) -> None:
    """SYS-AR-START (3 months) and SURG-LE (6 weeks, SYS-ONCO's urgent procedure): an estimate whose remainder
    crosses a threshold while every memoised family holds; decided warm before, at and after the crossing (to the
    microsecond, and the deadline a second later), going forward and back: the memo decides as the reference."""
    memo.clear()
    w = World()
    events: list[Message] = list(_prologue(w))
    made = T0 + timedelta(hours=2)
    events.append(ClinicalAssessment.model_validate({**w.env(made), "life_expectancy_months": estimate}))
    events.append(  # an anticancer drug under way: SYS-ONCO has an item either way
        TreatmentEvent.model_validate(
            {
                **w.env(T0),
                "treatment": {"kind": "systemic_drug", "drug": "carboplatin", "action": "started", "on": T0.date()},
            }
        )
    )
    s = SystemicState()
    for e in events:
        s, _ = apply_event(s, e, r.AsOf(now=made + timedelta(hours=3), recency=RECENCY))
    crossings = [when_remaining_reaches(estimate, made, m) for m in (r.AR_START_MIN_LIFE_EXPECTANCY_MONTHS, 1.5)]
    crossings.append(when_remaining_reaches(estimate, made, SIX_WEEKS_IN_MONTHS))
    times = [made + timedelta(hours=4)]
    for c in crossings:
        times += [c - timedelta(seconds=1), c - TICK, c, c + TICK, c + timedelta(seconds=1), c + timedelta(seconds=2)]
    seen = set()
    for t in times + times[::-1]:
        got, want = _plan(s, t)
        assert got == want, t
        seen.add(str(got[0]))
    assert len(seen) > 1  # not vacuous: the plan changes across the crossings


def _plan_items(value: object) -> list[PlanItem]:
    if isinstance(value, PlanItem):
        return [value]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _plan_items(v)]
    return [x for x in (getattr(value, "item", None),) if isinstance(x, PlanItem)]


def test_no_memoised_item_is_changed_in_place_after_it_is_stored() -> None:
    """An item reused is the object stored: publishing, versioning, the served plan and retention must never change
    it. Every memoised item's JSON when first stored is its JSON at the end of a long history."""
    memo.clear()
    first: dict[int, tuple[PlanItem, str]] = {}
    s = SystemicState()
    for e, now in _history(PROGRAM, PROFILES[0]):
        s, _ = apply_event(s, e, r.AsOf(now=now, recency=RECENCY))
        domain.current_plan(s, "p1", at=r.AsOf(now=now, recency=RECENCY))
        for entry in memo._MEMO.values():
            for x in _plan_items(entry.value):
                first.setdefault(id(x), (x, x.model_dump_json()))
    assert len(first) > 20
    for x, stored in first.values():
        assert x.model_dump_json() == stored


#: time zones whose clocks change at or near midnight, by 30 minutes, or skip a whole day, near such a change
ZONES = (
    ("America/Santiago", datetime(2024, 9, 8, 4, 0, tzinfo=UTC)),  # 24:00 -> 01:00
    ("America/Santiago", datetime(2024, 4, 7, 3, 0, tzinfo=UTC)),  # 24:00 -> 23:00
    ("America/Havana", datetime(2024, 11, 3, 5, 0, tzinfo=UTC)),  # 01:00 -> 00:00
    ("Australia/Lord_Howe", datetime(2024, 4, 6, 15, 0, tzinfo=UTC)),  # 30 minutes back
    ("Pacific/Apia", datetime(2011, 12, 30, 10, 0, tzinfo=UTC)),  # 30 December 2011 skipped
    ("Asia/Gaza", datetime(2024, 4, 20, 0, 0, tzinfo=UTC)),
)


@settings(max_examples=500, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    now=st.integers(-36 * 3600, 36 * 3600),
    other=st.integers(-36 * 3600, 36 * 3600),
    t=st.integers(-36 * 3600, 36 * 3600),
    k=st.integers(-2, 2),
    hours=st.integers(0, 30),
)
def test_each_comparison_holds_over_its_span_in_odd_time_zones(
    zone: tuple[str, datetime], now: int, other: int, t: int, k: int, hours: int
) -> None:
    """AsOf's span in a hospital time zone whose date may jump or repeat: at any `now` inside the span every date
    and time comparison answers as at the `now` that made it (HN's property checks Europe/Paris only)."""
    tz, base = ZoneInfo(zone[0]), zone[1]
    at_time, then, fact = (base + timedelta(seconds=x) for x in (now, other, t))
    d = at_time.astimezone(tz).date() + timedelta(days=k)

    def answers(a: r.AsOf) -> tuple[Any, ...]:
        age = timedelta(hours=hours)
        return (a.is_future(fact), a.is_current(fact, age), a.before(fact), a.today_ge(d), a.today_gt(d), a.today)

    at = r.AsOf(now=at_time, tz=tz, recency=RECENCY)
    first = answers(at)
    assert at.lo <= at_time < at.hi
    if at.lo <= then < at.hi:
        assert answers(r.AsOf(now=then, tz=tz, recency=RECENCY)) == first


def test_the_span_of_a_date_read_is_that_date_in_the_hospital_zone() -> None:
    """`today` read in a zone whose local date differs from UTC's: reused the whole local day, decided again just
    after local midnight (the memo is exact at the day's edge, in the zone's own midnight)."""
    memo.clear()
    tz = ZoneInfo("Pacific/Kiritimati")  # UTC+14: its date is UTC's plus one for most of the day
    s = SystemicState()
    for e, now in _history(PROGRAM[:30], PROFILES[0]):
        s, _ = apply_event(s, e, r.AsOf(now=now, tz=tz, recency=RECENCY))
    last = s.decided_at
    assert last is not None
    midnight = datetime.combine(last.astimezone(tz).date() + timedelta(days=1), datetime.min.time(), tz)
    for t in (last, midnight - TICK, midnight, midnight + TICK, midnight.astimezone(UTC) + timedelta(hours=10)):
        got, want = _plan(s, t, tz=tz)
        assert got == want, t
    assert date(2024, 1, 1) < last.date()


def test_threads_deciding_at_once_never_fail_on_the_shared_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime applies events in a worker thread (asyncio.to_thread) while the API builds plans on the loop, and
    the memo is one table: a hit's move to the newest end raced another thread's eviction (KeyError, review RN).
    Threads hitting and evicting a small memo as fast as the interpreter switches between them: no error, and each
    answer is its own build's."""
    monkeypatch.setattr(memo, "MEMO_SIZE", 2)
    memo.clear()
    held = [object() for _ in range(3)]

    def decide(k: int) -> None:
        for i in range(15000):
            at = r.AsOf(now=T0, recency=RECENCY)
            n = (i * 7 + k) % 3
            assert memo.memo("rn-race", at, (held[n],), lambda n=n: n) == n  # type: ignore[misc]

    try:
        errors = in_racing_threads(decide)
    finally:
        memo.clear()
    assert errors == []
