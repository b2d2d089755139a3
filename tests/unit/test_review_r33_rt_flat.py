"""Review R33-RT-FLAT (issue 25, branch s33-rt-flat): the radiotherapy planner keeps a lesion's whole section on one
short key (memo.section; the patient-level part interned to an int, memo.patient_key), reads the facts dated ahead once
per event (as_of.ahead for build_plan and next_due) and scans the assessed facts, the opinions (as_of) and the
treatments (domain._next_due) only when a table's newest date may be ahead (shared/clinical/newest.Newest, per table
object). A reused section whose key misses something the rules read gives a stale clinical output.

What these tests hold (none found a defect; they are guards):
- the key parts no test held (each removed by hand, session 33, and only these tests then fail): the cord alpha/beta
  (RT-REIRR, L2076-2095, settings) and the hospital time zone (RT-DRUG's reference day, L1948-2014) in the patient
  part of the key: a decision on the same facts, the same day, at another setting must not reuse the section;
- a differential at moving clocks: test_dt_rt_differential's histories (whole and split into one fact per assessment,
  with and without records dated ahead and corrections), every event decided at its own `now` (minutes, days or
  weeks later, or hours EARLIER than the last decision: apply_event then decides at the last decision's time), the
  planner's own ticks applied at `next_due`, and the plan rebuilt at three other times after each event. At every event
  the outputs, the stored state JSON, `next_due` and the plans equal those made with every cache cleared (the memos,
  the table fingerprints, the lesions, every Newest / TimesAfter of as_of and domain), those of a cold state
  reloaded from JSON deciding the next event, and those of the reloaded state on warm caches (as GET local-plan
  serves the store's state); a third of the histories with their times at +01:00 / +02:00;
- the same with every cache cut to one or a few entries (evictions, the interning table dropped at every decision,
  tables garbage-collected and their addresses reused by the next state's tables: the identity-keyed caches hold the
  table they key on, so an address is never reused while its entry is kept);
- Newest itself: tables of the same length at a reused address never get an evicted table's newest date;
- threads: four histories decided at once in real threads on shared caches (small, so hits and evictions race) give
  what each gives alone and cold.
Run outside the test (session 33): 700 seeds x 4 variants of the moving-clock differential, 150 with tiny caches,
cohorts 1-11 (devstack Cohort, ~1,200-2,600 planner records each) and patient_history 1-3 (600 records) at randomly
moving clocks (also earlier than the last decision), warm = cold = reloaded from JSON: no difference."""

from __future__ import annotations

import gc
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from contracts.base import Message
from contracts.clock import ClockTick
from services.radiotherapy_planner import as_of, domain, facts, items_patient, memo
from services.radiotherapy_planner.domain import apply_event, build_plan, current_plan
from services.radiotherapy_planner.facts import LocalState
from shared.clinical.dates import HOSPITAL_TZ
from shared.clinical.newest import Newest, TimesAfter, instant
from tests.unit import test_dt_rt_differential as drt
from tests.unit.histories import in_racing_threads
from tests.unit.test_issue18_local import NOW, TODAY, course, drug, env, request, vertebra
from tests.unit.test_s33_rt_flat import _split

PARIS, UTC_ZONE = ZoneInfo("Europe/Paris"), ZoneInfo("UTC")


def _newests() -> Iterator[Newest[Any, Any]]:
    for module in (as_of, domain):
        for v in vars(module).values():
            if isinstance(v, Newest):
                yield v
            elif isinstance(v, TimesAfter):
                yield v.newest


def _clear_all() -> None:
    """Every cache the planner's decision reads: a cold process."""
    memo.clear()
    for n in _newests():
        n.clear()
    with facts._LESIONS_LOCK:
        facts._LESIONS.clear()


@pytest.fixture(autouse=True)
def _cold() -> Iterator[None]:
    _clear_all()
    yield
    _clear_all()


def _plan(s: LocalState, now: datetime, **kw: Any) -> list[str]:
    return [x.model().model_dump_json() for x in build_plan(s, now=now, **kw)]


def _state(events: list[Message]) -> LocalState:
    s = LocalState()
    for e in events:
        s, _ = apply_event(s, e, now=NOW)
    return s


# ---- the key parts no other test held ------------------------------------------------------------------------------
def test_the_cord_alpha_beta_alone_decides_the_section_again() -> None:
    """RT-REIRR (L2076-2095): the cumulative cord EQD2 is counted with the α/β of the settings (Sahgal: 2 Gy). The
    same facts, the same `now`, another α/β: the section kept for the first must not be served for the second."""
    s = _state(
        [
            vertebra(),
            course(date(2025, 1, 10)),  # an earlier course on T8: cord Dmax 30 Gy in 10 fractions
            request(
                "t8",
                "palliative_rt",
                planned_cord_dmax_gy=9.0,
                planned_on=TODAY + timedelta(days=7),
                total_dose_gy=20.0,
                fractions=5,
            ),
        ]
    )
    _clear_all()
    warm = [_plan(s, NOW, alpha_beta=ab) for ab in (2.0, 0.5, 2.0)]
    cold = []
    for ab in (2.0, 0.5, 2.0):
        _clear_all()
        cold.append(_plan(s, NOW, alpha_beta=ab))
    assert warm == cold
    assert warm[0] != warm[1]
    assert any("α/β = 0.5 Gy" in x for x in warm[1])


def test_the_hospital_time_zone_alone_decides_the_section_again() -> None:
    """RT-DRUG (Tableau 6, L1948-2014): the drug window is counted to the request's day, the hospital-local day it was
    made (items_base.reference_date). A request made at 23:30 UTC is of the next day in Paris; decided at the same
    `now` (the same day in both zones), the section kept for one zone must not be served for the other."""
    late = datetime(2026, 11, 19, 23, 30, tzinfo=UTC)
    s = _state(
        [
            vertebra(at=late),
            request("t8", "palliative_rt", at=late),
            drug("bevacizumab", date(2026, 11, 12), ongoing=False),
        ]
    )
    assert NOW.astimezone(PARIS).date() == NOW.astimezone(UTC_ZONE).date()
    _clear_all()
    warm = [_plan(s, NOW, tz=tz) for tz in (PARIS, UTC_ZONE, PARIS)]
    cold = []
    for tz in (PARIS, UTC_ZONE, PARIS):
        _clear_all()
        cold.append(_plan(s, NOW, tz=tz))
    assert warm == cold
    assert warm[0] != warm[1]


# ---- the differential at moving clocks -----------------------------------------------------------------------------
def _schedule(seed: int, n: int) -> list[tuple[timedelta, bool]]:
    """Each event's clock, as an offset from NOW (a random walk: the same time, minutes, days around the compression
    window, or hours back), and whether the planner's tick follows it."""
    rnd = random.Random(seed * 7919 + 1)
    t, out = timedelta(0), []
    for _ in range(n):
        r = rnd.random()
        if r < 0.35:
            pass
        elif r < 0.55:
            t += timedelta(minutes=rnd.randint(1, 180))
        elif r < 0.75:
            t += timedelta(days=rnd.choice((1, 7, 20, 41, 42, 43, 60, 90)))
        elif r < 0.9:
            t -= timedelta(hours=rnd.randint(1, 72))  # earlier than the last decision
        else:
            t += timedelta(seconds=rnd.randint(0, 3600))
        out.append((t, rnd.random() < 0.25))
    return out


def _tick(s: LocalState) -> ClockTick:
    assert s.next_due is not None
    due = s.next_due.isoformat()
    return ClockTick.model_validate(
        env(
            s.next_due,
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, due)),  # the same tick in every run
            source="radiotherapy-planner",
            service="radiotherapy-planner",
            due_at=due,
        )
    )


def _replay(events: list[Message], schedule: list[tuple[timedelta, bool]], mode: str) -> list[tuple[Any, ...]]:
    """`mode`: "warm" (the caches as the service keeps them), "cold" (every cache cleared before each decision and
    each plan served), "json" (cold, and the state reloaded from its JSON before each event), "json-warm" (the state
    reloaded, the caches kept: the store's state decided or served with the sections made from the previous
    objects)."""
    s, seen = LocalState(), list[tuple[Any, ...]]()
    cold = mode in ("cold", "json")

    def before() -> LocalState:
        if cold:
            _clear_all()
        return LocalState.model_validate_json(s.model_dump_json()) if mode.startswith("json") else s

    for e, (offset, tick) in zip(events, schedule, strict=True):
        now = NOW + offset
        s = before()
        try:
            s, out = apply_event(s, e, now=now)
            published = [o.model_dump_json() for o in out]
        except Exception as x:  # refused alike in every mode
            published = ["refused", type(x).__name__, str(x)]
        plans: list[Any] = []
        for at in (None, now, now + timedelta(hours=5), now + timedelta(days=43)):
            if cold:
                _clear_all()
            if at is None:
                plan = current_plan(s, "p")
                plans.append(None if plan is None else plan.model_dump_json())
            else:
                plans.append(_plan(s, at))
        seen.append((published, s.model_dump_json(), s.next_due, plans))
        if tick and s.next_due is not None:
            due = s.next_due
            s = before()
            s, out = apply_event(s, _tick(s), now=due)
            seen.append(([o.model_dump_json() for o in out], s.model_dump_json(), s.next_due))
    return seen


def _differential(seeds: range) -> int:
    compared = 0
    for seed in seeds:
        for future in (True, False):
            for split in (False, True):
                events = drt.history(seed, future)
                events = _split(events) if split else events
                if seed % 3 == 1:  # the times at +01:00 / +02:00 (as hospital records): other tzinfo objects
                    zone = timezone(timedelta(hours=1 + seed % 2))
                    events = [
                        e.model_copy(update={k: getattr(e, k).astimezone(zone) for k in ("occurred_at", "recorded_at")})
                        for e in events
                    ]
                schedule = _schedule(seed, len(events))
                warm = _replay(events, schedule, "warm")
                for mode in ("cold", "json", "json-warm"):
                    other = _replay(events, schedule, mode)
                    for i, (w, o) in enumerate(zip(warm, other, strict=True)):
                        assert w == o, f"seed {seed} future={future} split={split}: {mode} differs at step {i}"
                    compared += len(warm)
    return compared


@pytest.mark.parametrize("seeds", [range(0, 12), range(12, 24), range(24, 36)])
def test_warm_equals_cold_and_reloaded_at_moving_clocks_ticks_and_earlier_nows(seeds: range) -> None:
    assert _differential(seeds) > 500


def test_warm_equals_cold_with_every_cache_cut_to_a_few_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Evictions at every decision, the interning table dropped at every decision (its ints never given again), the
    tables of the states reloaded from JSON garbage-collected and their addresses reused by the next ones."""
    monkeypatch.setattr(memo, "SECTIONS_SIZE", 3)
    monkeypatch.setattr(memo, "PATIENT_KEYS_SIZE", 2)
    monkeypatch.setattr(memo, "MEMO_SIZE", 5)
    monkeypatch.setattr(memo, "TABLES_SIZE", 2)
    monkeypatch.setattr(facts, "LESIONS_CACHED", 1)
    monkeypatch.setattr(items_patient, "TREATED_SIZE", 1)
    for n in _newests():
        monkeypatch.setattr(n, "_size", 1)
    assert _differential(range(100, 108)) > 100


# ---- identity keys -------------------------------------------------------------------------------------------------
def test_newest_never_serves_an_evicted_table_s_date_to_a_table_at_its_address() -> None:
    """as_of._NEWEST_ASSESSED / _NEWEST_OPINION and domain._LAST_DATED key on id(table) and the length: a table
    garbage-collected after its entry was evicted and a new one of the same length made at its address must be read
    afresh (the entry holds the table, so its address is not reused while kept)."""
    newest = Newest[dict[str, int], int](lambda t: t.values(), size=2)
    addresses: set[int] = set()
    reused = 0
    for i in range(2000):
        table = {"x": i}  # the same length each time; the previous one freed
        reused += id(table) in addresses
        addresses.add(id(table))
        assert newest(table) == i
        del table
        gc.collect(0)
    assert reused > 0  # addresses were reused: the case happened


def test_the_deadline_reads_a_course_dated_ahead_in_a_table_at_a_reused_address() -> None:
    """domain._LAST_DATED (RT-MSCC counts a course begun by today, review RK; the day it begins is a deadline): the
    treatments table is reloaded from JSON at every decision (a new object, the old one freed); a course dated ahead
    in one of them is found whatever table held that address before."""
    s = _state([vertebra(cord_compression=True, status="confirmed")])
    for k in range(40):
        on = TODAY + timedelta(days=1 + k % 3)
        t, _ = apply_event(
            LocalState.model_validate_json(s.model_dump_json()), course(on, at=NOW + timedelta(minutes=k)), now=NOW
        )
        due = domain.next_due(t, NOW)
        assert due is not None and due <= datetime.combine(on, datetime.min.time(), HOSPITAL_TZ) + timedelta(seconds=1)
        assert instant(due) > instant(NOW)


# ---- threads -------------------------------------------------------------------------------------------------------
def test_histories_decided_in_racing_threads_give_what_each_gives_alone_and_cold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runtime decides in a worker thread while GET local-plan rebuilds plans on the loop: shared sections, the
    interning table and the Newest tables (small here, so hits, evictions and the interning table's drops race)."""
    monkeypatch.setattr(memo, "SECTIONS_SIZE", 16)
    monkeypatch.setattr(memo, "PATIENT_KEYS_SIZE", 4)
    for n in _newests():
        monkeypatch.setattr(n, "_size", 4)
    histories = {k: drt.history(200 + k, True) for k in range(4)}
    schedules = {k: _schedule(200 + k, len(h)) for k, h in histories.items()}
    cold = {k: _replay(histories[k], schedules[k], "cold") for k in histories}
    _clear_all()
    warm: dict[int, list[tuple[Any, ...]]] = {}

    def work(k: int) -> None:
        warm[k] = _replay(histories[k], schedules[k], "warm")

    assert in_racing_threads(work) == []
    assert warm == cold
