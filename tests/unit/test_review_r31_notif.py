"""Review R31-NOTIF of b8b0bab (HAZ-22-ORDER-01): notification recognises a second delivery of a recommendation ID by
the newest issue and withdrawal of it heard (`PatientAlerts.issues`, `.withdrawals`).

Guards kept (pass): an issue, its repeat, its withdrawal and its re-publication delivered twice in every interleaving
(settle window and escalation included); a clinician's acknowledgement in the stream; the s30 stale-wording mechanism
in every interleaving; the heard maps kept for the duplicate window and no longer; a state stored before session 31
read back (the runtime's `model_validate_json`) and continued; the heard maps through the stored JSON; a replay in
publication order gives the live state (redeliveries and all); the state bounded over a five-year history.

Defects found (strict xfails in the review; fixed on s31-notif-fix, markers removed: a record's identity (its
delivery key) decides at the newest instant heard of its ID; with nothing heard, the alert's latest issue, its end, or
its tombstone's end recognise a record older than them):
- records of one ID in the same millisecond: the outputs of one batch go out together (`Producer.send_many`, each
  record stamped with the wall clock as it is appended), so a plan item whose content comes back within one batch
  (A -> B -> A, `notify_plan_changes`) gives an issue, a withdrawal and an issue of A's ID in the same millisecond:
  the second issue is taken for the first one again and the alert is lost; a decision withdrawn, issued again and
  withdrawn within one batch keeps its alert. The records differ by `caused_by` (the runtime's delivery key).
- a state stored by the previous code: what it heard and did not keep (a repeat while the alert held) is not
  rebuilt, though the alert's history has the withdrawal time.
- past ENDED_KEPT the tombstone does not recognise a record older than its end (the hazard log says it does)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import Message, derived_id
from contracts.clinical import Alert, Recommendation
from contracts.lifecycle import AlertAction
from services.notification.domain import ENDED, ENDED_KEPT, Arrived, PatientAlerts, apply_event
from services.notification.lifecycle import next_due
from shared.clinical.recommend import PlanNotice, caused_by, notify_plan_changes
from tests.unit.test_issue25_notification_history import (
    LAB,
    PATIENT,
    POLICY,
    START,
    clinician_action,
    drive,
    history,
    tick_at,
)
from tests.unit.test_order_independence_notification import arrived, deliveries, histories, rec, withdrawal

SEC = timedelta(seconds=1)
MS = timedelta(milliseconds=1)
KEYS = {"critical": 0, "warning": 1, "info": 2}  # rec()'s keys by severity (RULES in the order-independence test)


def _apply(s: PatientAlerts, event: object) -> tuple[PatientAlerts, list[Alert]]:
    s, out = apply_event(s, event, POLICY)
    return s, [a for a in out if isinstance(a, Alert)]


def _run(events: Sequence[object], end: datetime) -> PatientAlerts:
    """Each event in turn (a recommendation as `Arrived` with its broker time), then the deadlines drained at `end`."""
    s = PatientAlerts()
    for e in events:
        s, _ = _apply(s, e)
    while True:
        s, out = _apply(s, tick_at(end))
        if not out:
            return s


def _holding(s: PatientAlerts) -> dict[str, tuple[str, int, str | None]]:
    """Alerts shown that hold: ID -> (status, escalation level, who acknowledged)."""
    return {
        k: (a.status, a.escalation_level, a.acknowledged_by)
        for k, a in s.alerts.items()
        if a.status not in ENDED and k not in s.pending
    }


def _twice_in_every_order(n: int) -> Iterator[list[int]]:
    """Every delivery of records 0..n-1: each once in its order (one partition), and each a second time anywhere
    after its first delivery."""

    def go(seq: list[int], nxt: int, open_: frozenset[int]) -> Iterator[list[int]]:
        if nxt == n and not open_:
            yield seq
            return
        if nxt < n:
            yield from go([*seq, nxt], nxt + 1, open_ | {nxt})
        for i in sorted(open_):
            yield from go([*seq, i], nxt, open_ - {i})

    yield from go([], 0, frozenset())


def _act(action: str, alert: object, at: datetime, n: int) -> AlertAction:
    return clinician_action(action, alert, at, n, "r31-action", "dr-r")


def _arrive(message: Recommendation, at: datetime) -> Arrived:
    return Arrived(message=message, at=at)


# --- guards (pass) -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("severity", sorted(KEYS))
@pytest.mark.parametrize("gap", [5 * SEC, 20 * 60 * SEC])  # within the settle window; past it, escalated
@pytest.mark.parametrize("ends_withdrawn", [False, True])
def test_issue_repeat_withdrawal_and_republication_delivered_twice_in_every_order(
    severity: str, gap: timedelta, ends_withdrawn: bool
) -> None:
    """One ID: issued, issued again while it holds (a rebuild's repeat), withdrawn, published again (its content
    back, another cause), then withdrawn again or not; every record delivered twice, in every interleaving. The
    re-publication is a new alert to act on (shown again), and nothing holds after the last withdrawal."""
    k, t = KEYS[severity], START
    records = [
        _arrive(rec(k, 0, 1, t), t),
        _arrive(rec(k, 0, 2, t + gap), t + gap),
        _arrive(withdrawal(k, 0, 3, t + 2 * gap), t + 2 * gap),
        _arrive(rec(k, 0, 4, t + 3 * gap), t + 3 * gap),
    ]
    if ends_withdrawn:
        records.append(_arrive(withdrawal(k, 0, 5, t + 4 * gap), t + 4 * gap))
    end = t + timedelta(hours=6)
    rid = str(rec(k, 0, 0, t).event_id)
    level = POLICY.escalation_max_level if severity == "critical" else 0  # unacknowledged for hours
    expected = {} if ends_withdrawn else {rid: ("active", level, None)}
    seen = 0
    for order in _twice_in_every_order(len(records)):
        s = _run([records[i] for i in order], end)
        assert _holding(s) == expected, [i for i in order]
        assert s.pending == {}
        seen += 1
    assert seen == (105 if len(records) == 4 else 945)


def test_an_acknowledged_alert_withdrawn_and_published_again_in_every_order() -> None:
    """A critical alert issued and repeated, acknowledged by a clinician, withdrawn (resolved), then published again:
    a new alert to act on (nobody acknowledged it), escalated for want of an acknowledgement; every record (the
    action too) delivered twice in every interleaving."""
    t, rid = START, rec(0, 0, 0, START).event_id
    records: list[object] = [
        _arrive(rec(0, 0, 1, t), t),
        _arrive(rec(0, 0, 2, t + 60 * SEC), t + 60 * SEC),
        _act("acknowledge", rid, t + 120 * SEC, 1),
        _arrive(withdrawal(0, 0, 3, t + 180 * SEC), t + 180 * SEC),
        _arrive(rec(0, 0, 4, t + 240 * SEC), t + 240 * SEC),
    ]
    end = t + timedelta(hours=2)
    for order in _twice_in_every_order(len(records)):
        s = _run([records[i] for i in order], end)
        assert _holding(s) == {str(rid): ("active", POLICY.escalation_max_level, None)}, order
        events = [h.event for h in s.alerts[str(rid)].history]
        assert events[:5] == ["raised", "shown", "acknowledged", "resolved", "reactivated"], order


def test_the_s30_stale_wording_in_every_order() -> None:
    """The s30 mechanism (a warning key): wording 1 shown then withdrawn, wording 0 issued, wording 1 issued again
    while wording 0 settles (stale: ignored), wording 0 withdrawn. Every record delivered twice in every
    interleaving: nothing holds, nothing settles."""
    t = START
    records = [
        _arrive(rec(3, 1, 1, t), t),
        _arrive(withdrawal(3, 1, 2, t + 40 * SEC), t + 40 * SEC),
        _arrive(rec(3, 0, 2, t + 40 * SEC + MS), t + 40 * SEC + MS),
        _arrive(rec(3, 1, 3, t + 42 * SEC), t + 42 * SEC),
        _arrive(withdrawal(3, 0, 4, t + 43 * SEC), t + 43 * SEC),
    ]
    for order in _twice_in_every_order(len(records)):
        s = _run([records[i] for i in order], t + timedelta(days=1))
        assert _holding(s) == {} and s.pending == {}, order


def test_a_repeat_neither_restarts_the_settle_window_nor_the_escalation() -> None:
    t = START
    s = PatientAlerts()
    s, _ = _apply(s, _arrive(rec(1, 0, 1, t), t))  # a warning: settles until t + 30 s
    s, out = _apply(s, _arrive(rec(1, 0, 2, t + 10 * SEC), t + 10 * SEC))
    assert out == [] and next_due(s, POLICY) == t + POLICY.settle
    s, out = _apply(s, _arrive(rec(1, 0, 1, t), t))  # the first issue again
    assert out == [] and next_due(s, POLICY) == t + POLICY.settle
    c = PatientAlerts()
    c, _ = _apply(c, _arrive(rec(0, 0, 1, t), t))
    c, out = _apply(c, tick_at(t + POLICY.escalation_delay))
    assert [a.escalation_level for a in out] == [1]
    c, out = _apply(c, _arrive(rec(0, 0, 2, t + 16 * 60 * SEC), t + 16 * 60 * SEC))  # a repeat, escalated alert
    due = next_due(c, POLICY)
    assert out == [] and due == t + 2 * POLICY.escalation_delay
    for again in (_arrive(rec(0, 0, 1, t), t), _arrive(rec(0, 0, 2, t + 16 * 60 * SEC), t + 16 * 60 * SEC)):
        c2, out = _apply(c, again)
        assert out == [] and c2.alerts == c.alerts and next_due(c2, POLICY) == due


def test_the_stale_issue_is_still_recognised_after_its_alert_became_a_tombstone() -> None:
    """ENDED_KEPT counts from the stale issue heard (42 s), the tombstone from wording 1's end (40 s): in between,
    wording 1 is a tombstone and the stale issue's second delivery still changes nothing."""
    t = START
    s = PatientAlerts()
    for r, at in (
        (rec(3, 1, 1, t), t),
        (withdrawal(3, 1, 2, t + 40 * SEC), t + 40 * SEC),
        (rec(3, 0, 2, t + 40 * SEC + MS), t + 40 * SEC + MS),
        (rec(3, 1, 3, t + 42 * SEC), t + 42 * SEC),
        (withdrawal(3, 0, 4, t + 43 * SEC), t + 43 * SEC),
    ):
        s, _ = _apply(s, _arrive(r, at))
    s, _ = _apply(s, tick_at(t + 41 * SEC + ENDED_KEPT))
    w1 = str(rec(3, 1, 0, t).event_id)
    assert w1 not in s.alerts and w1 in s.ended and w1 in s.issues
    s2, out = _apply(s, _arrive(rec(3, 1, 3, t + 42 * SEC), t + 42 * SEC))
    assert out == [] and _holding(s2) == {} and s2.pending == {}
    s2, _ = _apply(s2, tick_at(t + 41 * SEC + ENDED_KEPT + timedelta(hours=1)))
    assert _holding(s2) == {}


def _old_format(s: PatientAlerts, unshown: dict[str, datetime]) -> str:
    """The JSON the previous code stored for the same records: the same document without `issues` and
    `withdrawals`, with `unshown` (alerts withdrawn within their settle window -> when). Checked once by the
    review against b8b0bab^ run on the same records."""
    doc = json.loads(s.model_dump_json())
    del doc["issues"], doc["withdrawals"]
    doc["unshown"] = {k: v.isoformat() for k, v in unshown.items()}
    return json.dumps(doc)


def _before_upgrade() -> tuple[PatientAlerts, list[Arrived]]:
    t = START
    records = [
        _arrive(rec(0, 1, 1, t), t),  # critical
        _arrive(rec(0, 1, 2, t + 60 * SEC), t + 60 * SEC),  # its repeat while it holds
        _arrive(withdrawal(0, 1, 3, t + 90 * SEC), t + 90 * SEC),  # withdrawn while active
        _arrive(rec(1, 0, 4, t + 100 * SEC), t + 100 * SEC),  # a warning
        _arrive(withdrawal(1, 0, 5, t + 110 * SEC), t + 110 * SEC),  # withdrawn within its settle window
    ]
    s = PatientAlerts()
    for r in records:
        s, _ = _apply(s, r)
    return s, records


def test_a_state_stored_by_the_previous_code_is_read_back_and_continued() -> None:
    """The runtime's path (`model_validate_json` of the stored bytes): `unshown` becomes a withdrawal heard; the
    warning's second delivery changes nothing; later records are taken as before."""
    s, records = _before_upgrade()
    warning = str(records[3].message.event_id)
    old = PatientAlerts.model_validate_json(_old_format(s, {warning: START + 110 * SEC}))
    assert old.withdrawals == {warning: START + 110 * SEC} and old.issues == {}
    again, out = _apply(old, records[3])
    again, late = _apply(again, tick_at(START + timedelta(hours=1)))
    assert out == [] and late == [] and _holding(again) == {} and again.pending == {}
    back = START + 200 * SEC  # the warning's decision back (a new publication): shown after its settle window
    again, _ = _apply(again, _arrive(rec(1, 0, 6, back), back))
    again, out = _apply(again, tick_at(back + POLICY.settle))
    assert [(str(a.recommendation_id), a.status) for a in out] == [(warning, "active")]


def test_the_heard_maps_go_through_the_stored_json() -> None:
    s, _ = _before_upgrade()
    assert s.issues and s.withdrawals
    back = PatientAlerts.model_validate_json(s.model_dump_json())
    assert back == s and back.issues == s.issues and back.withdrawals == s.withdrawals


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.integers(0, 2**32), st.integers(0, 8))
def test_a_replay_in_publication_order_gives_the_live_state(
    history_: tuple[list[tuple[datetime, int, object]], list[tuple[datetime, int, object]]], seed: int, duplicates: int
) -> None:
    """A rebuild replays each record once, in publication order; the live consumer got some of them twice and the
    other topics interleaved. The states are the same (alerts, settling, keys, what is heard, the clock), so a
    later second delivery is recognised alike on a live or a rebuilt state."""
    ordered, others = history_
    timed = arrived(ordered)

    def state(records: list[object]) -> dict[str, object]:
        s = PatientAlerts()
        for x in records:
            s, _ = apply_event(s, timed.get(id(x), x), POLICY)
        doc = json.loads(s.model_dump_json())
        return {k: doc[k] for k in ("alerts", "pending", "keys", "issues", "withdrawals", "heard", "ended", "as_of")}

    assert state(deliveries(ordered, others, seed, duplicates)) == state(deliveries(ordered, others, None, 0))


def test_what_is_heard_stays_within_the_duplicate_window_over_five_years() -> None:
    """Issue 25: a patient followed for five years; after every event retained, nothing heard is older than
    ENDED_KEPT before the state's clock, and the heard maps stay small."""
    biggest = 0
    for _, s, _ in drive(history(5, 5), lambda st_, e: apply_event(st_, e, POLICY)):
        if s.as_of is None:
            continue
        horizon = s.as_of - ENDED_KEPT
        assert all(at >= horizon for at in s.issues.values())
        assert all(at >= horizon for at in s.withdrawals.values())
        biggest = max(biggest, len(s.issues) + len(s.withdrawals))
    assert 0 < biggest <= 10  # 5 on this history (review R31)


# --- defects (strict xfails in the review; pass since the fix of s31-notif-fix, markers removed) ------------------


def _one_batch(contents: Sequence[str | None], severity: str, first: datetime, batch: datetime) -> list[Arrived]:
    """A planner's outputs for one plan item (`notify_plan_changes`, stamped with `caused_by` as the services do),
    one trigger per content (None: the item no longer applies). The first content's outputs go out at `first`;
    the others were processed in one batch, whose outputs `send_many` appends within the same millisecond."""
    rule = "RT-MSCC" if severity == "critical" else "SYS-ZA-DOSE"
    published: dict[str, str] = {}
    out: list[Arrived] = []
    for i, content in enumerate(contents):
        trigger = LAB.model_copy(update={"event_id": derived_id("r31-trigger", i), "patient_id": PATIENT})
        notices = (
            []
            if content is None
            else [
                PlanNotice(
                    key="item",
                    digest=content,
                    rule_id=rule,
                    severity=severity,  # type: ignore[arg-type]
                    title="Décision",
                    text_fr=f"Décision : {content}.",
                    inputs=list,
                    missing=(),
                    content=content,
                )
            ]
        )
        published, messages = notify_plan_changes(published, notices, trigger, "planner", "modifiée", "retirée")
        stamped: list[Message] = caused_by(messages, trigger)
        out += [_arrive(m, first if i == 0 else batch) for m in stamped if isinstance(m, Recommendation)]
    return out


@pytest.mark.parametrize(
    "severity",
    [
        pytest.param("warning", id="warning-regression"),  # shown by b8b0bab^ (`unshown` recognised strictly before)
        pytest.param("critical", id="critical-also-before"),  # lost by b8b0bab^ too (`at <= raised_at`)
    ],
)
def test_a_plan_item_back_to_its_content_within_one_batch_is_alerted(severity: str) -> None:
    """A plan item A -> B -> A, the three decisions in one batch of the planner (a new patient's first results
    arriving together): its outputs I(A) W(A) I(B) W(B) I(A) are stamped in one millisecond, each with its own cause
    (`caused_by`: five records for the runtime's deduplication). Delivered once, in order, no redelivery at all:
    A is the plan's decision, and the planner will not publish it again until the item changes. b8b0bab's
    `_before_heard` finds an issue of A heard at that millisecond and drops the last I(A): no alert (a warning was
    alerted before b8b0bab; the critical case was lost before too, by `at <= raised_at`)."""
    t = START
    records = _one_batch(["A", "B", "A"], severity, t, t)
    a = str(records[0].message.event_id)
    assert [(r.message.status, str(r.message.event_id) == a) for r in records] == [
        ("active", True),
        ("withdrawn", False),
        ("active", False),
        ("withdrawn", False),
        ("active", True),
    ]
    assert [str(r.message.supersedes[0]) == a for r in records if r.message.status == "withdrawn"] == [True, False]
    assert len({r.message.delivery_key() for r in records}) == 5
    s = _run(records, t + timedelta(minutes=5))
    assert set(_holding(s)) == {a}


@pytest.mark.parametrize("severity", ["warning", "critical"])
def test_a_decision_withdrawn_issued_again_and_withdrawn_within_one_batch_leaves_no_alert(severity: str) -> None:
    """A plan item at A (alerted earlier), then in one batch B, A again, and no longer applicable: A's records in
    that millisecond are W(A), I(A), W(A) (each its own cause). Nothing should hold; b8b0bab keeps A's alert (the
    last withdrawal is at the instant of a withdrawal heard). Right on b8b0bab^ (it compared with `raised_at`)."""
    t = START
    records = _one_batch(["A", "B", "A", None], severity, t, t + timedelta(minutes=10))
    assert len({r.message.delivery_key() for r in records}) == len(records) == 6
    s = _run(records, t + timedelta(minutes=30))
    assert _holding(s) == {} and s.pending == {}


def test_a_repeat_heard_before_the_upgrade_does_not_raise_a_withdrawn_alert_after_it() -> None:
    """A critical alert issued, issued again while it held, withdrawn while active, all before session 31 (the stored
    state has no `issues`, and `unshown` only for alerts withdrawn within their settle window). After the upgrade,
    the repeat's second delivery (within the duplicate window, its mark lost) raises and escalates the alert. The
    alert's history holds its withdrawal (by notification, at 90 s): a withdrawal heard then would recognise it.
    Likelihood low: it needs a redelivery past the runtime's marks of a record applied before the upgrade."""
    s, records = _before_upgrade()
    warning = str(records[3].message.event_id)
    old = PatientAlerts.model_validate_json(_old_format(s, {warning: START + 110 * SEC}))
    again, out = _apply(old, records[1])
    again, late = _apply(again, tick_at(START + timedelta(hours=1)))
    assert out == [] and late == [] and _holding(again) == {}


def test_past_the_duplicate_window_a_record_older_than_the_tombstone_does_not_reactivate_it() -> None:
    """HAZ-22-ORDER-01's residual reads: beyond ENDED_KEPT only `raised_at` and the tombstones recognise a second
    delivery. The tombstone (`Ended`: status, end, steps) is not consulted: the first issue of a critical alert
    withdrawn 14 days and an hour ago, delivered a second time, is reactivated and shown (the runtime's marks are
    gone too after SEEN_TTL_SECONDS = ENDED_KEPT). Every record of the ID is on the partition before the end kept
    in the tombstone, so `at < ended.at` would recognise it; a new publication comes later."""
    t = START
    s = PatientAlerts()
    first = _arrive(rec(0, 1, 1, t), t)
    for r in (first, _arrive(withdrawal(0, 1, 3, t + 90 * SEC), t + 90 * SEC)):
        s, _ = _apply(s, r)
    s, _ = _apply(s, tick_at(t + 90 * SEC + ENDED_KEPT + timedelta(hours=1)))
    assert str(first.message.event_id) in s.ended and s.issues == {} and s.withdrawals == {}
    again, out = _apply(s, first)
    assert out == [] and _holding(again) == {}
