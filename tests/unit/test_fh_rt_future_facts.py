"""HAZ-27-FUTURE-HIDES, radiotherapy planner (helper FH-RT, semantics narrowed after review R28-RT): a fact dated
beyond the clock-skew tolerance that says what the newest current fact of its name or sign says never makes that one
"not current"; a future-dated contradiction is read as before (services/radiotherapy_planner/as_of.py).

Metamorphic property over seeded realistic histories (tests/unit/test_issue25_local_history): adding copies of the
newest facts (the newest assessment, each chosen lesion's newest finding: re-confirmations), dated 16 min to 40 days
after `now` and recorded now, leaves every decision at `now` as it was (the plan, what was published, each item's
inputs), the deadline only earlier (never at or before `now`); once the clock passes their dates, the plan is the one
of a history where they arrived with their dates; a warm memo gives what a cold one gives."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message
from contracts.clock import ClockTick
from contracts.hospital import ClinicalAssessment, ImagingFinding
from contracts.local import LesionSection
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.as_of import FUTURE_TOLERANCE
from services.radiotherapy_planner.domain import apply_event, build_plan, next_due
from services.radiotherapy_planner.facts import LocalState, lesions
from tests.unit.test_issue18_local import NOW, env, plan_items, vertebra
from tests.unit.test_issue25_local_history import patient_history

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
SEEDS = range(8)


def _run(
    events: list[Message], s: LocalState | None = None, now: datetime | None = None
) -> tuple[LocalState, list[Message]]:
    """Each event decided a minute after it is recorded (or at `now`), as the runtime's clock does."""
    s, out = s or LocalState(), list[Message]()
    for e in events:
        s, o = apply_event(s, e, now=now or e.recorded_at + MINUTE)
        out += o
    return s, out


def _plan(s: LocalState, now: datetime, cold: bool = True) -> list[LesionSection]:
    if cold:
        memo.clear()
    return [x.model() for x in build_plan(s, now=now)]


def _copies(rnd: random.Random, events: list[Message], s: LocalState, now: datetime) -> list[Message]:
    """Re-confirmations dated in the future (16 min to 40 days after `now`), recorded now: a copy of the newest final
    assessment (newest of every fact it carries; when no assessment correction is held), and of the newest finding
    of 1-3 lesions."""
    latest = {x.history[-1].event_id for x in lesions(s).values()}
    findings = [e for e in events if isinstance(e, ImagingFinding) and e.event_id in latest]
    finals = [e for e in events if isinstance(e, ClinicalAssessment) and e.record_status == "final"]
    newest = max(finals, key=lambda e: (e.occurred_at, e.recorded_at), default=None)
    assessed = {f.event_id for f in s.assessed.values()}
    picked: list[Message] = rnd.sample(findings, min(len(findings), rnd.randint(1, 3)))
    corrections = any(a.record_status != "final" for a in s.assessments.values())  # as_of.at reads them as before
    if newest is not None and newest.event_id in assessed and not corrections and rnd.random() < 0.7:
        picked.append(newest)
    out: list[Message] = []
    for e in picked:
        at = now + FUTURE_TOLERANCE + MINUTE + timedelta(seconds=rnd.randint(0, 40 * 86400))
        update: dict[str, Any] = {"event_id": uuid.UUID(int=rnd.getrandbits(128), version=4), "occurred_at": at}
        out.append(e.model_copy(update={**update, "recorded_at": now}))
    return out


def _case(seed: int) -> tuple[list[Message], list[Message], datetime]:
    rnd = random.Random(seed)
    stream = patient_history(seed=seed, years=1.5, patient=f"pt-fh-rt-{seed}")
    k = rnd.randint(len(stream) // 3, len(stream))
    prefix = stream[:k]
    s, _ = _run(prefix)
    assert s.decided_at is not None
    return prefix, _copies(rnd, prefix, s, s.decided_at), s.decided_at


@pytest.mark.parametrize("seed", SEEDS)
def test_fh_rt_future_copies_change_no_decision_now_and_only_bring_the_deadline_forward(seed: int) -> None:
    prefix, future, now = _case(seed)
    memo.clear()
    base, _ = _run(prefix)
    with_future, out = _run(future, base, now)
    assert with_future.decided_at == now
    assert out == []  # nothing published: no decision changed
    assert (with_future.published, with_future.plan_digest) == (base.published, base.plan_digest)
    warm = _plan(with_future, now, cold=False)
    assert warm == _plan(with_future, now) == _plan(base, now)  # warm memo == cold, and as without them
    due, due_before = with_future.next_due, base.next_due
    assert due is not None and due > now
    assert due_before is None or due <= due_before
    assert due <= min(e.occurred_at for e in future) - FUTURE_TOLERANCE + timedelta(seconds=1)


@pytest.mark.parametrize("seed", SEEDS)
def test_fh_rt_once_their_dates_pass_the_future_copies_decide_as_if_dated_normally(seed: int) -> None:
    prefix, future, now = _case(seed)
    memo.clear()
    ahead, _ = _run(future, _run(prefix)[0], now)
    # the same records delivered when they happen (recorded a minute after their clinical time)
    normal, _ = _run(
        prefix
        + [
            e.model_copy(update={"recorded_at": e.occurred_at + MINUTE})
            for e in sorted(future, key=lambda e: e.occurred_at)
        ]
    )
    later = max(e.occurred_at for e in future) + 2 * MINUTE
    assert _plan(ahead, later) == _plan(normal, later)
    assert next_due(ahead, later) == next_due(normal, later)
    # and the tick loop reaches it: each deadline up to `later` decided, warm
    s = ahead
    while s.next_due is not None and s.next_due <= later:
        s, _ = apply_event(s, _tick(s), now=s.next_due)
    assert _plan(s, later, cold=False) == _plan(normal, later)


def _tick(s: LocalState) -> Message:
    assert s.next_due is not None
    return ClockTick.model_validate(
        env(s.next_due, source="radiotherapy-planner", service="radiotherapy-planner", due_at=s.next_due.isoformat())
    )


# ---- the emergency facts ------------------------------------------------------------------------------
def _rt(events: list[Message], rule: str, now: datetime = NOW) -> list[tuple[str, str]]:
    memo.clear()
    s, out = LocalState(), list[Message]()
    for e in events:
        s, o = apply_event(s, e, now=now)
        out += o
    return [(i.severity, i.status) for i in plan_items(out) if i.rule_id == rule]


def _at(e: Any, at: datetime, recorded: datetime = NOW) -> Any:
    return e.model_copy(update={"occurred_at": at, "recorded_at": recorded})


def test_fh_rt_a_compression_seen_only_in_the_future_is_still_shown_as_not_current() -> None:
    """RT-MSCC (L1397-1402): with no current imaging of it, a compression dated tomorrow says "dated in the future"
    (warning), as before; it is not left silent."""
    assert _rt([_at(vertebra(cord_compression=True), NOW + DAY)], "RT-MSCC") == [("warning", "to_do")]


def test_fh_rt_a_resolution_dated_tomorrow_does_not_withdraw_todays_emergency() -> None:
    seen = _at(vertebra(cord_compression=True), NOW - DAY, NOW - DAY)
    resolved = _at(vertebra(cord_compression=False, status="resolved"), NOW + DAY)
    assert _rt([seen, resolved], "RT-MSCC") == [("critical", "recommended")]
