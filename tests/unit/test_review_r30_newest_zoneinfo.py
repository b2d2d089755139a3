"""Review R30-NEWEST (issue 25, HAZ-27-FUTURE-HIDES): 78d72d5 decides whether a fact is dated ahead by comparing
instants (shared/clinical/newest.instant: fold- and offset-aware), while the rules it guards (`r.is_future`, the
planner's `as_of.is_future`, the folds) still compare datetimes as Python does: two times with the SAME tzinfo object
compare by wall clock. With in-process ZoneInfo times (Europe/Paris: one object), on the night of the spring DST
change a limit `now + 15 min` falling in the skipped hour (02:00-03:00, read at +01:00) is an hour later by instant
than by wall clock: a fact dated 03:01 CEST is "future" to the rules (03:01 > 02:05 by wall clock) but not to the new
check (01:01Z <= 01:05Z). "Decide twice" is then skipped, and the fact the rules read as future hides the current one
again: the hazard itself. af35b1a's scans compared datetimes as the rules do and decided twice (identical inputs: the
cord compression stays critical / current there; checked by running this file's scenario on `git archive af35b1a`).

Reachability: none from the runtime (inputs are decoded from JSON with fixed offsets, `now` is UTC): the class of the
in-process ZoneInfo residuals (HAZ-25-SCORING-03/-05, HAZ-25-LAB-04). 15 minutes a year (now in 01:45-02:00 CET on
the last Sunday of March), facts dated at most an hour (wall clock) after the limit.

Fixed by the lead: the instants only skip a scan when the newest is more than `newest.SKEW` (3 h) before the
limit; otherwise the records are compared as the rules compare them (`TimesAfter`). The cases pass (they were strict
xfails)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from contracts.base import Message
from contracts.hospital import ClinicalAssessment, ImagingFinding
from services.radiotherapy_planner import as_of as rt_as_of
from services.radiotherapy_planner import memo as rt_memo
from services.radiotherapy_planner.domain import apply_event as rt_apply
from services.radiotherapy_planner.facts import LocalState, lesions
from services.scoring import as_of
from services.scoring import rules as r
from services.scoring.domain import ScoringState, apply_event, forget_memos
from tests.unit.test_issue18_local import plan_items, vertebra
from tests.unit.test_scoring_scores import T9, live_sres

PARIS = ZoneInfo("Europe/Paris")  # HOSPITAL_TZ's object
NOW = datetime(2026, 3, 29, 1, 50, tzinfo=PARIS)  # 00:50Z (CET); NOW + 15 min = 02:05 wall, in the skipped hour
AHEAD = datetime(2026, 3, 29, 3, 1, tzinfo=PARIS)  # 01:01Z (CEST): after the limit by wall clock, not by instant
DAY = timedelta(days=1)
REASON = (
    "review R30-NEWEST: instants (newest.instant) vs the rules' wall-clock comparison of one ZoneInfo object, in the "
    "spring DST gap: decide twice skipped while the rules read the fact as future (in-process ZoneInfo only)"
)


def _env(at: datetime, recorded: datetime, **fields: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4(), "patient_id": "p1", "occurred_at": at, "recorded_at": recorded, "source": "t"} | (
        fields
    )


def _scoring() -> tuple[ScoringState, list[Message]]:
    forget_memos()
    epidural = {**T9, "epidural_extension": True}
    events: list[Message] = [
        ImagingFinding.model_validate(_env(NOW - 3 * DAY, NOW - 3 * DAY, **epidural)),
        ClinicalAssessment.model_validate(_env(NOW - 2 * DAY, NOW - 2 * DAY, neurological_deficit=True)),
    ]
    s, out = ScoringState(), list[Message]()
    for e in events:
        s, o = apply_event(s, e, now=NOW)
        out += o
    return s, out


def test_review_r30_newest_the_baseline_and_the_rules_reading() -> None:
    """What the xfails rest on (passes): today's compression is current, and the rules read AHEAD as future."""
    _, out = _scoring()
    assert [(x.kind, x.current) for x in live_sres(out)] == [("cord_compression", True)]
    assert r.is_future(AHEAD, NOW, r.DEFAULT_POLICY)  # by wall clock (one tzinfo object)
    assert AHEAD.astimezone(ZoneInfo("UTC")) - NOW.astimezone(ZoneInfo("UTC")) == timedelta(minutes=11)


def test_review_r30_newest_scoring_has_future_agrees_with_the_rules_in_the_spring_gap() -> None:
    s, _ = _scoring()
    again = ClinicalAssessment.model_validate(_env(AHEAD, NOW, neurological_deficit=True))
    s, _ = apply_event(s, again, now=NOW)
    limit = as_of.limit_of(NOW, r.DEFAULT_POLICY)
    assert any(r.is_future(f.occurred_at, NOW, r.DEFAULT_POLICY) for f in s.assessment.every())  # the rules: ahead
    assert as_of.has_future(s, limit)  # 78d72d5: False (af35b1a: True)


def test_review_r30_newest_scoring_a_deficit_dated_ahead_in_the_spring_gap_keeps_the_compression() -> None:
    s, out = _scoring()
    again = ClinicalAssessment.model_validate(_env(AHEAD, NOW, neurological_deficit=True))
    _, more = apply_event(s, again, now=NOW)
    # af35b1a: [("cord_compression", True)] (decided twice); 78d72d5: [] (the current compression SRE withdrawn)
    assert [(x.kind, x.current) for x in live_sres(out + more)] == [("cord_compression", True)]


def _rt(events: list[Message]) -> tuple[LocalState, list[Message]]:
    rt_memo.clear()
    s, out = LocalState(), list[Message]()
    for e in events:
        s, o = rt_apply(s, e, now=NOW)
        out += o
    return s, out


def _at(e: ImagingFinding, occurred: datetime, recorded: datetime) -> ImagingFinding:
    return e.model_copy(update={"occurred_at": occurred, "recorded_at": recorded})  # the ZoneInfo object kept


def test_review_r30_newest_rt_a_compression_seen_again_in_the_spring_gap_keeps_the_emergency() -> None:
    seen = _at(vertebra(cord_compression=True), NOW - DAY, NOW - DAY)
    again = _at(vertebra(cord_compression=True), AHEAD, NOW)
    s, out = _rt([seen, again])
    assert rt_as_of.ahead(s, lesions(s), NOW)  # 78d72d5: [] (af35b1a: the re-confirmation, dated ahead)
    # af35b1a: critical "recommended"; 78d72d5: warning "to_do" ("donnée non actuelle")
    assert [(i.severity, i.status) for i in plan_items(out) if i.rule_id == "RT-MSCC"] == [("critical", "recommended")]
