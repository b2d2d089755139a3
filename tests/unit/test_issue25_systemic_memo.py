"""Issue 25, systemic planner: the memoised decisions (services/systemic_planner/memo.py) never change an output.

A memoised decision is reused at any `now` within the span over which every comparison it made with `now` answers
the same (rules.AsOf narrows it). Checked here: (1) the span itself, for each comparison, against the answer at
other times; (2) over generated histories of years (the retention tests' generator), every event's outputs,
`next_due`, stored state and served plan with the memo as without it (`AsOf.memo` False), the decisions being
actually reused (the same item objects), also when the time of the decisions goes back and forth."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.systemic_planner import memo
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, build_plan, current_plan
from tests.unit.histories import PROFILES, World, _dump, _prologue, steps, systemic_history

RECENCY = r.Recency()  # one object, as SystemicSettings.as_of gives: memo.py holds decisions by it
T0 = datetime(2024, 3, 30, 12, 0, tzinfo=UTC)  # the spring clock change in Paris is the next night
times = st.integers(-5 * 24 * 3600, 5 * 24 * 3600).map(lambda s: T0 + timedelta(seconds=s, microseconds=s % 7))
days = st.integers(-6, 6).map(lambda k: T0.date() + timedelta(days=k))


def _answers(at: r.AsOf, t: datetime, d: date, age: timedelta) -> tuple[bool, ...]:
    return (
        at.is_future(t),
        at.is_current(t, age),
        at.before(t),
        at.today_ge(d),
        at.today_gt(d),
        at.today_le(d),
        at.today_lt(d),
        at.today == d,
    )


@settings(max_examples=400, deadline=None)
@given(
    now=times,
    other=times,
    t=times,
    d=days,
    hours=st.integers(0, 72),
)
def test_each_comparison_answers_the_same_anywhere_within_its_span(
    now: datetime, other: datetime, t: datetime, d: date, hours: int
) -> None:
    """AsOf's span is sound: at any `now` inside [lo, hi) every comparison answers as at `now`, and `now` is inside."""
    age = timedelta(hours=hours)
    at = r.AsOf(now=now, recency=RECENCY)
    first = _answers(at, t, d, age)
    assert at.lo <= now < at.hi
    if at.lo <= other < at.hi:
        assert _answers(r.AsOf(now=other, recency=RECENCY), t, d, age) == first
    # and the span is not empty of other times when no comparison is close: its edges are the comparisons' own
    assert at.hi > at.lo


def _run(program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...], shuffle_now: bool) -> int:
    """The history with the memo and without it: the same outputs, deadline, state and served plan after every event.
    Returns how many plan items were reused (the same object as at the previous decision)."""
    memo.clear()
    with_memo, without = SystemicState(), SystemicState()
    reused, previous = 0, set()
    for e, decided, step in systemic_history(program, profile):
        # the time of a decision may also go back (a decision at an earlier `now` than one before it)
        now = decided - timedelta(hours=step[4] % 50) if shuffle_now and step[2] % 3 == 0 else decided
        at, reference = r.AsOf(now=now, recency=RECENCY), r.AsOf(now=now, recency=RECENCY, memo=False)
        with_memo, out = apply_event(with_memo, e, at)
        without, out_ref = apply_event(without, e, reference)
        assert _dump(out) == _dump(out_ref), e
        assert with_memo.next_due == without.next_due
        assert with_memo.model_dump_json() == without.model_dump_json()
        plan = current_plan(with_memo, "p1", at=r.AsOf(now=now, recency=RECENCY))
        plan_ref = current_plan(without, "p1", at=r.AsOf(now=now, recency=RECENCY, memo=False))
        assert (plan and plan.model_dump(mode="json")) == (plan_ref and plan_ref.model_dump(mode="json"))
        items = build_plan(with_memo, r.AsOf(now=now, recency=RECENCY))
        reused += sum(1 for x in items if id(x) in previous)
        previous = {id(x) for x in items}
    return reused


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=steps, profile=st.sampled_from(PROFILES), shuffle_now=st.booleans())
def test_the_memo_never_changes_an_output(
    program: list[tuple[int, int, int, int, int]], profile: tuple[int, ...], shuffle_now: bool
) -> None:
    _run(program, profile, shuffle_now)


def test_decisions_are_reused_across_events_and_days() -> None:
    """Not vacuous: over a mixed history most items are the objects decided before (reused, not decided again)."""
    program = [(k % 13, k * 7 % 31, k * 5 % 31, k * 11 % 201, k * 3 % 101) for k in range(100)]
    assert _run(program, PROFILES[0], shuffle_now=False) > 100


def test_the_same_state_later_reuses_what_no_comparison_changed_and_decides_again_what_one_did() -> None:
    """A state decided at two times: what holds over both is the same object; an answer that changed between them
    (a week later: the recency of labs, the dental review) is decided again, as the reference decides it."""
    memo.clear()
    w = World()
    s = SystemicState()
    for e in _prologue(w):
        s, _ = apply_event(s, e, r.AsOf(now=T0, recency=RECENCY))
    first = build_plan(s, r.AsOf(now=T0 + timedelta(hours=1), recency=RECENCY))
    again = build_plan(s, r.AsOf(now=T0 + timedelta(hours=2), recency=RECENCY))
    assert [x is y for x, y in zip(first, again, strict=True)].count(True) >= len(first) - 1  # what remains is timed
    later = r.AsOf(now=T0 + timedelta(days=400), recency=RECENCY)
    decided = build_plan(s, later)
    reference = build_plan(s, r.AsOf(now=later.now, recency=RECENCY, memo=False))
    assert [x.model_dump(mode="json") for x in decided] == [x.model_dump(mode="json") for x in reference]
    assert any(x is not y for x, y in zip(first, decided, strict=False))
