"""Review R29-SC: what held in scoring's "decide twice" (services/scoring/as_of.py, HAZ-27-FUTURE-HIDES).

Over DT-SC's generated histories (tests/unit/test_dt_sc_decide_twice.py: `_past`, `_state`, `_future`) with what its
generator does not make: amended and entered-in-error ASSESSMENTS and TREATMENTS dated ahead (naming their record or
not), up to 12 future-dated records, copies at exactly `now + tolerance` (current) and `+ 1 us` (future), in random
order. At `now`: no crash; memo-warm equals cold; every emergency A gives (a critical recommendation: MIRELS-HIGH
L1314-1330, SINS-SURGICAL L1388-1389; a current SRE: CLASS-SRE L259-296) is still given (never less cautious than
982e00c, whose decision is A); the deadline is after `now`; and the decision does not change between `now` and one
second before the deadline (clock.py's convention: a tick one second after the instant a decision changes), probed.
Reviewer's runs (2026-12-06): 150 seeds of this generator and 200 seeds of DT-SC's with skews up to 3 and up to 60
days: 0 crashes, 0 emergencies lost, 0 late ticks (the late tick of test_review_r29sc_future_breaks.py needs a
current fact whose window ends before the future one's instant: none of these histories had one). Against a real
tree of 982e00c (`git archive 982e00c`), 200 sequences (DT-SC's generator on even seeds, this one on odd) replayed
event by event at their clocks: of the emergencies live at the end (current SREs, critical recommendations), 0 lost,
6 gained (B's: current fractures and compressions a future-dated record hid on 982e00c).
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

import pytest

from contracts.base import Message
from services.scoring import as_of
from services.scoring import rules as r
from services.scoring.common import Decisions
from services.scoring.domain import EVERYTHING, ScoringState, apply_event, decide, decide_now, forget_memos
from tests.unit import test_scoring_scores as sc
from tests.unit.test_dt_sc_decide_twice import _future, _past, _record, _state
from tests.unit.test_issue25_scoring_history import PATIENT

TOLERANCE = r.DEFAULT_POLICY.future_tolerance
US = timedelta(microseconds=1)
SECOND = timedelta(seconds=1)


def _emergencies(d: Decisions) -> set[tuple[str, object]]:
    out: set[tuple[str, object]] = {
        ("rec", k) for k, v in d.recommendations.items() if v.build().severity == "critical"
    }
    return out | {("sre", as_of._sre_key(x, PATIENT)) for x in d.sres.values() if x.current}


def _published(d: Decisions) -> tuple[object, ...]:
    recs = tuple(sorted((k, str(v.event_id)) for k, v in d.recommendations.items()))
    return recs, tuple(sorted(d.sres)), tuple(sorted(d.keep))


def _more_future(rng: random.Random, s: ScoringState, now: datetime) -> list[Message]:
    out: list[Message] = []
    for _ in range(rng.randint(1, 4)):
        out += _future(rng, s, now)
    for table, field in ((list(s.assessments.values()), "neurological_deficit"), (list(s.treatments.values()), None)):
        if table and rng.random() < 0.6:
            base = rng.choice(table)
            status = rng.choice(("amended", "entered-in-error"))
            named = field is None or status != "amended"  # a treatment's correction names its record (contract)
            corrects = base.event_id if named else rng.choice((base.event_id, None))
            update = _record(rng, now) | {"record_status": status, "corrects": corrects}
            if field is not None:
                update[field] = rng.choice((True, False, None))
            out.append(base.model_copy(update=update))
    limit = now + TOLERANCE
    for e in list(out):
        roll = rng.random()
        if roll < 0.2:  # a copy at the edge: current (== limit) or future (limit + 1 us)
            at = limit + US if roll < 0.1 else limit
            out.append(e.model_copy(update={"event_id": uuid.UUID(int=rng.getrandbits(128)), "occurred_at": at}))
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("chunk", range(3))
def test_review_r29sc_corrections_dated_ahead_edges_and_many_future_records(chunk: int) -> None:
    for seed in range(5000 + chunk, 5000 + 60, 3):
        rng, past, now = _past(seed)
        forget_memos()
        s = _state(past)
        for e in _more_future(rng, s, now):
            s, _ = apply_event(s, e, now=now)
        merged = decide_now(s, PATIENT, EVERYTHING, now=now, memo=False)
        warm = decide_now(s, PATIENT, EVERYTHING, now=now, memo=True)
        assert _published(warm) == _published(merged), seed
        a = decide(s, PATIENT, EVERYTHING, now=now, memo=False)
        assert _emergencies(a) <= _emergencies(merged), seed  # never less cautious than A (982e00c)
        due = s.next_due
        assert due is None or due > now, seed
        if due is None:
            continue
        probes = {now + (due - now) * rng.random() for _ in range(3)} | {due - SECOND - US}
        for p in sorted(x for x in probes if now < x < due - SECOND):
            assert _published(decide_now(s, PATIENT, EVERYTHING, now=p, memo=False)) == _published(merged), (seed, p)


def test_review_r29sc_a_fact_at_exactly_now_plus_tolerance_is_current_one_microsecond_later_is_future() -> None:
    """r.is_future: `occurred_at > now + tolerance`. At the limit: no view is decided (A itself); 1 us after: the
    views are, and the deadline is the instant it becomes current + 1 s (after `now`, never at it)."""
    now = sc.T0 + timedelta(hours=2)
    seen = sc.finding(0, **sc.T9, cord_compression=True)
    s, _ = apply_event(ScoringState(), seen, now=now)
    for delta, future in ((timedelta(0), False), (US, True)):
        again = sc.finding(0, **sc.T9, cord_compression=True)
        again = again.model_copy(update={"occurred_at": now + TOLERANCE + delta, "recorded_at": now})
        t, out = apply_event(s, again, now=now)
        assert as_of.has_future(t, as_of.limit_of(now, r.DEFAULT_POLICY)) is future
        assert [(x.kind, x.current) for x in sc.live_sres(out)] == []  # nothing new: the same current SRE
        assert t.next_due is not None and t.next_due > now
        if future:
            assert t.next_due == now + delta + SECOND
