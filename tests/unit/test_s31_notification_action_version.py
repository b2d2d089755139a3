"""HAZ-22-ORDER-01 (review R31-NOTIF3): a person's action names the version of the alert it was made on
(`AlertAction.alert_version`, filled by the web API from the alert it found). An action on a version of the issue in
force applies whatever the times (escalated since, or a re-issue timed after the action by a replica whose clock is
ahead); one on an earlier issue, ended and issued again since, does not, in whichever order it is processed. An action
without a version (recorded before the field) keeps the time rule."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contracts.base import derived_id
from contracts.lifecycle import AlertAction
from services.notification.actions import apply_action
from tests.unit.test_issue25_notification_history import POLICY, START, tick_at
from tests.unit.test_order_independence_notification import rec, withdrawal
from tests.unit.test_review_r31_notif2 import _act, _apply, _at, _drain, _holding, _run

SEC = timedelta(seconds=1)
CRITICAL = 0


def _on(action: AlertAction, version: object) -> AlertAction:
    return action.model_copy(update={"alert_version": version})


def test_an_acknowledgement_of_the_version_shown_applies_after_an_escalation_of_the_same_issue() -> None:
    """Shown at 0, acknowledged on that version just before the escalation is due; the escalation's tick processed
    first (a new version of the same issue): the acknowledgement is of the alert in force and applies."""
    first = _at(rec(CRITICAL, 0, 1, START), START)
    a = str(first.message.event_id)
    s, _ = _run([first])
    shown = s.alerts[a].event_id
    due = START + POLICY.escalation_delay
    s, _ = _apply(s, tick_at(due))
    assert s.alerts[a].escalation_level == 1 and s.alerts[a].event_id != shown
    s, out = _apply(s, _on(_act("acknowledge", a, due - SEC, 1), shown))
    assert [(x.status, x.acknowledged_by) for x in out] == [("acknowledged", "dr-r2")]
    s, _ = _drain(s, START + timedelta(hours=1))
    assert _holding(s)[a] == ("acknowledged", 1, "dr-r2")  # no further escalation


def _withdrawn_then_reissued(again: datetime) -> list[Any]:
    """A critical alert issued at START, withdrawn at 60 s, issued again timed `again` (a replica's clock)."""
    withdrawn = START + 60 * SEC
    return [
        _at(rec(CRITICAL, 0, 1, START), START),
        _at(withdrawal(CRITICAL, 0, 2, withdrawn), withdrawn),
        _at(rec(CRITICAL, 0, 3, again), again),
    ]


def test_an_acknowledgement_of_a_reissue_timed_after_it_by_a_replica_ahead_applies() -> None:
    """Withdrawn at 60 s, issued again by a replica whose clock is 10 s ahead (timed 71 s, received at 61 s); a
    clinician acknowledges the re-issue at 65 s (notification's clock), before its time: it names the re-issue's
    version and applies. Without a version the time rule drops it (the genuine acknowledgement is lost; the
    behaviour of actions recorded before the field)."""
    records = _withdrawn_then_reissued(START + 71 * SEC)
    a = str(records[0].message.event_id)
    s, _ = _run(records)
    assert _holding(s)[a] == ("active", 0, None)
    ack = _act("acknowledge", a, START + 65 * SEC, 1)
    acked, out = apply_action(s, _on(ack, s.alerts[a].event_id))
    assert [(x.status, x.acknowledged_by) for x in out] == [("acknowledged", "dr-r2")]
    assert _holding(acked)[a] == ("acknowledged", 0, "dr-r2")
    unnamed, out = apply_action(s, ack)
    assert out == [] and unnamed.alerts[a].status == "active" and str(ack.event_id) in unnamed.applied


def test_an_action_on_the_first_issue_never_applies_to_the_reissue_in_any_order() -> None:
    """An override and an acknowledgement made on the first issue (its shown version), each processed after the
    withdrawal and a lagging replica's re-issue (timed 58 s, before them): the re-issue stays active and escalates;
    the actions are applied
    (their IDs remembered) without effect. Processed before the withdrawal, the first issue is acted on and resolved
    by the withdrawal, the re-issue active all the same."""
    records = _withdrawn_then_reissued(START + 58 * SEC)
    a = str(records[0].message.event_id)
    shown, _ = _run(records[:1])
    version = shown.alerts[a].event_id
    ack = _on(_act("acknowledge", a, START + 59 * SEC, 1), version)
    override = _on(ack, version).model_copy(
        update={"event_id": derived_id("s31-ack-override"), "action": "override", "reason": "other"}
    )
    end = START + timedelta(hours=1)
    for action, done in ((ack, "acknowledged"), (override, "overridden")):
        late, _ = _run([*records, action])
        late, _ = _drain(late, end)
        prompt, _ = _run([records[0], action, *records[1:]])
        prompt, _ = _drain(prompt, end)
        assert _holding(late) == _holding(prompt) == {a: ("active", POLICY.escalation_max_level, None)}
        assert str(action.event_id) in late.applied
        assert [t.event for t in prompt.alerts[a].history if t.by == "dr-r2"] == [done]


def test_an_action_recorded_without_a_version_is_read_back_and_keeps_the_time_rule() -> None:
    """A stored action message of before the field (no `alert_version`) decodes, and applies by its time."""
    first = _at(rec(CRITICAL, 0, 1, START), START)
    a = str(first.message.event_id)
    s, _ = _run([first])
    old = _act("acknowledge", a, START + SEC, 1).model_dump(mode="json")
    del old["alert_version"]
    action = AlertAction.model_validate(old)
    assert action.alert_version is None
    s, out = apply_action(s, action)
    assert [x.status for x in out] == ["acknowledged"]
