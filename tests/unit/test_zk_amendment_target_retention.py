"""Helper ZK (HAZ-25-SYS-04): retention keeps the record an amendment naming none would replace.

An amendment without `corrects` replaces its group's newest record by clinical time that is not entered-in-error
(shared/clinical/corrections.py `_target`). Retention kept the newest RECORDS_KEPT records counting the
entered-in-error ones, so two withdrawals recorded last pushed that record out: the amendment then replaced an
already withdrawn record and the superseded life expectancy still counted (SYS-AR-START, RULES.md L1068-1084,
L1263-1265: its 3-month validity window ended on the wrong day, a `next_due` weeks late). Found by
test_issue25_systemic_retention.py's property (a stored example, replayed here in miniature)."""

from __future__ import annotations

from datetime import timedelta

from contracts.base import Message
from contracts.hospital import ClinicalAssessment
from services.systemic_planner import rules as r
from services.systemic_planner.domain import SystemicState, apply_event, current_plan
from services.systemic_planner.retention import retain
from tests.unit.histories import T0, World, _dump, _prologue


def _assessment(w: World, day: int, **fields: object) -> ClinicalAssessment:
    return ClinicalAssessment.model_validate({**w.env(T0 + timedelta(days=day)), **fields})


def test_an_amendment_naming_no_record_replaces_the_newest_one_not_the_withdrawals_kept() -> None:
    w = World()
    events: list[Message] = _prologue(w)
    events.append(_assessment(w, 1, life_expectancy_months=5.0))
    c = _assessment(w, 9, ecog=1)
    d = _assessment(w, 14, ecog=1)
    b = _assessment(w, 19, life_expectancy_months=2.0)  # the newest record an amendment can replace
    events += [c, d, b]
    events.append(_assessment(w, 31, record_status="entered-in-error", corrects=c.event_id))
    events.append(_assessment(w, 40, record_status="entered-in-error", corrects=d.event_id))
    # recorded after the two withdrawals, dated later: it replaces b (its life expectancy no longer counts)
    amend = ClinicalAssessment.model_validate(
        {**w.env(T0 + timedelta(days=54)), "recorded_at": T0 + timedelta(days=40, hours=2), "record_status": "amended"}
    )
    events.append(amend)
    kept, full = SystemicState(), SystemicState()
    for e in events:
        now = e.recorded_at + timedelta(minutes=5)
        kept, out_kept = apply_event(kept, e, r.AsOf(now=now))
        full, out_full = apply_event(full, e, r.AsOf(now=now), keep_all=True)
        assert _dump(out_kept) == _dump(out_full)
        assert kept.next_due == full.next_due
        assert kept.life_expectancies == full.life_expectancies
        assert retain(kept) == kept
    assert b.event_id in {x.event_id for x in kept.assessments.values()}  # held: the amendment's target
    assert [f.value for f in full.life_expectancies] == [5.0]  # b's 2.0 replaced by the amendment
    for later in (timedelta(days=1), timedelta(days=60), timedelta(days=120)):
        at = r.AsOf(now=amend.recorded_at + later)
        plan_kept = current_plan(kept, "p1", at=at)
        plan_full = current_plan(full, "p1", at=r.AsOf(now=amend.recorded_at + later))
        assert (plan_kept and plan_kept.model_dump(mode="json")) == (plan_full and plan_full.model_dump(mode="json"))
