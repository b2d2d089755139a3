"""Issue 25, systemic planner (h38-sys): the per-event shortcuts of helper h38-sys never change an output.

- `rules.span_utc`: the bounds of `AsOf`'s span, and the deadlines a memoised decision offers again, compared in
  PARSED_UTC when their offset is fixed: every comparison answers as with the time as given;
- retention_memo.py: `_lab_table` memoised on the table's object, which of its results are dated after the state's
  clock and the course days; `_drugs`' earliest unfolded drug date memoised on the treatments and drug replays.
Over generated histories of years (the retention tests' generator), every event's outputs, `next_due` and stored
state are the same warm as with every cache cleared before each event (cold), and the caches are actually hit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from services.systemic_planner import memo, retention, retention_treatments
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event
from services.systemic_planner.retention_memo import FIRST_PENDING, LAB_KEPT
from tests.unit.histories import PROFILES, _dump, steps, systemic_history

RECENCY = r.Recency()
PARSE = TypeAdapter(datetime)
OFFSETS = st.sampled_from(["Z", "+01:00", "+02:00", "-05:00", "+14:00", "-12:00"])
INSTANTS = st.integers(0, 4 * 24 * 3600).map(lambda s: datetime(2025, 3, 29, tzinfo=UTC) + timedelta(seconds=s))


def _parsed(t: datetime, offset: str) -> datetime:
    """`t` as a message gives it: parsed from JSON with `offset` (each parse holds its own tzinfo object)."""
    tz = UTC if offset == "Z" else timezone(timedelta(hours=int(offset[:3]), minutes=int(offset[4:])))
    return PARSE.validate_json(f'"{t.astimezone(tz).isoformat().replace("+00:00", "Z")}"')


@settings(max_examples=300, deadline=None)
@given(a=INSTANTS, b=INSTANTS, oa=OFFSETS, ob=OFFSETS)
def test_a_span_bound_in_parsed_utc_compares_as_the_time_given(a: datetime, b: datetime, oa: str, ob: str) -> None:
    x, y = _parsed(a, oa), _parsed(b, ob)
    ux = r.span_utc(x)
    assert ux == x and ux.tzinfo is r.PARSED_UTC
    now = r.as_parsed_utc(b)
    for left, right in ((x, y), (x, now), (now, x)):
        u_left = r.span_utc(left)
        u_right = r.span_utc(right)
        assert (u_left < u_right, u_left > u_right, u_left == u_right) == (left < right, left > right, left == right)


def test_a_zone_with_dst_or_a_bound_out_of_range_is_left_as_it_is() -> None:
    paris = datetime(2025, 10, 26, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris"))
    assert r.span_utc(paris) is paris  # two times of one ZoneInfo compare by their wall clocks: not converted
    low = datetime.min.replace(tzinfo=timezone(timedelta(hours=1)))
    assert r.span_utc(low) is low  # its UTC is out of range
    assert r.span_utc(r.EARLIEST) is r.EARLIEST and r.span_utc(r.LATEST) is r.LATEST


def _clear() -> None:
    memo.clear()
    LAB_KEPT.clear()
    FIRST_PENDING.clear()


def _run(program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...]) -> None:
    """The history warm and with every cache cleared before each event: the same outputs, deadline and state."""
    _clear()
    warm, cold = SystemicState(), SystemicState()
    for e, decided, _ in systemic_history(program, profile):
        warm, out = apply_event(warm, e, r.AsOf(now=decided, recency=RECENCY))
        warm_json = warm.model_dump_json()
        _clear()
        cold, out_cold = apply_event(cold, e, r.AsOf(now=decided, recency=RECENCY))
        assert _dump(out) == _dump(out_cold), e
        assert warm.next_due == cold.next_due
        assert warm_json == cold.model_dump_json()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=steps, profile=st.sampled_from(PROFILES))
def test_warm_caches_give_what_cold_ones_give(
    program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...]
) -> None:
    _run(program, profile)


def test_the_retention_caches_are_hit_over_a_long_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: over a mixed history most lab tables' retention is found again, not computed (their table and
    clock side unchanged), and so is the drug fold's earliest unfolded date."""
    program = [(k % 13, k * 7 % 31, k * 5 % 31, k * 11 % 201, k * 3 % 101) for k in range(160)]
    _clear()
    counts = {"lab": 0, "lab_built": 0, "first": 0, "first_built": 0}
    lab_table, lab_kept, first_of = retention._lab_table, retention._lab_table_kept, FIRST_PENDING.__call__

    def counted_table(*args: Any) -> Any:
        counts["lab"] += 1
        return lab_table(*args)

    def counted_kept(*args: Any) -> Any:
        counts["lab_built"] += 1
        return lab_kept(*args)

    def counted_first(treatments: Any, replays: Any, first: Callable[[], Any]) -> Any:
        counts["first"] += 1

        def built() -> Any:
            counts["first_built"] += 1
            return first()

        return first_of(treatments, replays, built)

    monkeypatch.setattr(retention, "_lab_table", counted_table)
    monkeypatch.setattr(retention, "_lab_table_kept", counted_kept)
    monkeypatch.setattr(retention_treatments, "FIRST_PENDING", counted_first)
    s = SystemicState()
    for e, decided, _ in systemic_history(program, PROFILES[0]):
        s, _ = apply_event(s, e, r.AsOf(now=decided, recency=RECENCY))
    assert counts["lab_built"] > 0 and counts["lab"] > 2 * counts["lab_built"]
    assert counts["first_built"] > 0 and counts["first"] > counts["first_built"]
