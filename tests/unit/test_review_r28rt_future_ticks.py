"""Review R28-RT (of merge 62d6a37, FH-RT): what held, as regression tests.

Over seeded realistic histories (tests/unit/test_issue25_local_history), copies of the patient's own facts
(assessments, imaging findings, haemostasis labs, their event IDs new) dated in the future at the edges of the
tolerance (`now + tolerance` +-1 us, +1 s, and up to three days), recorded at `now`:
- the tick loop (the runtime's: decide at each `next_due`) is never late: just before the moment each deadline is
  for (the deadline - 1 s, the planner's convention, - 1 us) a cold decision gives the digests of the last one; each
  deadline is after the decision that set it;
- at each deadline, and 1 us on either side of it, a memo-warm decision equals a cold one (whole plan, inputs shown);
- once the last copy is effective, the plan is that of the same records delivered normally (recorded when they
  happen). (Before that, a copy that contradicts the current fact is read as before, not as if absent: the
  semantics narrowed after this review, as_of.py; the decisions in between are not those of normal dating.)
- the state does not depend on the clock: the same records decided at other instants (a rebuild) give the same
  facts (findings, assessments, labs, bases)."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.clinical import NormalisedLab
from contracts.clock import ClockTick
from contracts.hospital import ClinicalAssessment, ImagingFinding
from contracts.local import LesionSection
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import FUTURE_TOLERANCE, apply_event, build_plan
from services.radiotherapy_planner.facts import LocalState
from tests.unit.test_issue18_local import env
from tests.unit.test_issue25_local_history import patient_history

US = timedelta(microseconds=1)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
SEEDS = range(12)


def _run(events: list[Message], s: LocalState | None = None, now: datetime | None = None) -> LocalState:
    s = s or LocalState()
    for e in events:
        s, _ = apply_event(s, e, now=now or e.recorded_at + MINUTE)
    return s


def _plan(s: LocalState, now: datetime, cold: bool) -> list[LesionSection]:
    if cold:
        memo.clear()
    return [x.model() for x in build_plan(s, now=now)]


def _digests(s: LocalState, now: datetime) -> list[tuple[str, str]]:
    memo.clear()
    return [(i.key, i.digest) for sec in build_plan(s, now=now) for i in sec.items]


def _ahead(rnd: random.Random, events: list[Message], now: datetime) -> list[Message]:
    pool = [e for e in events if isinstance(e, ClinicalAssessment | ImagingFinding) and e.record_status == "final"]
    labs = [e for e in events if isinstance(e, NormalisedLab) and e.analyte in ("platelets", "prothrombin_pct")]
    picked = rnd.sample(pool, min(len(pool), rnd.randint(2, 5))) + rnd.sample(labs, min(len(labs), rnd.randint(0, 2)))
    offsets = [US, -US, timedelta(seconds=1), timedelta(hours=rnd.randint(1, 72))]
    out: list[Message] = []
    for e in picked:
        eid = uuid.UUID(int=rnd.getrandbits(128), version=4)
        update: dict[str, Any] = {"event_id": eid, "occurred_at": now + FUTURE_TOLERANCE + rnd.choice(offsets)}
        if isinstance(e, NormalisedLab):
            update["result_id"] = f"ahead-{eid}"
        out.append(e.model_copy(update={**update, "recorded_at": now}))
    return out


def _tick(s: LocalState) -> Message:
    assert s.next_due is not None
    return ClockTick.model_validate(
        env(s.next_due, source="radiotherapy-planner", service="radiotherapy-planner", due_at=s.next_due.isoformat())
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_review_r28rt_ticks_over_facts_dated_at_the_tolerance_edges_are_never_late_and_warm_equals_cold(
    seed: int,
) -> None:
    rnd = random.Random(seed)
    stream = patient_history(seed=seed, years=1.0, patient=f"pt-r28rt-{seed}")
    prefix = stream[: rnd.randint(len(stream) // 3, len(stream))]
    memo.clear()
    s = _run(prefix)
    assert s.decided_at is not None
    now = s.decided_at
    ahead = _ahead(rnd, prefix, now)
    s = _run(ahead, s, now)
    end = max(e.occurred_at for e in ahead) + 2 * MINUTE
    normal: dict[frozenset[uuid.UUID], LocalState] = {}

    def as_if_dated_normally(t: datetime) -> list[tuple[str, str]]:
        """The decision at `t` of the records without the copies still future at `t`, the others delivered when
        they happen (recorded a minute after their clinical time)."""
        now_current = [e for e in ahead if _clinical_time(e) <= t + FUTURE_TOLERANCE]
        key = frozenset(e.event_id for e in now_current)
        if key not in normal:
            normal[key] = _run(
                prefix
                + [
                    e.model_copy(update={"recorded_at": _clinical_time(e) + MINUTE})
                    for e in sorted(now_current, key=_clinical_time)
                ]
            )
        return _digests(normal[key], t)

    decided, last = now, _digests(s, now)
    for _ in range(200):
        due = s.next_due
        # nothing changes before the moment the deadline is for (the tick is that moment + 1 s, the planner's
        # convention for every window: domain.next_due): never late, nor after the last deadline up to `end`
        until = end if due is None or due > end else due - SECOND - US
        assert _digests(s, max(decided, until)) == last, (seed, due)
        if due is None or due > end:
            break
        assert due > decided
        warm = _plan(s, due, cold=False)  # the memo as the last decision left it
        assert warm == _plan(s, due, cold=True)
        s, _ = apply_event(s, _tick(s), now=due)
        decided = due
        for t in (due - US, due, due + US):
            _plan(s, t, cold=False)
            assert _plan(s, t, cold=False) == _plan(s, t, cold=True), (seed, t)
        last = _digests(s, due)
    assert _plan(s, end, cold=False) == _plan(s, end, cold=True)
    assert _digests(s, end) == as_if_dated_normally(end)


def _clinical_time(e: Message) -> datetime:
    t = getattr(e, "occurred_at", None)
    assert isinstance(t, datetime)
    return t


def _facts(s: LocalState) -> tuple[object, ...]:
    return (
        s.findings,
        s.assessed,
        s.opinions,
        s.assessments,
        s.labs,
        s.assessed_base,
        s.opinions_base,
        s.treatments,
        s.requests,
        s.scores,
    )


@pytest.mark.parametrize("seed", range(6))
def test_review_r28rt_the_state_with_facts_dated_ahead_does_not_depend_on_the_clock(seed: int) -> None:
    rnd = random.Random(100 + seed)
    stream = patient_history(seed=seed, years=1.0, patient=f"pt-r28rt-rebuild-{seed}")
    memo.clear()
    s = _run(stream)
    assert s.decided_at is not None
    ahead = _ahead(rnd, stream, s.decided_at)
    live = _run(ahead, s, s.decided_at)
    memo.clear()
    rebuilt = _run(stream + ahead, now=s.decided_at + timedelta(days=30))  # a rebuild a month later
    assert _facts(rebuilt) == _facts(live)
