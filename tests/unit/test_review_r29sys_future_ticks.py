"""Review R29-SYS (HAZ-27-FUTURE-HIDES, systemic planner "decide twice"): held. A tick loop over random histories
with one to three records of the two folds dated ahead (the helper's generator), their dates pushed to `now +
tolerance` +0/+1/+2 us or left as drawn: at every tick `next_due` is after `now`; no decision (the items but their
inputs) changes at an instant a record dated ahead becomes current before the next tick; a memo-warm plan equals a
cold one; and a state rebuilt from the events (memo cleared) decides as the incremental one."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, build_plan
from tests.unit import test_dt_sys_differential as dt
from tests.unit.test_review_r29sys_no_future_same_as_982e00c import _tick

TOL = r.Recency().future_tolerance
US = timedelta(microseconds=1)
SEEDS = 100


def _decisions(s: SystemicState, now: datetime) -> list[str]:
    return [x.model_dump_json(exclude={"inputs"}) for x in build_plan(s, r.AsOf(now=now, memo=False))]


def test_review_r29sys_ticks_over_records_dated_ahead_are_never_late_and_warm_equals_cold() -> None:
    ticks = 0
    try:
        for seed in range(SEEDS):
            rnd = random.Random(seed)
            past = dt._past(rnd)
            edges_at = [TOL + US, TOL + 2 * US, TOL]
            fut = [
                e.model_copy(update={"occurred_at": dt.NOW + rnd.choice([*edges_at, e.occurred_at - dt.NOW])})
                for e in dt._ahead(rnd, past)
            ]
            events = [*past, *fut]
            m.clear()
            s = SystemicState()
            for e in events:
                s, _ = apply_event(s, e, r.AsOf(now=dt.NOW))
            edges = sorted({e.occurred_at - TOL for e in fut if e.occurred_at - TOL > dt.NOW})
            now = dt.NOW
            for _ in range(8):
                due = s.next_due
                if due is None or now > dt.NOW + timedelta(days=6):
                    break
                assert due > now, seed
                for edge in edges:  # a record becoming current before the next tick changes no decision
                    if now < edge < due:
                        assert _decisions(s, edge) == _decisions(s, now), (seed, edge)
                now = due
                tick = _tick(rnd, now)
                s, _ = apply_event(s, tick, r.AsOf(now=now))
                ticks += 1
                warm = [x.model_dump_json() for x in build_plan(s, r.AsOf(now=now))]
                cold = [x.model_dump_json() for x in build_plan(s, r.AsOf(now=now, memo=False))]
                assert warm == cold, (seed, now)
                m.clear()
                rebuilt = SystemicState()
                for e in events:
                    rebuilt, _ = apply_event(rebuilt, e, r.AsOf(now=dt.NOW))
                rebuilt, _ = apply_event(rebuilt, tick, r.AsOf(now=now))
                assert [x.model_dump_json() for x in build_plan(rebuilt, r.AsOf(now=now, memo=False))] == cold
                assert rebuilt.next_due == s.next_due, (seed, now)
    finally:
        m.clear()
    print(f"\nR29-SYS ticks: {ticks}")
    assert ticks >= SEEDS
