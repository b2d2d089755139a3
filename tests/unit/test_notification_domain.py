"""The alert lifecycle, the settle window and escalation: pure transitions, every time from an event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.clinical import Alert, Recommendation
from contracts.clock import ClockTick
from contracts.lifecycle import AlertAction
from contracts.rules import RULESET_VERSION, cite
from services.notification.actions import apply_action, find
from services.notification.domain import AlertPolicy, Arrived, Output, PatientAlerts, listing
from services.notification.lifecycle import apply_tick, next_due
from services.notification.recommendations import apply_recommendation

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
POLICY = AlertPolicy(settle=timedelta(seconds=30), escalation_delay=timedelta(minutes=15), escalation_max_level=2)


def rec(
    severity: str = "critical", status: str = "active", supersedes: list[uuid.UUID] | None = None, rule: str = ""
) -> Recommendation:
    return Recommendation(
        event_id=uuid.uuid4(),
        patient_id="p1",
        occurred_at=T0,
        recorded_at=T0,
        source="scoring",
        rule_id=rule or ("LAB-CA-CRISIS" if severity == "critical" else "SYS-AR-START"),
        ruleset_version=RULESET_VERSION,
        severity=severity,
        title="t",
        text_fr="x",
        citation=cite("LAB-CA-CRISIS"),
        inputs=[],
        produced_by="scoring",
        status=status,
        supersedes=supersedes or [],
    )


def arrive(state: PatientAlerts, r: Recommendation, after_s: float = 0) -> tuple[PatientAlerts, list[Output]]:
    return apply_recommendation(state, Arrived(message=r, at=T0 + timedelta(seconds=after_s)), POLICY)


def person(alert_id: uuid.UUID, action: str, by: str = "dr-a", after_s: float = 60, **kw: Any) -> AlertAction:
    at = T0 + timedelta(seconds=after_s)
    return AlertAction(
        event_id=uuid.uuid4(),
        patient_id="p1",
        occurred_at=at,
        recorded_at=at,
        source="notification",
        action=action,
        alert_id=alert_id,
        actor=by,
        actor_role="clinician",
        **kw,
    )


def tick(s: PatientAlerts, after_s: float) -> tuple[PatientAlerts, list[Output]]:
    """The clock tick of a deadline `after_s` after T0 (as shared/runtime/timers.py sends it)."""
    at = T0 + timedelta(seconds=after_s)
    t = ClockTick(
        event_id=uuid.uuid4(),
        patient_id="p1",
        occurred_at=at,
        recorded_at=at,
        source="notification",
        service="notification",
        due_at=at,
    )
    return apply_tick(s, t, POLICY)


def alerts(out: list[Output]) -> list[Alert]:
    return [o for o in out if isinstance(o, Alert)]


def test_critical_is_shown_at_once_and_its_escalation_is_due() -> None:
    r = rec("critical")
    s, out = arrive(PatientAlerts(), r)
    [alert] = alerts(out)
    assert alert.status == "active" and [t.event for t in alert.history] == ["raised", "shown"]
    assert [a.recommendation_id for a in listing(s)] == [r.event_id]
    assert next_due(s, POLICY) == T0 + timedelta(minutes=15)


@pytest.mark.parametrize("severity", ["warning", "info"])
def test_a_decision_withdrawn_within_the_settle_window_is_never_listed(severity: str) -> None:
    r = rec(severity)
    s, out = arrive(PatientAlerts(), r)
    assert alerts(out) == [] and listing(s) == []  # held back
    assert next_due(s, POLICY) == T0 + timedelta(seconds=30)  # the end of its settle window
    s, out = arrive(s, rec("info", "withdrawn", [r.event_id]), after_s=12)
    assert out == [] and listing(s) == [] and s.alerts == {}
    s, out = tick(s, 30)  # the settle timer finds nothing to show
    assert out == [] and listing(s) == []


def test_a_warning_replaced_within_the_window_shows_only_its_replacement() -> None:
    first = rec("warning")
    s, _ = arrive(PatientAlerts(), first)
    second = rec("warning")
    s, _ = arrive(s, rec("info", "withdrawn", [first.event_id]), after_s=5)
    s, _ = arrive(s, second, after_s=5)
    s, out = tick(s, 30)
    assert alerts(out) == [] and listing(s) == []  # the replacement's own window is not over yet
    s, out = tick(s, 35)
    assert [a.recommendation_id for a in alerts(out)] == [second.event_id]
    assert [a.recommendation_id for a in listing(s)] == [second.event_id]
    assert [t.event for t in listing(s)[0].history] == ["raised", "shown"]


def test_a_warning_that_holds_is_shown_when_its_window_ends_and_withdrawn_after() -> None:
    r = rec("warning")
    s, _ = arrive(PatientAlerts(), r)
    assert find(s, str(r.event_id)) is None  # not actionable while held back
    s, out = tick(s, 30)
    [shown] = alerts(out)
    assert shown.history[-1].at == T0 + timedelta(seconds=30)
    s, out = arrive(s, rec("info", "withdrawn", [r.event_id]), after_s=40)
    assert [a.status for a in alerts(out)] == ["withdrawn"]
    assert [a.status for a in listing(s)] == ["withdrawn"]


def test_acknowledge_records_who_and_when_and_the_first_stays() -> None:
    crit = rec("critical")
    s, _ = arrive(PatientAlerts(), rec("info"))
    s, _ = arrive(s, crit)
    s, out = apply_action(s, person(crit.event_id, "acknowledge", "dr-a"))
    [acked] = alerts(out)
    assert acked.status == "acknowledged" and acked.acknowledged_by == "dr-a"
    assert acked.acknowledged_at == T0 + timedelta(seconds=60)
    assert (acked.history[-1].by, acked.history[-1].role) == ("dr-a", "clinician")
    again = person(crit.event_id, "acknowledge", "dr-b", after_s=90)
    s, out = apply_action(s, again)
    assert out == [] and listing(s, "acknowledged")[0].acknowledged_by == "dr-a"
    assert str(again.event_id) in s.applied  # applied (as a no-op): the waiting request can answer


def test_override_needs_a_coded_reason_and_keeps_the_comment() -> None:
    with pytest.raises(ValueError, match="coded reason"):
        person(uuid.uuid4(), "override")
    crit = rec("critical")
    s, _ = arrive(PatientAlerts(), crit)
    s, out = apply_action(
        s, person(crit.event_id, "override", reason="already-addressed", comment="Traité aux urgences")
    )
    [alert] = alerts(out)
    assert (alert.status, alert.override_reason, alert.override_comment) == (
        "overridden",
        "already-addressed",
        "Traité aux urgences",
    )
    assert alert.overridden_by == "dr-a" and alert.history[-1].reason == "already-addressed"


def test_withdrawal_resolves_a_handled_alert_and_withdraws_an_active_one() -> None:
    handled, untouched = rec("critical"), rec("critical", rule="RT-MSCC")
    s, _ = arrive(PatientAlerts(), handled)
    s, _ = arrive(s, untouched)
    s, _ = apply_action(s, person(handled.event_id, "acknowledge"))
    s, out = arrive(s, rec("info", "withdrawn", [handled.event_id, untouched.event_id]), after_s=120)
    assert {a.rule_id: a.status for a in alerts(out)} == {"LAB-CA-CRISIS": "resolved", "RT-MSCC": "withdrawn"}
    resolved = find(s, str(handled.event_id))
    assert resolved is not None
    assert [t.event for t in resolved.history] == ["raised", "shown", "acknowledged", "resolved"]
    assert len({t.at for t in resolved.history}) == 3  # raised and shown together, then each step's own time


def test_a_person_resolves_an_acknowledged_alert_but_not_an_active_one() -> None:
    crit = rec("critical")
    s, _ = arrive(PatientAlerts(), crit)
    s, out = apply_action(s, person(crit.event_id, "resolve"))
    assert out == []
    s, _ = apply_action(s, person(crit.event_id, "acknowledge"))
    s, out = apply_action(s, person(crit.event_id, "resolve", "dr-c", after_s=300))
    assert [(a.status, a.history[-1].by) for a in alerts(out)] == [("resolved", "dr-c")]


def test_unacknowledged_critical_escalates_each_delay_up_to_the_maximum() -> None:
    crit = rec("critical")
    s, _ = arrive(PatientAlerts(), crit)
    s, out = tick(s, 14 * 60)
    assert out == []
    s, out = tick(s, 15 * 60)
    [escalated] = alerts(out)
    assert (escalated.escalation_level, escalated.escalated_to, escalated.status) == (1, "escalation", "active")
    assert escalated.history[-1].event == "escalated" and escalated.history[-1].escalation_level == 1
    assert next_due(s, POLICY) == T0 + timedelta(minutes=30)
    s, out = tick(s, 31 * 60)
    assert [a.escalation_level for a in alerts(out)] == [2]
    assert next_due(s, POLICY) is None  # the maximum level: nothing more is due
    s, out = tick(s, 60 * 60)
    assert out == []


def test_an_acknowledged_critical_alert_does_not_escalate() -> None:
    crit = rec("critical")
    s, _ = arrive(PatientAlerts(), crit)
    s, _ = apply_action(s, person(crit.event_id, "acknowledge", after_s=600))
    s, out = tick(s, 15 * 60)
    assert out == [] and listing(s)[0].escalation_level == 0


def test_a_recommendation_issued_again_after_its_withdrawal_alerts_again() -> None:
    """A crisis value corrected to normal, then corrected back: the same recommendation, another cause. The
    alert becomes active again (a new alert event, to acknowledge anew), and can be withdrawn again."""
    first = rec().model_copy(update={"caused_by": str(uuid.uuid4())})
    s, _ = arrive(PatientAlerts(), first)
    s, [acked] = apply_action(s, person(first.event_id, "acknowledge"))
    s, [resolved] = arrive(s, rec("info", "withdrawn", [first.event_id]), after_s=100)
    again = first.model_copy(update={"caused_by": str(uuid.uuid4())})
    assert again.delivery_key() != first.delivery_key()  # the runtime does not drop it as a duplicate
    s, out = arrive(s, again, after_s=200)
    [alert] = alerts(out)
    assert alert.status == "active" and alert.acknowledged_by is None and alert.escalation_level == 0
    assert alert.recommendation_id == first.event_id and alert.raised_at == T0 + timedelta(seconds=200)
    assert isinstance(acked, Alert) and len({alert.event_id, acked.event_id, resolved.event_id}) == 3
    assert [t.event for t in alert.history][-2:] == ["reactivated", "shown"]
    assert [a.status for a in listing(s)] == ["active"]
    s, [withdrawn_again] = arrive(s, rec("info", "withdrawn", [first.event_id]), after_s=300)
    assert isinstance(withdrawn_again, Alert) and withdrawn_again.status == "withdrawn"


def test_repeat_is_idempotent_and_listing_filters_by_status_and_severity() -> None:
    r = rec("critical")
    s, _ = arrive(PatientAlerts(), r)
    s1, out = arrive(s, r, after_s=3)  # the same record (its delivery key) again: a second delivery (R31-NOTIF2)
    assert out == [] and s1 == s
    repeat = r.model_copy(update={"caused_by": str(uuid.uuid4())})  # the same decision published again
    s2, out = arrive(s, repeat, after_s=3)
    # the repeat changes no alert; it is heard (HAZ-22-ORDER-01: its second delivery after the alert ends is not new)
    assert out == [] and s2.model_copy(update={"issues": s.issues, "heard": s.heard}) == s
    assert s2.issues[str(r.event_id)] == T0 + timedelta(seconds=3) and len(s2.heard[str(r.event_id)]) == 2
    s3, out = arrive(s2, repeat, after_s=3)  # a second delivery of that repeat: nothing at all
    assert out == [] and s3 == s2
    w = rec("warning")
    s, _ = arrive(s, w)
    s, _ = tick(s, 30)
    assert [a.severity for a in listing(s)] == ["critical", "warning"]
    assert [a.severity for a in listing(s, severity="warning")] == ["warning"]
    assert listing(s, status="acknowledged") == []
