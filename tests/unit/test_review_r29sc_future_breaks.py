"""Review R29-SC: scoring's "decide twice" (services/scoring/as_of.py, HAZ-27-FUTURE-HIDES), what breaks.

1. The clock (`next_due`) is A's moments plus the instants the future-dated records become current; B's own moments
   are missing. B reads a current fact that A's fold no longer holds (the future-dated one replaced it), so when that
   fact leaves its window (CLASS-SRE: a cord compression current while its evidence is at most 6 weeks old), B's
   unit changes and no tick comes: the published SRE stays what decide_now no longer gives until the future record's
   own instant (days later), or until any other event of the patient decides it again (the decision then depends on
   whether an event arrives: a rebuild or a busy patient withdraws it, a quiet one keeps it).
2. FH-SC2's case left by DT-SC: a current cord compression drawn only from a report dated ahead (over a current "no")
   is A's unit, published unmarked, while the design says an emergency is decided from current data only and a
   future-dated fact is never a silent choice.

Guideline: CLASS-SRE L259-296 (compression médullaire, an SRE), RT-MSCC L1397-1402 (compression médullaire:
irradiation exclusive en urgence), RULES.md CLASS-SRE / RT-MSCC.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contracts.base import Message
from contracts.clinical import SkeletalEvent
from services.scoring import rules as r
from services.scoring.domain import EVERYTHING, ScoringState, apply_event, decide_now
from tests.unit import test_scoring_scores as sc

T0 = sc.T0
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
WINDOW = r.DEFAULT_POLICY.lesion_event_current  # 6 weeks
NOW = T0 + WINDOW - DAY  # the deficit of T0 leaves its window in one day
PATIENT = "p1"  # sc.env's


def _at(e: Any, occurred: datetime, recorded: datetime) -> Any:
    return e.model_copy(update={"occurred_at": occurred, "recorded_at": recorded})


def _run(events: list[tuple[Message, datetime]]) -> tuple[ScoringState, list[Message]]:
    s, out = ScoringState(), list[Message]()
    for e, now in events:
        s, o = apply_event(s, e, now=now)
        out += o
    return s, out


def _inferred(deficit_ahead: bool) -> tuple[ScoringState, list[Message]]:
    """An epidural extension at T9 imaged 5 weeks after a neurological deficit (T0): an inferred cord compression,
    current while both are at most 6 weeks old (the deficit's window ends at T0 + 6 weeks). At NOW (one day before),
    the deficit assessed again, dated 3 days ahead (a producer's clock)."""
    deficit = _at(sc.assessment(0, neurological_deficit=True), T0, T0)
    epidural = _at(sc.finding(0, **sc.T9, epidural_extension=True), T0 + 35 * DAY, T0 + 35 * DAY)
    again = _at(sc.assessment(0, neurological_deficit=deficit_ahead), NOW + 3 * DAY, NOW)
    return _run([(deficit, T0), (epidural, T0 + 35 * DAY), (again, NOW)])


def _published(out: list[Message]) -> set[str]:
    return {str(x.event_id) for x in sc.live_sres(out)}


def _decided(s: ScoringState, at: datetime) -> set[str]:
    return set(decide_now(s, PATIENT, EVERYTHING, now=at).sres)


LATE = (
    "review R29-SC: next_due holds A's moments and the future records' instants, not B's own (the current fact A's "
    "fold replaced leaves its window): the tick comes days late (fix: also the first moment of "
    "clock.next_due(as_of.current_view(s, limit), now) when has_future)"
)


def test_review_r29sc_a_compression_agreed_from_b_leaves_its_window_on_time() -> None:
    """Re-confirmation ahead: B and C agree (current), B's SRE published. At T0 + 6 weeks B's deficit is too old; B
    (historical) and C (current) then disagree and A's unit (no inferred compression: A's deficit is dated ahead)
    is decided; the tick is only at the future deficit's instant, 2 days later."""
    s, out = _inferred(deficit_ahead=True)
    assert [(x.kind, x.current) for x in sc.live_sres(out)] == [("cord_compression", True)]
    after = T0 + WINDOW + 2 * SECOND
    assert _decided(s, after) != _published(out)  # what a decision at `after` gives (a rebuild, any event)
    assert s.next_due is not None and s.next_due <= after  # is NOW + 3 days - 15 min + 1 s


def test_review_r29sc_an_escalation_marked_to_verify_ends_with_b_s_window() -> None:
    """Contradiction ahead (deficit "no" dated in 3 days): B's emergency, marked "à vérifier". When B's deficit
    leaves its window, B has no emergency left and A's unit (none) is decided; the marked current SRE stays
    published two more days (no tick)."""
    s, out = _inferred(deficit_ahead=False)
    [sre] = sc.live_sres(out)
    assert sre.current is True and any(i.name == "future_dated_record_to_verify" for i in sre.evidence)
    after = T0 + WINDOW + 2 * SECOND
    assert _decided(s, after) == set()  # no unit: the escalation ended with B's window
    assert s.next_due is not None and s.next_due <= after  # is NOW + 3 days - 15 min + 1 s


def test_review_r29sc_before_b_s_window_ends_nothing_changes() -> None:
    """Held: up to B's window end, the decision is the one published (the tick is never early-missed there)."""
    for ahead in (True, False):
        s, out = _inferred(deficit_ahead=ahead)
        for at in (NOW, NOW + DAY / 2, T0 + WINDOW - SECOND):
            assert _decided(s, at) == _published(out), (ahead, at)
        assert s.next_due is not None and s.next_due > NOW


def test_review_r29sc_a_compression_only_from_a_report_dated_ahead_is_marked_to_verify() -> None:
    """FH-SC2's case (CLASS-SRE L259-296, RT-MSCC L1397-1402): today's imaging says no compression; a report dated
    tomorrow says compression. A (today's) publishes a current SRE; B (current data) none; C current. Keeping the
    emergency is the cautious side, but it is decided from a fact not yet current: it must name that report as to
    verify (its ID and date), as the escalations do."""
    now = T0 + timedelta(hours=2)
    no = _at(sc.finding(0, **sc.T9, cord_compression=False), T0, T0)
    yes = _at(sc.finding(0, **sc.T9, cord_compression=True), T0 + DAY, now)
    _, out = _run([(no, now), (yes, now)])
    [sre] = [x for x in sc.live_sres(out) if isinstance(x, SkeletalEvent) and x.kind == "cord_compression"]
    assert sre.current is True
    shown = [i for i in sre.evidence if i.name == "future_dated_record_to_verify"]
    assert [(i.source_event_id, i.occurred_at) for i in shown] == [(yes.event_id, yes.occurred_at)]


def test_review_r29sc_a_mirels_fixation_agreed_from_b_follows_b_s_pain_window() -> None:
    """The same on a recommendation (MIRELS-HIGH L1314-1330, critical): femur shaft (2), half the cortex (2), lytic
    (3), functional pain (3): Mirels 10, 12 months of life expectancy. The lesion's pain (T0) is assessed again,
    dated 3 days ahead, at T0 + 29 days: B and C agree (critical), B's published. At T0 + 30 days B's pain is past
    its 30-day validity (Mirels 8-10: MIRELS-8, warning) and A's (the pain dated ahead: missing) is decided; no tick
    comes before the future pain's instant."""
    site = sc.TROCHANTER | {"skeletal_site": "femur_shaft", "cortical_involvement_fraction": 0.5}
    pain = sc.lesion_pain("fem-R", intensity="functional")
    now = T0 + 29 * DAY
    s, out = _run(
        [
            (_at(sc.assessment(0, lesion_pain=pain, life_expectancy_months=12), T0, T0), T0),
            (_at(sc.finding(0, **site), T0 + DAY, T0 + DAY), T0 + DAY),
            (_at(sc.assessment(0, lesion_pain=pain), now + 3 * DAY, now), now),
        ]
    )
    assert [(x.rule_id, x.severity) for x in sc.active(out)] == [("MIRELS-HIGH", "critical")]
    after = T0 + r.DEFAULT_POLICY.lesion_pain_valid + 2 * SECOND
    [rec] = decide_now(s, PATIENT, EVERYTHING, now=after).recommendations.values()
    assert (rec.build().rule_id, rec.build().severity) == ("MIRELS-8", "warning")
    assert s.next_due is not None and s.next_due <= after  # is now + 3 days - 15 min + 1 s
