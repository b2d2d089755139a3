"""Review R31-NOTIF2 of e04a612 (HAZ-22-ORDER-01): notification recognises a second delivery of a recommendation record
by its time and, at the newest instant heard of its ID, by its identity (`PatientAlerts.heard`: digests of the
delivery keys, ID + `caused_by`).

Defects (strict xfails in the review, no code change; fixed on s31-notif-fix2, markers removed):
- the rule rests on one ID's broker timestamps increasing along the patient's partition ("one ID has one producer").
  A producer is a KEDA-scaled Deployment (deploy/render.py, one consumer per partition but several replicas over
  time) and the timestamps are CreateTime, each pod's wall clock (`Producer.send_many`: `timestamp=None`;
  shared/observability/metrics.py counts records from clocks ahead). When a patient's partition moves to a replica
  whose clock is behind by more than the hand-over took, its first records are timed before the last records of the
  previous replica. A NEW record of an ID (its own `caused_by`: the runtime takes it as new) timed before the newest
  record heard of that ID is dropped as a second delivery:
  - a critical decision issued again after its withdrawal (a result corrected, then corrected back) is lost: the
    alert stays withdrawn, nothing is shown nor escalated (a regression from b8b0bab: dc40089 compared with
    `raised_at` and showed it; e04a612 keeps b8b0bab's rule);
  - a withdrawal timed before the latest issue is ignored: the alert stays active and escalates (dc40089 too:
    `raised_at <= at`; same root cause, stated for completeness).

Guards (pass): a second delivery after an acknowledgement, an escalation, a clinician's resolution and a batch in one
millisecond changes nothing; the retention boundaries (ENDED_KEPT, TOMBSTONE_KEPT) for a second delivery and for a
new publication; a replay in publication order of one-millisecond batches gives the live state, `heard` included;
`heard` stays bounded by the IDs heard within the duplicate window, each list by one millisecond's records (since
s31-notif-fix2: by the records of the duplicate window)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.clinical import Alert, Recommendation
from contracts.lifecycle import AlertAction
from services.notification.domain import ENDED, ENDED_KEPT, TOMBSTONE_KEPT, Arrived, PatientAlerts, apply_event
from services.notification.lifecycle import next_due
from tests.unit.test_issue25_notification_history import POLICY, START, clinician_action, tick_at
from tests.unit.test_order_independence_notification import arrived, deliveries, histories, rec, withdrawal

SEC = timedelta(seconds=1)
MS = timedelta(milliseconds=1)
CRITICAL, WARNING = 0, 1  # rec()'s keys: RT-MSCC (critical), SYS-AR-PREREQ (warning)


def _apply(s: PatientAlerts, event: object) -> tuple[PatientAlerts, list[Alert]]:
    s, out = apply_event(s, event, POLICY)
    return s, [a for a in out if isinstance(a, Alert)]


def _run(events: Sequence[object], s: PatientAlerts | None = None) -> tuple[PatientAlerts, list[Alert]]:
    s = PatientAlerts() if s is None else s
    shown: list[Alert] = []
    for e in events:
        s, out = _apply(s, e)
        shown += out
    return s, shown


def _drain(s: PatientAlerts, end: datetime) -> tuple[PatientAlerts, list[Alert]]:
    shown: list[Alert] = []
    while True:
        s, out = _apply(s, tick_at(end))
        if not out:
            return s, shown
        shown += out


def _at(message: Recommendation, at: datetime) -> Arrived:
    return Arrived(message=message, at=at)


def _act(action: str, alert: object, at: datetime, n: int) -> AlertAction:
    return clinician_action(action, alert, at, n, "r31n2-action", "dr-r2")


def _holding(s: PatientAlerts) -> dict[str, tuple[str, int, str | None]]:
    return {
        k: (a.status, a.escalation_level, a.acknowledged_by)
        for k, a in s.alerts.items()
        if a.status not in ENDED and k not in s.pending
    }


# --- defects (strict xfails in the review; pass since the fix of s31-notif-fix2, markers removed) -----------------

#: replica 2's clock runs this much behind replica 1's; the partition's hand-over took less (one second)
SKEW = 3 * SEC
HANDOVER = 1 * SEC


@pytest.mark.parametrize("key", [CRITICAL, WARNING], ids=["critical", "warning"])
def test_a_decision_issued_again_by_a_replica_whose_clock_is_behind_is_alerted(key: int) -> None:
    """Replica 1 issues A (cause 1), later withdraws it (cause 2: a result corrected); the partition moves to replica
    2 (scale-up), whose clock is 3 s behind; one second later the result is corrected back and replica 2 issues A
    again (cause 3, a new delivery key: the runtime passes it). Its broker time is 2 s before the withdrawal's,
    though it is after it on the partition. The planner's decision is A: A's alert must hold (shown again, and for a
    critical one escalated if nobody acknowledges). e04a612 finds a withdrawal of A heard later than the record's
    time and drops it: nothing is shown, nothing escalates. dc40089 showed it (it compared with `raised_at`)."""
    t = START
    withdrawn = t + 60 * SEC
    again = withdrawn + HANDOVER - SKEW  # replica 2's clock
    records = [
        _at(rec(key, 0, 1, t), t),
        _at(withdrawal(key, 0, 2, withdrawn), withdrawn),
        _at(rec(key, 0, 3, again), again),  # after the withdrawal on the partition
    ]
    s, _ = _run(records)
    s, _ = _drain(s, withdrawn + timedelta(hours=1))
    a = str(records[0].message.event_id)
    assert a in _holding(s)


def test_a_withdrawal_by_a_replica_whose_clock_is_behind_ends_the_alert() -> None:
    """Replica 1 issues a critical decision A; the partition moves to replica 2 (clock 3 s behind) which, a second
    later, withdraws A (its cause corrected). The withdrawal is after the issue on the partition, timed 2 s before
    it: dropped, so A's alert stays active and is escalated twice though its producer withdrew it."""
    t = START
    withdrawn = t + HANDOVER - SKEW
    records = [_at(rec(CRITICAL, 0, 1, t), t), _at(withdrawal(CRITICAL, 0, 2, withdrawn), withdrawn)]
    s, _ = _run(records)
    s, _ = _drain(s, t + timedelta(hours=1))
    assert _holding(s) == {}


# --- guards (pass) -----------------------------------------------------------------------------------------------


def test_a_second_delivery_after_an_acknowledgement_or_an_escalation_changes_nothing() -> None:
    """A critical alert shown, escalated once, acknowledged; then each record of it delivered again (its broker
    time): the acknowledgement stands, no new escalation is due, nothing is output. Same for a second critical
    alert escalated twice and never acknowledged: its level and its next deadline stay."""
    t = START
    first = _at(rec(CRITICAL, 0, 1, t), t)
    other = _at(rec(CRITICAL + 4, 0, 1, t + SEC), t + SEC)  # another critical decision (key 4: RT-MSCC)
    esc = t + POLICY.escalation_delay + SEC
    s, _ = _run([first, other, tick_at(esc)])
    a, b = str(first.message.event_id), str(other.message.event_id)
    assert s.alerts[a].escalation_level == 1
    s, _ = _run([_act("acknowledge", a, esc + SEC, 1)], s)
    s, _ = _drain(s, t + 3 * POLICY.escalation_delay)
    assert s.alerts[b].escalation_level == 2
    before, due = s, next_due(s, POLICY)
    for r in (first, other, first):
        s, out = _apply(s, r)
        assert out == []
    assert s == before and next_due(s, POLICY) == due
    assert _holding(s)[a] == ("acknowledged", 1, "dr-r2")


@pytest.mark.parametrize("key", [CRITICAL, WARNING], ids=["critical", "warning"])
def test_a_batch_after_a_clinicians_acknowledgement_and_its_redelivery(key: int) -> None:
    """A acknowledged; then in one batch (one millisecond) A withdrawn and issued again (its content back): the
    acknowledged alert is resolved by its producer, then the new issue is a new alert to act on (active, not
    acknowledged). Every record of the batch delivered again, in the order they came back: nothing changes."""
    t = START
    first = _at(rec(key, 0, 1, t), t)
    s, _ = _run([first, tick_at(t + POLICY.settle)])
    a = str(first.message.event_id)
    s, _ = _run([_act("acknowledge", a, t + 40 * SEC, 1)], s)
    b = t + 120 * SEC
    batch = [_at(withdrawal(key, 0, 2, b), b), _at(rec(key, 0, 3, b), b)]
    s, _ = _run(batch, s)
    s, _ = _drain(s, b + POLICY.settle)
    assert _holding(s) == {a: ("active", 0, None)}
    assert [x.event for x in s.alerts[a].history] == [
        "raised",
        "shown",
        "acknowledged",
        "resolved",
        "reactivated",
        "shown",
    ]
    before = s
    for r in (*batch, first, batch[0]):
        s, out = _apply(s, r)
        assert out == []
    assert s == before


def _withdrawn_alert(key: int) -> tuple[PatientAlerts, Arrived, datetime]:
    """A's first issue, then its withdrawal at 90 s (shown for a critical, never shown for a warning)."""
    t = START
    first = _at(rec(key, 0, 1, t), t)
    end = t + 90 * SEC
    s, _ = _run([first, tick_at(t + POLICY.settle), _at(withdrawal(key, 0, 2, end), end)])
    return s, first, end


@pytest.mark.parametrize("key", [CRITICAL, WARNING], ids=["critical", "warning"])
@pytest.mark.parametrize(
    "after",
    [ENDED_KEPT - MS, ENDED_KEPT, ENDED_KEPT + MS, TOMBSTONE_KEPT - MS, TOMBSTONE_KEPT],
    ids=["ended-1ms", "ended", "ended+1ms", "tombstone-1ms", "tombstone"],
)
def test_a_second_delivery_around_the_retention_boundaries_is_recognised(key: int, after: timedelta) -> None:
    """The first issue delivered again when the state's clock is the end plus `after` (a tick): within
    TOMBSTONE_KEPT, by the withdrawal heard, the alert's end or its tombstone's end, it changes nothing."""
    s, first, end = _withdrawn_alert(key)
    s, _ = _apply(s, tick_at(end + after))
    before = s
    s, out = _apply(s, first)
    s, late = _drain(s, end + after + timedelta(hours=1))
    assert out == [] and late == [] and _holding(s) == {} and s.pending == before.pending


@pytest.mark.parametrize("key", [CRITICAL, WARNING], ids=["critical", "warning"])
@pytest.mark.parametrize(
    "after",
    [SEC, ENDED_KEPT, ENDED_KEPT + MS, TOMBSTONE_KEPT - MS, TOMBSTONE_KEPT + MS],
    ids=["1s", "ended", "ended+1ms", "tombstone-1ms", "tombstone+1ms"],
)
def test_a_new_publication_around_the_retention_boundaries_is_alerted(key: int, after: timedelta) -> None:
    """The decision back (a new cause) `after` its withdrawal: a new alert to act on, whatever is kept of the old one
    (whole, a tombstone, nothing); its redelivery changes nothing."""
    s, first, end = _withdrawn_alert(key)
    back = end + after
    again = _at(rec(key, 0, 3, back), back)
    s, _ = _run([tick_at(back - MS), again], s)
    s, _ = _drain(s, back + POLICY.settle)
    a = str(first.message.event_id)
    assert _holding(s) == {a: ("active", 0, None)}
    before = s
    s, out = _apply(s, again)
    assert out == [] and s == before


def _state(records: list[object], timed: dict[int, Arrived]) -> dict[str, object]:
    s = PatientAlerts()
    for x in records:
        s, _ = apply_event(s, timed.get(id(x), x), POLICY)
    doc = json.loads(s.model_dump_json())
    return {k: doc[k] for k in ("alerts", "pending", "keys", "issues", "withdrawals", "heard", "ended", "as_of")}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(batches=True), st.integers(0, 2**32), st.integers(0, 8))
def test_a_replay_of_one_millisecond_batches_in_publication_order_gives_the_live_state(
    history_: tuple[list[tuple[datetime, int, object]], list[tuple[datetime, int, object]]], seed: int, duplicates: int
) -> None:
    """A rebuild (each record once, in publication order) against the live consumer (some records twice, the other
    topics interleaved), with records of one ID in one millisecond: the same state, `heard` included, so a later
    second delivery is recognised alike."""
    ordered, others = history_
    timed = arrived(ordered)
    assert _state(deliveries(ordered, others, seed, duplicates), timed) == _state(
        deliveries(ordered, others, None, 0), timed
    )


def test_heard_stays_bounded_with_one_millisecond_batches_over_a_year() -> None:
    """A plan item A -> B -> A in one batch every day for a year (five records of two IDs in one millisecond), each
    record delivered twice: `heard` holds only IDs heard within ENDED_KEPT, each with its records timed within it
    (since s31-notif-fix2 every record of the window, not one instant's: two a day for each ID)."""
    s = PatientAlerts()
    biggest = 0
    for day in range(365):
        t = START + timedelta(days=day)
        batch = [
            _at(withdrawal(WARNING, 0, 5 * day, t), t),
            _at(rec(WARNING, 1, 5 * day, t), t),
            _at(withdrawal(WARNING, 1, 5 * day + 1, t), t),
            _at(rec(WARNING, 0, 5 * day + 1, t), t),
        ]
        for r in [*batch, *batch]:
            s, _ = _apply(s, r)
        assert s.as_of is not None
        horizon = s.as_of - ENDED_KEPT
        assert set(s.heard) <= set(s.issues) | set(s.withdrawals)
        assert all(t >= horizon for t in [*s.issues.values(), *s.withdrawals.values()])
        assert all(t >= horizon for v in s.heard.values() for t in v.values())
        assert all(len(v) <= 2 * (ENDED_KEPT.days + 1) for v in s.heard.values())  # two records of each ID a day
        biggest = max(biggest, len(s.heard))
    assert biggest == 2  # two IDs: A and B


# --- the fix (s31-notif-fix2): identity within the duplicate window, time rules only where identities are not kept ---


@pytest.mark.parametrize("key", [CRITICAL, WARNING], ids=["critical", "warning"])
def test_the_skewed_records_delivered_again_in_any_order_change_nothing(key: int) -> None:
    """The replica case (I(A) at 0, W(A) at 60 s, I(A) again from the lagging replica at 58 s): each record delivered
    again, in every order, after the re-issue is shown changes nothing; a later withdrawal from the lagging replica
    (57 s, after the re-issue on the partition) ends the alert, and the records delivered again after it leave it
    ended."""
    t = START
    withdrawn = t + 60 * SEC
    again = withdrawn + HANDOVER - SKEW
    records = [
        _at(rec(key, 0, 1, t), t),
        _at(withdrawal(key, 0, 2, withdrawn), withdrawn),
        _at(rec(key, 0, 3, again), again),
    ]
    s, _ = _run(records)
    s, _ = _drain(s, withdrawn + POLICY.settle)
    a = str(records[0].message.event_id)
    assert _holding(s) == {a: ("active", 0, None)}
    before = s
    for r in (*records, *reversed(records)):
        s, out = _apply(s, r)
        assert out == []
    assert s == before
    last = again - SEC
    s, out = _apply(s, _at(withdrawal(key, 0, 4, last), last))
    assert [x.status for x in out] == ["withdrawn"] and _holding(s) == {}
    for r in (records[2], records[0], records[1], records[2]):
        s, out = _apply(s, r)
        assert out == []
    s, late = _drain(s, withdrawn + timedelta(hours=1))
    assert late == [] and _holding(s) == {}


def _e04a612_format(s: PatientAlerts) -> str:
    """The JSON e04a612 stored: `heard` as the list of the records of the newest instant heard of each ID, no
    `heard_since`."""
    doc = json.loads(s.model_dump_json())
    del doc["heard_since"]
    newest = {rid: max(times.values()) for rid, times in doc["heard"].items()}
    doc["heard"] = {rid: [k for k, at in times.items() if at == newest[rid]] for rid, times in doc["heard"].items()}
    return json.dumps(doc)


def test_a_state_stored_before_the_fix_is_read_back_and_recognises_by_time_before_its_clock() -> None:
    """e04a612's stored state (identities of the newest instant only): `heard_since` is its clock. A record timed at
    or before it is recognised by the time rules (the first issue delivered again after the withdrawal: nothing); the
    withdrawal heard at the newest instant by its identity; a record timed after it by its identity (a re-issue, its
    redelivery); past ENDED_KEPT `heard_since` is dropped (every record of the window is heard)."""
    s, first, end = _withdrawn_alert(CRITICAL)
    old = PatientAlerts.model_validate_json(_e04a612_format(s))
    a = str(first.message.event_id)
    assert old.heard_since == s.as_of and list(old.heard[a].values()) == [end]
    w = _at(withdrawal(CRITICAL, 0, 2, end), end)
    for r in (first, w):
        again, out = _apply(old, r)
        assert out == [] and _holding(again) == {}
    back = end + SEC
    again, out = _apply(old, _at(rec(CRITICAL, 0, 3, back), back))
    assert [x.status for x in out] == ["active"]
    again2, out = _apply(again, _at(rec(CRITICAL, 0, 3, back), back))
    assert out == [] and again2 == again
    later, _ = _apply(again, tick_at(back + ENDED_KEPT + SEC))
    assert later.heard_since is None and PatientAlerts.model_validate_json(later.model_dump_json()) == later
