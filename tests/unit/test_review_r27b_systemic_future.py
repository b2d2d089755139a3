"""Review R27B (of 72f19df, HAZ-27-SYS-FUTURE): `AsOf.is_future` offers `t - tolerance` as a deadline while it answers
"future"; `AsOf.not_after` reads scoring's inclusive `current_until`; `is_current` guards `t + max_age + 1 us`.

What held (passing tests here): a tick loop over patients whose facts (the metastasis, life expectancies,
clearances and their weights, calcium, vitamin D, CTX, an SRE, a biopsy, a drug start) are dated at random, many
in the future and some at `now + tolerance` +-1 us: from each decision the plan (texts included) and `next_due`
stay the same at every instant before `next_due` (never late; a deadline is never at or before `now`), including
each future edge +-1 us, and a memo-warm decision equals a cold one at every instant; `AsOf`'s comparisons near
`datetime.min` and `datetime.max` do not raise (at `now == datetime.max` itself `_side(None)` overflows on `now + 1
us`: pre-existing, unreachable with a real clock, not tested).

What broke (a strict xfail until 2026-12-06): a lesion status dated in the future (a finding dated tomorrow saying
"resolved") was applied at once, silently: now the start is suspended "to verify" until then (decide twice)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from contracts.base import Message
from contracts.care import CareEvent
from contracts.clinical import SkeletalEvent
from contracts.hospital import ImagingFinding
from services.systemic_planner import memo as m
from services.systemic_planner import rules as r
from services.systemic_planner.domain import build_plan
from tests.unit.test_systemic_rules import T0, drug, env, items, lab, le, met, ready, run

US = timedelta(microseconds=1)
TZ = ZoneInfo("Europe/Paris")
REC = r.Recency()
TOL = REC.future_tolerance
NOW0 = T0 + timedelta(hours=2)


def _dated(e: Any, dt: timedelta) -> Any:
    """The event with its clinical time T0 + dt (recorded at T0: a hospital clock ahead of ours)."""
    return e.model_copy(update={"occurred_at": T0 + dt, "recorded_at": T0})


def _sre() -> SkeletalEvent:
    return SkeletalEvent.model_validate({**env(0), "kind": "hypercalcaemia", "rule_id": "CLASS-SRE", "evidence": []})


def _biopsy(status: str) -> CareEvent:
    body = {"kind": "bone_biopsy", "biopsy_id": "bx1", "status": status, "on": "2026-11-01"}
    return CareEvent.model_validate({**env(0), "event": body})


def _history(seed: int) -> list[Message]:
    rnd = random.Random(seed)

    def off() -> timedelta:
        edge = [timedelta(hours=2) + TOL + k * US for k in (-1, 0, 1, 2)]  # at now0's tolerance +-1 us
        spread = timedelta(minutes=rnd.randint(-60 * 24 * 40, 60 * 24 * 10), microseconds=rnd.randint(-3, 3))
        return rnd.choice([*edge, spread, spread, spread])

    evs: list[Message] = [_dated(met(), off()), le(-60, 10.0), _dated(le(0, rnd.choice([2.0, 10.0])), off()), *ready()]
    for _ in range(rnd.randint(0, 3)):
        weighed = rnd.randint(-60 * 24 * 40, 60 * 24 * 10)
        crcl = lab(rnd.randint(0, 10**6), "creatinine_clearance", rnd.choice([25.0, 60.0]), "mL/min", [], weighed)
        evs.append(_dated(crcl, off()))
    for analyte, unit, values in (
        ("corrected_calcium", "mmol/L", [2.4, 2.8, 3.7]),
        ("vitamin_d_25oh", "ng/mL", [12.0, 25.0, 40.0]),
        ("ctx_serum", "pg/mL", [150.0, 600.0]),
    ):
        for _ in range(rnd.randint(0, 3)):
            extra: dict[str, Any] = {"interpretation": "interpretable"} if analyte == "ctx_serum" else {}
            evs.append(_dated(lab(rnd.randint(0, 10**6), analyte, rnd.choice(values), unit, **extra), off()))
    if rnd.random() < 0.5:
        evs.append(_dated(_sre(), off()))
    if rnd.random() < 0.5:
        evs.append(_dated(_biopsy(rnd.choice(["planned", "reported"])), off()))
    if rnd.random() < 0.5:
        evs.append(_dated(drug(0, "zoledronic_acid", "started", "2026-10-01"), off()))
    rnd.shuffle(evs)
    return evs


@pytest.mark.parametrize("seed", range(16))
def test_review_r27b_a_tick_loop_over_future_dated_facts_is_never_late_and_warm_equals_cold(seed: int) -> None:
    rnd = random.Random(1000 + seed)
    events = _history(seed)
    s, _ = run(events, now=NOW0)
    edges = sorted({e.occurred_at - TOL for e in events})

    def decide(now: datetime, memo: bool) -> tuple[list[tuple[str, ...]], datetime | None]:
        at = r.AsOf(now=now, tz=TZ, recency=REC, memo=memo)
        plan = build_plan(s, at)
        return [(x.key, x.status, x.rule_id, x.severity, x.text_fr) for x in plan], at.next_due()

    m.clear()
    try:
        now = NOW0
        plan, due = decide(now, False)
        for _ in range(60):
            if due is None:
                break
            assert due > now  # a deadline at or before `now` is never offered
            probes = [due - US, *(e + k * US for e in edges for k in (-1, 0, 1))]
            probes += [now + (due - now) * rnd.random() for _ in range(3)]
            for p in sorted(q for q in probes if now <= q < due):
                cold = decide(p, False)
                assert decide(p, True) == cold, p  # a memo hit (or a build) gives what no memo gives
                assert cold == (plan, due), p  # nothing changes before the tick: the tick is never late
            now = due
            plan, due = decide(now, False)
            assert decide(now, True) == (plan, due)
    finally:
        m.clear()


TOP = datetime.max.replace(tzinfo=UTC)
BOTTOM = datetime.min.replace(tzinfo=UTC)
EXTREMES = [TOP, TOP - timedelta(minutes=5), BOTTOM, BOTTOM + timedelta(minutes=5), BOTTOM + timedelta(days=40)]


@pytest.mark.parametrize("now", EXTREMES[1:])
@pytest.mark.parametrize("t", EXTREMES)
def test_review_r27b_as_of_comparisons_near_the_datetime_range_ends_do_not_raise(now: datetime, t: datetime) -> None:
    for ask in ("is_future", "not_after", "is_current", "before"):
        at = r.AsOf(now=now, memo=False)
        if ask == "is_current":
            at.is_current(t, timedelta(days=30))
        else:
            getattr(at, ask)(t)
        due = at.next_due()
        assert at.lo <= now < at.hi and (due is None or due > now)


def test_review_r27b_is_future_of_an_instant_within_the_tolerance_of_datetime_min_is_never_future() -> None:
    at = r.AsOf(now=BOTTOM, memo=False)
    assert not at.is_future(BOTTOM + TOL - US) and at.next_due() is None
    at = r.AsOf(now=BOTTOM, memo=False)
    assert at.is_future(BOTTOM + TOL + US) and at.next_due() == BOTTOM + US


def test_review_r27b_a_resolution_dated_tomorrow_does_not_withdraw_the_start_today() -> None:
    """A finding dated tomorrow (beyond the tolerance) saying the lesion is resolved removed SYS-AR-START now, silently
    (`LesionFacts.status` is the newest whatever its date). Decided by the lead (2026-12-06, HAZ-27-FUTURE-HIDES,
    decide twice): the current CT (B: start) and the resolution read as holding now (C: no item) disagree, so the
    start is neither drafted (no order while a record says otherwise) nor silently withdrawn: it is suspended, a
    warning naming the record dated ahead, to verify; once that record is current, resolved (no item). This test
    asserted "recommended" at `now` when it was a strict xfail: that read the future fact as absent, which reviews
    R28-RT/R28-SYS broke (a future-dated fact is never ignored)."""
    now = T0 + timedelta(hours=2)
    resolved = ImagingFinding.model_validate(
        {**env(24 * 60), "lesion_id": "a", "skeletal_site": "femur_shaft", "modality": "ct", "status": "resolved"}
    ).model_copy(update={"recorded_at": T0 + timedelta(hours=1)})
    s, _ = run([met(), le(0, 10.0), *ready(), resolved], now=now)
    becomes = T0 + timedelta(days=1) - TOL
    assert "antiresorptive-start" not in items(s, becomes)  # effective: resolved (holds today too)
    start = items(s, now).get("antiresorptive-start")
    assert start is not None and (start.status, start.severity) == ("cannot_decide", "warning")
    assert not start.orders and "daté dans le futur" in start.text_fr
    assert resolved.event_id in {i.source_event_id for i in start.inputs}
    assert s.next_due is not None and s.next_due <= becomes
