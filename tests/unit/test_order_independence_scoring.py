"""Issue 22: scoring's decisions depend on the patient's records and the clock, never on which event triggered them
nor on the delivery order. The generated histories of tests/unit/test_issue25_scoring_history.py (calcium, albumin
and derived results, findings, assessments, treatments; out of clinical order, corrected, duplicated) are delivered
again in another order (each record up to order_independence.WINDOW late, some a second time) and decided at one
clock: the same active recommendations (same IDs: same wording, one per slot), the same scores decided and served,
the same SREs in force.

Order that legitimately matters (stated, kept by the test): lab-normalisation's versions of one result (a result, its
correction, its withdrawal) come from one producer on the patient's partition and keep their relative order; a
correction delivered before its original is the producer's error, not a reordering the runtime makes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message
from contracts.clinical import NormalisedLab, Score, SkeletalEvent
from services.scoring.domain import ScoringState, apply_event, current_scores
from tests.unit.order_independence import active, distinct_times, one_per_key, shuffled
from tests.unit.test_issue25_scoring_history import history


def outcome(events: list[Message], now: datetime) -> dict[str, Any]:
    s, out = ScoringState(), list[Message]()
    for e in events:
        s, decided = apply_event(s, e, now=now)
        out += decided
    one_per_key(out)  # never two active recommendations of one slot (issue 22)
    sres: dict[str, tuple[Any, ...]] = {}
    for o in out:
        if isinstance(o, SkeletalEvent) and o.status == "withdrawn":
            for x in o.supersedes:
                sres.pop(str(x), None)
        elif isinstance(o, SkeletalEvent):
            sres[str(o.event_id)] = (o.kind, o.current, o.evidence_at, o.current_until)
    # HAZ-22-ORDER-03: what a consumer holds from the published versions (in order; a withdrawn one ends its score)
    # is what scoring decides and serves, ID included (the ID names the content and the version it replaces)
    held: dict[tuple[str, str], dict[str, Any]] = {}
    for o in out:
        if isinstance(o, Score) and o.status == "withdrawn":
            held.pop((o.score, o.subject), None)
        elif isinstance(o, Score):
            held[(o.score, o.subject)] = _decided(o)
    served = current_scores(s, events[0].patient_id, now=now)
    assert held == {(x.score, x.subject): _decided(x) for x in served}
    return {
        # the same IDs (same decision), severity, title and missing data; not the text: an IMG-ISOLATED text lists
        # the modalities the lesion was seen in, which retention's fold keeps by arrival (hazard log
        # HAZ-22-ORDER-03), under the same ID
        "active": active(out, text=False),
        "published": s.recommendations,
        # the scores scoring holds as decided (slot -> content ID); served and held per identity, not by version ID:
        # a version's ID names the one it replaces, which depends on the order (HAZ-22-ORDER-03)
        "scores": s.scores,
        "served": [x.model_dump(mode="json", exclude={"event_id"}) for x in served],
        "sres": sres,
        "next_due": s.next_due,
    }


def _decided(x: Score) -> dict[str, Any]:
    """What a score version decides: the fields its content ID is derived from (common.score), and its ID."""
    return x.model_dump(mode="json", include={"event_id", "total", "band", "complete", "missing"}) | {
        "components": [(c.name, c.value, c.points) for c in x.components]
    }


def _lab(e: Message) -> bool:
    return isinstance(e, NormalisedLab)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.integers(0, 2**32 - 1), st.floats(0.3, 0.8), st.floats(0, 12), st.integers(0, 2**32), st.integers(0, 8))
def test_any_order_and_any_redelivery_give_the_same_decisions(
    history_seed: int, years: float, crises_per_year: float, seed: int, duplicates: int
) -> None:
    events = distinct_times(
        history(history_seed, years, lab_days=4, imaging_days=40, assessment_days=15, crises_per_year=crises_per_year)
    )
    now = max(e.recorded_at for e in events) + timedelta(minutes=5)
    assert outcome(shuffled(events, seed, duplicates, ordered=_lab), now) == outcome(events, now)
