"""HAZ-22-ORDER-01 (session 31): a second delivery of a recommendation that was applied without being taken (a stale
wording, a repeat while its alert held) came back as new once a withdrawal, a new wording or a clinician's action had
changed what holds: the alert's `raised_at` was its first issue's, and nothing recorded the later issue. Every issue
and withdrawal applied is now heard (`PatientAlerts.issues`, `.withdrawals`); a genuinely new publication (a later
broker timestamp) of the same ID after its withdrawal is still an alert to act on. The planners publish the same ID
again after a withdrawal when an item comes back to the same content (`shared/clinical/recommend.py`: the ID is the
rule, patient, item key and content), so the case is real."""

from __future__ import annotations

from datetime import datetime, timedelta

from contracts.clinical import Alert
from contracts.lifecycle import AlertAction
from services.notification.domain import ENDED, ENDED_KEPT, Arrived, PatientAlerts, apply_event
from tests.unit.test_issue25_notification_history import POLICY, START, clinician_action, tick_at
from tests.unit.test_order_independence_notification import rec, withdrawal

SEC = timedelta(seconds=1)


def _at(s: PatientAlerts, message: object, at: datetime) -> tuple[PatientAlerts, list[Alert]]:
    s, out = apply_event(s, Arrived.model_validate({"message": message, "at": at}), POLICY)
    return s, [a for a in out if isinstance(a, Alert)]


def _holding(s: PatientAlerts) -> dict[str, str]:
    return {k: a.status for k, a in s.alerts.items() if a.status not in ENDED and k not in s.pending}


def _act(action: str, alert: object, at: datetime, n: int) -> AlertAction:
    return clinician_action(action, alert, at, n, "s31-action", "dr-b")


def test_a_stale_wording_delivered_again_after_its_replacement_is_withdrawn_stays_ended() -> None:
    """The s30 counterexample's mechanism (MIRELS-8, a warning): wording 1 shown then withdrawn, wording 0 settling,
    wording 1 issued again without withdrawing wording 0 (stale: not taken), wording 0 withdrawn within its settle
    window. Nothing holds; the stale issue's second delivery must not raise wording 1."""
    t = START
    w1, w0 = rec(3, 1, 1, t), rec(3, 0, 2, t + 40 * SEC)
    s = PatientAlerts()
    s, _ = _at(s, w1, t)
    s, _ = _at(s, withdrawal(3, 1, 2, t + 40 * SEC), t + 40 * SEC)  # shown at 30 s (settle), then withdrawn
    s, _ = _at(s, w0, t + 41 * SEC)
    stale = rec(3, 1, 3, t + 42 * SEC)
    s, out = _at(s, stale, t + 42 * SEC)
    assert out == []  # wording 0 was issued after wording 1 was withdrawn: wording 1 again is stale
    s, _ = _at(s, withdrawal(3, 0, 4, t + 43 * SEC), t + 43 * SEC)
    assert _holding(s) == {} and s.pending == {}
    again, out = _at(s, stale, t + 42 * SEC)  # the stale issue delivered a second time
    assert out == [] and _holding(again) == {} and again.pending == {}
    again, _ = apply_event(again, tick_at(t + timedelta(days=1)), POLICY)
    assert _holding(again) == {}


def test_a_repeat_delivered_again_after_a_clinician_resolved_the_alert_does_not_reactivate_it() -> None:
    """A critical alert issued twice (a rebuild publishing it again while it holds), acknowledged then resolved by a
    clinician; the repeat delivered a second time is not a new issue."""
    t = START
    first, repeat = rec(0, 1, 1, t), rec(0, 1, 2, t + 60 * SEC)
    s = PatientAlerts()
    s, _ = _at(s, first, t)
    s, out = _at(s, repeat, t + 60 * SEC)
    assert out == []
    s, _ = apply_event(s, _act("acknowledge", first.event_id, t + 120 * SEC, 1), POLICY)
    s, _ = apply_event(s, _act("resolve", first.event_id, t + 180 * SEC, 2), POLICY)
    assert s.alerts[str(first.event_id)].status == "resolved"
    again, out = _at(s, repeat, t + 60 * SEC)
    assert out == [] and again.alerts == s.alerts


def test_a_repeat_delivered_again_after_the_withdrawal_stays_withdrawn() -> None:
    t = START
    first, repeat = rec(0, 1, 1, t), rec(0, 1, 2, t + 60 * SEC)
    s = PatientAlerts()
    s, _ = _at(s, first, t)
    s, _ = _at(s, repeat, t + 60 * SEC)
    s, out = _at(s, withdrawal(0, 1, 3, t + 90 * SEC), t + 90 * SEC)
    assert [a.status for a in out] == ["withdrawn"]
    again, out = _at(s, repeat, t + 60 * SEC)
    assert out == [] and again.alerts == s.alerts


def test_a_new_publication_of_the_same_id_after_its_withdrawal_is_shown_and_its_duplicates_change_nothing() -> None:
    """The planners publish an item's ID again when it comes back to the same content: a later record, a new alert to
    act on (reactivated). Its second delivery, and the second delivery of the withdrawal before it, change nothing."""
    t = START
    first = rec(0, 1, 1, t)
    gone = withdrawal(0, 1, 2, t + 60 * SEC)
    back = rec(0, 1, 3, t + 120 * SEC)
    s = PatientAlerts()
    s, _ = _at(s, first, t)
    s, _ = _at(s, gone, t + 60 * SEC)
    s, out = _at(s, back, t + 120 * SEC)
    assert [(str(a.recommendation_id), a.status) for a in out] == [(str(first.event_id), "active")]
    assert [h.event for h in s.alerts[str(first.event_id)].history][-2:] == ["reactivated", "shown"]
    for message, at in ((back, t + 120 * SEC), (gone, t + 60 * SEC), (first, t)):
        s2, out = _at(s, message, at)
        assert out == [] and s2.alerts == s.alerts
    # a third publication after a second withdrawal is shown again
    s, _ = _at(s, withdrawal(0, 1, 4, t + 180 * SEC), t + 180 * SEC)
    s, out = _at(s, rec(0, 1, 5, t + 240 * SEC), t + 240 * SEC)
    assert [a.status for a in out] == ["active"] and _holding(s) == {str(first.event_id): "active"}


def test_what_is_heard_is_kept_for_the_duplicate_window_only() -> None:
    t = START
    first = rec(0, 1, 1, t)
    s = PatientAlerts()
    s, _ = _at(s, first, t)
    s, _ = _at(s, withdrawal(0, 1, 2, t + 60 * SEC), t + 60 * SEC)
    rid = str(first.event_id)
    assert (s.issues[rid], s.withdrawals[rid]) == (t, t + 60 * SEC)
    s, _ = apply_event(s, tick_at(t + 60 * SEC + ENDED_KEPT + SEC), POLICY)
    assert s.issues == {} and s.withdrawals == {}


def test_a_state_stored_with_unshown_keeps_recognising_those_withdrawals() -> None:
    """A state stored before session 31 (`unshown`: alerts withdrawn within their settle window) read back."""
    t = START
    w = rec(1, 0, 1, t)  # a warning: settles
    stored = {"unshown": {str(w.event_id): (t + 5 * SEC).isoformat()}}
    s = PatientAlerts.model_validate(stored)
    assert s.withdrawals == {str(w.event_id): t + 5 * SEC}
    s2, out = _at(s, w, t)
    assert out == [] and s2.alerts == {} and s2.pending == {}


def test_a_reissue_timed_before_a_clinicians_resolution_processed_first_is_shown() -> None:
    """Review R31-NOTIF fix: an ended alert's end recognises older records only when a record ended it (a withdrawal,
    a new wording): a clinician's resolution is not on the recommendations' partition. The planner withdraws A and
    publishes it again (its content back) while a clinician, before notification reads them, resolves A: in time
    order A is resolved by the withdrawal, then issued again, and the clinician's resolution finds it active. The
    reissue is shown in either processing order."""
    t = START
    first = rec(0, 1, 1, t)
    rid = str(first.event_id)
    s = PatientAlerts()
    s, _ = _at(s, first, t)
    s, _ = apply_event(s, _act("acknowledge", first.event_id, t + 10 * SEC, 1), POLICY)
    s, _ = apply_event(s, _act("resolve", first.event_id, t + 20 * SEC, 2), POLICY)  # before the records below
    assert s.alerts[rid].status == "resolved"
    s, _ = _at(s, withdrawal(0, 1, 3, t + 15 * SEC), t + 15 * SEC)
    s, out = _at(s, rec(0, 1, 4, t + 16 * SEC), t + 16 * SEC)
    assert [a.status for a in out] == ["active"] and _holding(s) == {rid: "active"}
