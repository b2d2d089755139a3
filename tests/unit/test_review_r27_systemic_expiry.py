"""Review R27 (of d20a7df, HAZ-26-LE-02): `AsOf.is_current` registers `expiry + 1 us` as its deadline, always.

Checked here, on `AsOf` alone and through the memo (services/systemic_planner/memo.py): a decision at the expiry
- 1 us, at the expiry and at the expiry + 1 us; a tick at the deadline finds the answer changed (never early) and the
instant before it does not (never late); a memo hit at any `now` of a span gives the answer and `next_due` a fresh
decision gives there. Four pre-existing gaps found on the way (not from d20a7df), strict xfails fixed by the lead
(HAZ-27-SYS-FUTURE): a CrCl whose weight, or a metastasis, is dated in the future scheduled no tick for the moment it
becomes current; scoring's `current_until` was read as exclusive (1 us early); `is_current` near `datetime.max`
raised OverflowError although its code guards that overflow."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.systemic_planner import labs, state
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import build_plan
from shared.clinical.facts import Fact
from tests.unit.test_systemic_rules import T0, items, lab, le, met, ready, run

US = timedelta(microseconds=1)
TZ = ZoneInfo("Europe/Paris")
WINDOWS = [w for w in vars(r.Recency()).values() if w != r.Recency().future_tolerance]


def _decide(now: datetime, t: datetime, age: timedelta) -> tuple[bool, datetime | None, r.AsOf]:
    at = r.AsOf(now=now, memo=False)
    answer = at.is_current(t, age)
    return answer, at.next_due(), at


@settings(max_examples=300, deadline=None)
@given(
    age=st.sampled_from(WINDOWS),
    t_us=st.integers(min_value=-(10**12), max_value=10**12),
    k=st.one_of(st.integers(min_value=-3, max_value=3), st.integers(min_value=-(10**11), max_value=10**11)),
)
def test_review_r27_is_current_around_its_expiry_ticks_never_early_never_late(
    age: timedelta, t_us: int, k: int
) -> None:
    t = T0 + timedelta(microseconds=t_us)
    expiry = t + age
    now = expiry + k * US
    answer, due, at = _decide(now, t, age)
    future = t > now + at.recency.future_tolerance
    assert answer is (not future and now <= expiry)
    # the span holds the answer at both ends and changes right after it
    assert at.lo <= now < at.hi
    assert _decide(at.lo, t, age)[0] is answer
    if at.hi < r.LATEST:  # (at datetime.max itself `now + future_tolerance` overflows: see the last test)
        assert _decide(at.hi - US, t, age)[0] is answer
        assert _decide(at.hi, t, age)[0] is not answer
    if answer:  # current: the tick is the first instant it is not (expiry + 1 us), whatever `now` is in the span
        assert due == expiry + US == at.hi
        assert _decide(due, t, age)[0] is False  # never early: a tick at the deadline sees the change
        assert _decide(due - US, t, age)[0] is True  # never late: the instant before it still current
    elif not future:
        assert due is None  # expired: nothing more to come from this fact


@settings(max_examples=150, deadline=None)
@given(
    age=st.sampled_from(WINDOWS),
    first=st.integers(min_value=-5, max_value=5),
    second=st.integers(min_value=-5, max_value=5),
)
def test_review_r27_a_memo_hit_gives_the_fresh_decisions_next_due_at_every_now_of_its_span(
    age: timedelta, first: int, second: int
) -> None:
    """Memoise at expiry + `first` us, reuse at expiry + `second` us: when the reuse is a hit (same span), its answer
    and next_due are the fresh decision's there; when it is not, it decides afresh."""
    m.clear()
    t = T0
    expiry = t + age
    held, recency, builds = object(), r.Recency(), []

    def decide(now: datetime) -> tuple[bool, datetime | None]:
        at = r.AsOf(now=now, tz=TZ, recency=recency)  # one Recency and zone, as the service passes them

        def build() -> bool:
            builds.append(now)
            return at.is_current(t, age)

        value = m.memo("r27", at, (held,), build)
        return value, at.next_due()

    try:
        decide(expiry + first * US)
        got = decide(expiry + second * US)
        assert got == _decide(expiry + second * US, t, age)[:2]
        same_side = (first <= 0) == (second <= 0)
        assert len(builds) == (1 if same_side else 2)  # a hit within the span, a fresh decision across the edge
    finally:
        m.clear()


def test_review_r27_the_three_instants_around_an_expiry() -> None:
    t, age = T0, timedelta(days=30)
    expiry = t + age
    assert _decide(expiry - US, t, age)[:2] == (True, expiry + US)
    assert _decide(expiry, t, age)[:2] == (True, expiry + US)  # HAZ-26-LE-02: the edge is offered at the expiry too
    assert _decide(expiry + US, t, age)[:2] == (False, None)


def test_review_r27_a_crcl_weighed_in_the_future_ticks_when_the_weight_becomes_current() -> None:
    now = T0 + timedelta(hours=2)
    weighed = T0 + timedelta(days=1)  # the weight of the clearance dated tomorrow (beyond the 10 min tolerance)
    s, _ = run(
        [met(), le(0, 10.0), *ready(), lab(5, "creatinine_clearance", 60.0, "mL/min", weighed_minutes=24 * 60)], now=now
    )
    before = items(s, now)["prerequisites"].status
    becomes = weighed - r.Recency().future_tolerance
    after = items(s, becomes)["prerequisites"].status
    assert (before, after) == ("to_do", "done")  # the plan changes when the weight stops being future-dated
    assert s.next_due is not None and s.next_due <= becomes, s.next_due  # was 2026-12-01 (creatinine's expiry)


def test_review_r27_is_current_near_datetime_max_does_not_raise() -> None:
    top = datetime.max.replace(tzinfo=UTC)
    at = r.AsOf(now=top - timedelta(days=1), memo=False)
    assert at.is_current(top - timedelta(days=2), timedelta(days=30))


def test_review_r27_an_assessed_sre_is_current_at_its_current_until_as_scoring_says() -> None:
    window = r.Recency().calcium
    sre = Fact[str](value="hypercalcaemia", occurred_at=T0, recorded_at=T0, event_id=uuid.uuid4())
    until = T0 + window  # scoring's current_until: evidence_at + the window
    currency = state.SreCurrency(current=True, evidence_at=T0, current_until=until)
    s = state.SystemicState(sre_currency={str(sre.event_id): currency})
    assert r.AsOf(now=until, memo=False).is_current(T0, window)  # the fallback (no assessment): current there
    assert labs.sre_is_current(s, sre, r.AsOf(now=until, memo=False), window)  # was False


def test_review_r27_a_metastasis_dated_tomorrow_ticks_when_it_becomes_effective() -> None:
    now = T0 + timedelta(hours=2)
    s, _ = run([met(24 * 60), le(0, 10.0), *ready()], now=now)  # the finding dated T0 + 1 day
    becomes = T0 + timedelta(days=1) - r.Recency().future_tolerance
    assert "antiresorptive-start" not in items(s, now)
    assert items(s, becomes)["antiresorptive-start"].status == "recommended"  # effective: the plan changes
    assert s.next_due is not None and s.next_due <= becomes, s.next_due  # was 2027-01-31 (LE expiry)


def test_review_r27_warm_plans_equal_cold_ones_at_every_instant_around_each_window_expiry() -> None:
    """The whole plan and its next_due, memo warm (instants in a shuffled order) against no memo, at the expiry
    - 2 us ... + 2 us of every currency window of a patient (calcium, creatinine, weight, vitamin D, LE)."""
    rec_ = r.Recency()
    labs = [lab(5, "creatinine_clearance", 60.0, "mL/min"), lab(6, "corrected_calcium", 2.4, "mmol/L")]
    s, _ = run([met(), le(0, 10.0), *ready(), *labs], now=T0 + timedelta(hours=2))
    windows = [rec_.calcium, rec_.creatinine, rec_.weight, rec_.vitamin_d, rec_.life_expectancy]
    expiries = [T0 + timedelta(minutes=mm) + w for w in windows for mm in (0, 5, 6, 50)]
    nows = sorted({e + k * US for e in expiries for k in range(-2, 3)})
    random.Random(27).shuffle(nows)

    def decide(now: datetime, memo: bool) -> tuple[list[tuple[str, str, str, str]], datetime | None]:
        at = r.AsOf(now=now, tz=TZ, recency=rec_, memo=memo)
        plan = build_plan(s, at)
        return [(x.key, x.status, x.rule_id, x.text_fr) for x in plan], at.next_due()

    m.clear()
    try:
        for now in nows:
            assert decide(now, True) == decide(now, False), now
    finally:
        m.clear()
