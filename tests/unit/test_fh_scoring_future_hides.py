"""HAZ-27-FUTURE-HIDES (scoring): a fact dated beyond the clock-skew tolerance is left out of every decision and hides
no current fact of the same name or lesion (services/scoring/current.py). Metamorphic, seeded: for generated
histories (tests/unit/test_issue25_scoring_history.history), adding facts dated in the future (copies of existing
findings, assessments and calcium results, values changed, recorded now) leaves every decision at `now` as it was,
but for the deadline (earlier or the same, never at or before now) and the calcium's own "dated in the future"
notice (LAB-CA-CRISIS, by design); once the clock passes their dates, the decisions are those of the same facts
recorded at their dates; memo-warm decisions equal cold ones."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from contracts.base import Message, derived_id
from contracts.clinical import NormalisedLab
from contracts.clock import ClockTick
from contracts.hospital import ClinicalAssessment, ImagingFinding
from services.scoring import rules as r
from services.scoring.clock import next_due
from services.scoring.common import Context, Decisions
from services.scoring.domain import EVERYTHING, ScoringState, apply_event, decide, forget_memos
from services.scoring.retention import ASSESSMENTS_KEPT
from services.scoring.sre import decide_sres
from tests.unit import test_scoring_scores as sc
from tests.unit.test_issue25_scoring_history import history

TOLERANCE = r.DEFAULT_POLICY.future_tolerance
MINUTE = timedelta(minutes=1)


def _state(events: list[Message], retained: bool = True) -> ScoringState:
    s = ScoringState()
    for e in events:
        s, _ = apply_event(s, e, now=e.recorded_at, retained=retained)
    return s


def _driven(s: ScoringState, events: list[Message], until: datetime) -> ScoringState:
    """`s` after `events` (in recorded order), each at its recorded time, and every clock tick due up to `until`, as
    the runtime fires them (what was published, which the calcium decisions read, then follows the clock)."""
    queue = sorted(events, key=lambda e: e.recorded_at)
    while True:
        due = s.next_due
        if due is not None and due <= until and (not queue or due < queue[0].recorded_at):
            tick = ClockTick(
                event_id=derived_id("clock", "scoring", "p", due.isoformat()),
                patient_id="p",
                occurred_at=due,
                recorded_at=due,
                source="scoring",
                service="scoring",
                due_at=due,
            )
            s, _ = apply_event(s, tick, now=due, retained=False)
        elif queue:
            e = queue.pop(0)
            s, _ = apply_event(s, e, now=e.recorded_at, retained=False)
        else:
            return s


def _view(d: Decisions, drop_future_notice: bool = True) -> dict[str, Any]:
    """Every decision, built, without its recorded time (a fact recorded later makes a later message)."""

    def dump(m: Any) -> Any:
        return m.model_dump(mode="json", exclude={"recorded_at"})

    recs = {k: dump(v.build()) for k, v in d.recommendations.items()}
    if drop_future_notice:
        recs = {k: v for k, v in recs.items() if not k.startswith("calcium:future:")}
    return {
        "recommendations": recs,
        "scores": {k: dump(v.build()) for k, v in d.scores.items()},
        "sres": {k: dump(v) for k, v in d.sres.items()},
        "keep": sorted(d.keep),
    }


def _decided(s: ScoringState, at: datetime, memo: bool) -> dict[str, Any]:
    return _view(decide(s, "p", EVERYTHING, now=at, memo=memo))


def _future_copies(rng: random.Random, past: list[Message], now: datetime, n: int) -> list[Message]:
    """`n` copies of existing final findings, assessments and calcium results, dated 16 min to 40 days ahead,
    recorded now, their values changed (a compression or deficit withdrawn or stated, a lesion resolved...)."""
    # recorded with the newest record (retention's horizon ends there either way: services/scoring/retention.py)
    recorded = past[-1].recorded_at
    pool = [e for e in past if getattr(e, "record_status", "final") == "final"]
    pool = [e for e in pool if isinstance(e, ImagingFinding | ClinicalAssessment | NormalisedLab)]
    out: list[Message] = []
    for e in rng.sample(pool, min(n, len(pool))):
        at = now + TOLERANCE + timedelta(seconds=rng.randint(60, 40 * 86400))
        update: dict[str, Any] = {
            "event_id": uuid.UUID(int=rng.getrandbits(128)),
            "occurred_at": at,
            "recorded_at": recorded,
        }
        if isinstance(e, ImagingFinding):
            for name in ("cord_compression", "pathological_fracture", "epidural_extension"):
                update[name] = rng.choice([None, True, False])
            update["status"] = rng.choice([None, "resolved", "confirmed", "suspected"])
            update["new_focus"] = rng.random() < 0.3
        elif isinstance(e, ClinicalAssessment):
            for name in ("neurological_deficit", "primary_controlled"):
                if getattr(e, name) is not None:
                    update[name] = rng.choice([True, False])
            if e.ecog is not None:
                update["ecog"] = rng.randint(0, 4)
            if e.life_expectancy_months is not None:
                update["life_expectancy_months"] = rng.choice([1.0, 2.5, 5.0, 24.0])
        elif isinstance(e, NormalisedLab):
            update["result_id"] = f"future-{update['event_id']}"
            update["value"] = rng.choice([2.2, 3.6, 4.0])
            update["derived_from"] = [x.model_copy(update={"occurred_at": at}) for x in e.derived_from]
        out.append(e.model_copy(update=update))
    return out


@pytest.mark.parametrize("seed", range(16))
def test_fh_scoring_future_dated_facts_change_no_decision_now_and_count_from_their_date(seed: int) -> None:
    rng = random.Random(seed)
    events = history(seed, 0.6, lab_days=6, imaging_days=12, assessment_days=8, crises_per_year=4)
    cut = rng.randint(len(events) // 2, len(events) - 1)
    past = events[:cut]
    now = past[-1].recorded_at + timedelta(minutes=rng.randint(1, 600))
    future = _future_copies(rng, past, now, rng.randint(1, 5))
    forget_memos()
    without = _state(past)
    with_ = _state(past + future)
    for s in (without, with_):
        s.next_due = None
    # at now: every decision as without them
    assert _decided(with_, now, memo=False) == _decided(without, now, memo=False)
    # the deadline: earlier or the same, after now
    due_without, due_with = next_due(without, now), next_due(with_, now)
    assert due_with is not None and due_with > now
    assert due_without is None or due_with <= due_without
    first = min(e.occurred_at for e in future)
    assert due_with <= first - TOLERANCE + timedelta(seconds=1)
    # warm equals cold (the memoised clock and decisions), at now and at the future facts' dates
    later = max(e.occurred_at for e in future) + MINUTE
    instants = [now, first - TOLERANCE, first - TOLERANCE + timedelta(seconds=1), later]
    cold = [_decided(with_, t, memo=False) for t in instants]
    assert [_decided(with_, t, memo=True) for t in instants] == cold
    assert [_decided(with_, t, memo=True) for t in instants] == cold  # again, every memo filled
    assert [next_due(with_, t, patient="p") for t in instants] == [next_due(with_, t) for t in instants]
    # past their dates: as the same facts recorded at their dates, the clock ticking (every record kept: retention's
    # horizon ends at the newest recorded time, and forgets the crisis episodes ended before it). Without the
    # history's corrections: which record an amendment replaces depends on the recorded order (corrections.py)
    dated = [e.model_copy(update={"recorded_at": e.occurred_at}) for e in future]
    start = _state([e for e in past if getattr(e, "record_status", "final") == "final"], retained=False)
    ticked = _driven(_driven(start, future, now), [], later)
    normal = _driven(start, dated, later)
    assert _view(decide(ticked, "p", EVERYTHING, now=later, memo=False), False) == _view(
        decide(normal, "p", EVERYTHING, now=later, memo=False), False
    )


@pytest.mark.parametrize(("n", "current"), [(1, True), (ASSESSMENTS_KEPT, True), (ASSESSMENTS_KEPT + 3, False)])
def test_fh_scoring_future_deficits_past_the_kept_ones_read_as_not_current(n: int, current: bool) -> None:
    """Up to retention's ASSESSMENTS_KEPT future-dated assessments, today's deficit (with the epidural extension, a
    cord compression, CLASS-SRE) stays current; past that, it is folded with a future one into the summary, and the
    deficit reads as not current (the compression is not asserted now): never a current value it is not."""
    s, _ = sc.run([sc.finding(0, **sc.T9, epidural_extension=True), sc.assessment(10, neurological_deficit=True)])
    now = sc.T0 + timedelta(minutes=20)
    for day in range(1, n + 1):
        e = sc.assessment(0, neurological_deficit=False)
        s, _ = apply_event(
            s, e.model_copy(update={"occurred_at": sc.T0 + timedelta(days=day), "recorded_at": now}), now=now
        )
    d = Decisions()
    decide_sres(Context(s, "p1", now), d)
    assert [x.current for x in d.sres.values() if x.kind == "cord_compression"] == ([True] if current else [])
