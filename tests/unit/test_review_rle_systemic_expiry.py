"""Review RLE (of HAZ-26-LE-01): the systemic planner's currency windows have the flaw HAZ-26-LE-01 fixed in the
radiotherapy planner and scoring. `AsOf.is_current` holds a fact current while `now <= t + max_age` (so it changes
just AFTER the expiry), but registers the expiry itself as the deadline (`self.after(expiry)`, kept only when
`expiry > now`). A decision at the expiry exactly (a tick applied at its due time, or an event at that instant)
still sees the fact current and schedules no tick for the change just after it: the plan stays stale until another
deadline (here about 3 months). Same for every `is_current` window (creatinine, weight, calcium, vitamin D, CTX,
SRE currency). Fixed: the deadline is the expiry + 1 µs, always (HAZ-26-LE-02)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.systemic_planner import rules as r
from tests.unit.test_systemic_rules import T0, items, le, met, ready, run

SECOND = timedelta(seconds=1)
#: HAZ-26-LE-02 (fixed): the expiry + 1 us is always the deadline (registering it only when `now` is the expiry is not
#: enough: the memo serves deadlines made at another `now` of the same span)


def _plan(now: datetime) -> tuple[Any, dict[str, tuple[str, str]]]:
    s, _ = run([met(), le(0, 10.0), *ready()], now=now)
    return s, {k: (v.status, v.rule_id) for k, v in items(s, now).items()}


def test_review_rle_systemic_ticks_after_a_life_expectancy_expiry_reached_exactly() -> None:
    expiry = T0 + r.Recency().life_expectancy  # estimate at T0 (08:00), 91 days valid
    s_before, _ = _plan(expiry - timedelta(hours=1))
    assert s_before.next_due == expiry + r._TICK  # HAZ-26-LE-02: the deadline offered is just after the expiry
    s, at_expiry = _plan(expiry)
    _, just_after = _plan(expiry + SECOND)
    assert at_expiry != just_after  # the plan changes just after the expiry (SYS-AR-START no longer decided)
    assert s.next_due is not None and s.next_due <= expiry + SECOND, s.next_due


def test_review_rle_as_of_is_current_offers_a_deadline_after_now_at_the_expiry() -> None:
    t, age = T0, timedelta(days=30)
    at = r.AsOf(now=t + age)
    assert at.is_current(t, age)  # current at the expiry exactly
    assert not r.AsOf(now=t + age + timedelta(microseconds=1)).is_current(t, age)  # changes just after it
    due = at.next_due()
    assert due is not None and due <= t + age + SECOND, due
