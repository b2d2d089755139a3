"""Issue 22: notification ends with the same alerts whatever the interleaving of its topics and whatever is delivered
twice, and never holds two alerts of one decision (`alert_key`).

Generated histories: several decisions (alert keys), each issued in successive wordings by one producer; a new
wording withdraws the previous one (the planners' way) or not (what a rebuild's difference publishes after a lost
state: the new wording alone); some are withdrawn for good, some issued again; clinicians act on shown alerts; labs,
scores and plans beside. The same records are delivered again with the other topics interleaved anywhere, and some
records delivered a second time (with their broker timestamp: a redelivery is the same record); then the deadlines
are drained at one clock. Compared: every alert that holds (status, wording, key, escalation level, who acted), the
alerts still settling, the keys, the page's labs, scores and plans.

Order that legitimately matters (stated, kept by the test): the recommendations topic is one partition per patient,
so recommendations and their withdrawals keep their publication order (their broker timestamps increase along it);
recommendations, actions and deadlines are applied in the order of their times: each is applied as of its own time,
and what fell due before a recommendation or an action arrived is applied first (`advance`: a settle window that
ended, an escalation), but a deadline applied before a record of an earlier time reached notification stands (an
escalation sent because no acknowledgement had been received is not taken back when one arrives later; an info alert
shown when its settle window ended is withdrawn, not unshown, by a withdrawal that arrives later). A second delivery
of any record changes nothing, whenever it comes (a recommendation or a withdrawal older than the alert's latest
issue, an action already applied or done before the alert's latest issue); a partition's timestamps increase, and a
recommendation received at the very instant of the withdrawal of its earlier issue counts as issued again (an alert
shown again rather than lost)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.base import derived_id
from contracts.clinical import Alert, NormalisedLab, Recommendation, Score
from contracts.clock import ClockTick
from contracts.lifecycle import AlertAction
from contracts.plan import TreatmentPlan
from contracts.rules import RULESET_VERSION, cite
from services.notification.domain import ENDED, Arrived, PatientAlerts, apply_event
from tests.unit.test_issue25_notification_history import LAB, PATIENT, PLAN, POLICY, SCORE, START, tick_at

RULES = (("RT-MSCC", "critical"), ("SYS-AR-PREREQ", "warning"), ("SYS-VITD-CORR", "info"), ("MIRELS-8", "warning"))


def rec(key: int, wording: int, cause: int, at: datetime) -> Recommendation:
    rule, severity = RULES[key % len(RULES)]
    return Recommendation(
        event_id=derived_id("oi-rec", key, wording),
        patient_id=PATIENT,
        occurred_at=at,
        recorded_at=at,
        source="planner",
        rule_id=rule,
        ruleset_version=RULESET_VERSION,
        severity=severity,
        title=f"Décision {key}",
        text_fr=f"Décision {key}, formulation {wording}.",
        citation=cite(rule),
        inputs=[],
        missing=[f"donnée {wording}"] if wording % 2 else [],
        produced_by="planner",
        caused_by=f"cause-{cause}",
        alert_key=f"planner:item-{key}",
    )


def withdrawal(key: int, wording: int, cause: int, at: datetime) -> Recommendation:
    rule, _ = RULES[key % len(RULES)]
    return Recommendation(
        event_id=derived_id("oi-withdraw", key, wording, cause),
        patient_id=PATIENT,
        occurred_at=at,
        recorded_at=at,
        source="planner",
        rule_id=rule,
        ruleset_version=RULESET_VERSION,
        severity="info",
        title="Recommandation retirée",
        text_fr="Plan mis à jour.",
        citation=cite(rule),
        inputs=[],
        produced_by="planner",
        status="withdrawn",
        supersedes=[derived_id("oi-rec", key, wording)],
        caused_by=f"cause-{cause}",
    )


Timed = tuple[datetime, int, object]  # (broker timestamp, sequence, record)


@st.composite
def histories(draw: st.DrawFn, batches: bool = False) -> tuple[list[Timed], list[Timed]]:
    """(the recommendations and actions in their order, the other topics' records). `batches` (review R31-NOTIF):
    successive recommendations and actions may share a millisecond, as one batch's outputs do (`Producer.send_many`),
    records of one recommendation ID included (an issue, its withdrawal and its issue again: each its own
    `caused_by`; "back": a plan item A -> B -> A within one batch), with fewer keys and wordings so that they meet.
    Labs, scores, plans and ticks keep distinct times (two versions of a lab or a score at one clinical instant are a
    tie those topics settle, not the subject here)."""
    t = START
    ordered: list[Timed] = []
    others: list[Timed] = []
    wording: dict[int, int] = {}  # key -> wording in force (absent: none)
    n = 0
    kinds = ("issue", "issue", "reword", "withdraw", "act", "lab", "score", "plan", "tick")
    for _ in range(draw(st.integers(5, 40))):
        if batches:  # a recommendation or an action in the same millisecond as the record before, or not
            kind = draw(st.sampled_from((*kinds, "back")))
            if kind not in ("issue", "reword", "withdraw", "act", "back") or draw(st.booleans()):
                t += timedelta(seconds=draw(st.sampled_from((0, 1, 5, 20, 40, 400, 1000, 4000))), milliseconds=1)
        else:
            t += timedelta(seconds=draw(st.sampled_from((0, 1, 5, 20, 40, 400, 1000, 4000))), milliseconds=1)
            kind = draw(st.sampled_from(kinds))
        n += 1
        key = draw(st.integers(0, 2 if batches else 4))
        if kind in ("issue", "reword"):
            old = wording.get(key)
            new = draw(st.integers(0, 1 if batches else 3))
            if new == old:
                continue
            if old is not None and (kind == "issue" or draw(st.booleans())):  # the planners withdraw the old one
                ordered.append((t, n, withdrawal(key, old, n, t)))
                if not (batches and draw(st.booleans())):
                    t += timedelta(milliseconds=1)  # a partition's timestamps increase (or stay, within a batch)
            ordered.append((t, n + 1, rec(key, new, n, t)))  # else: a new wording alone (a rebuild's difference)
            n += 1
            wording[key] = new
        elif kind == "back":  # batches: a plan item leaves its content and comes back within one batch
            old = wording.get(key)
            if old is None:  # issued, withdrawn and issued again (three triggers)
                steps = [rec(key, 0, n, t), withdrawal(key, 0, n + 1, t), rec(key, 0, n + 2, t)]
            else:  # A -> B -> A (two triggers: each withdraws what it replaces and issues its wording)
                steps = [withdrawal(key, old, n, t), rec(key, 1 - old, n, t)]
                steps += [withdrawal(key, 1 - old, n + 1, t), rec(key, old, n + 1, t)]
            ordered += [(t, n + i, x) for i, x in enumerate(steps)]
            n += len(steps)
            wording[key] = 0 if old is None else old
        elif kind == "withdraw" and key in wording:
            ordered.append((t, n, withdrawal(key, wording.pop(key), n, t)))
        elif kind == "act" and key in wording:
            action = draw(st.sampled_from(("acknowledge", "override", "resolve")))
            ordered.append(
                (
                    t,
                    n,
                    AlertAction(
                        event_id=derived_id("oi-action", n),
                        patient_id=PATIENT,
                        occurred_at=t,
                        recorded_at=t,
                        source="notification",
                        action=action,
                        alert_id=derived_id("oi-rec", key, wording[key]),
                        actor="dr-b",
                        actor_role="clinician",
                        reason="other" if action == "override" else None,
                    ),
                )
            )
        elif kind == "lab":
            lab = LAB.model_copy(update={"event_id": derived_id("oi-lab", n), "occurred_at": t, "value": n % 7 + 1.0})
            others.append((t, n, lab))
        elif kind == "score":
            others.append((t, n, SCORE.model_copy(update={"event_id": derived_id("oi-score", n), "occurred_at": t})))
        elif kind == "plan":
            others.append((t, n, PLAN.model_copy(update={"version": n})))
        elif kind == "tick":
            others.append((t, n, tick_at(t)))
    return ordered, others


def deliveries(ordered: list[Timed], others: list[Timed], seed: int | None, duplicates: int) -> list[object]:
    """In timestamp order (seed None); or: recommendations, actions and clock ticks in timestamp order (see the
    module's docstring), labs, scores and plans (each topic in its order) interleaved anywhere, and some records of
    every kind delivered a second time later."""
    timeline = sorted([*ordered, *(x for x in others if isinstance(x[2], ClockTick))], key=lambda x: (x[0], x[1]))
    if seed is None:
        return [x for _, _, x in sorted([*ordered, *others], key=lambda x: (x[0], x[1]))]
    rnd = random.Random(seed)
    out: list[object] = [x for _, _, x in timeline]
    for topic in (NormalisedLab, Score, TreatmentPlan):  # each topic in its order, interleaved anywhere
        at = -1
        for _, _, y in others:
            if isinstance(y, topic):
                at = rnd.randint(at + 1, len(out))
                out.insert(at, y)
    for _ in range(duplicates if out else 0):
        i = rnd.randrange(len(out))
        out.insert(rnd.randint(i + 1, len(out)), out[i])
    return out


def arrived(ordered: list[Timed]) -> dict[int, Arrived]:
    """Each recommendation with its broker timestamp (a second delivery carries the same)."""
    return {id(x): Arrived(message=x, at=t) for t, _, x in ordered if isinstance(x, Recommendation)}


def outcome(records: list[object], timed: dict[int, Arrived], end: datetime) -> dict[str, Any]:
    s = PatientAlerts()
    for x in records:
        s, _ = apply_event(s, timed.get(id(x), x), POLICY)
    while True:  # the deadlines drained at the end (the runtime's timers fire each one)
        s, out = apply_event(s, tick_at(end), POLICY)
        if not out:
            break
    holding: dict[str, tuple[Any, ...]] = {}
    for rid, a in s.alerts.items():
        if a.status in ENDED:
            continue
        assert isinstance(a, Alert)
        other = holding.get(str(a.alert_key))
        assert other is None, f"two alerts of {a.alert_key} hold"
        holding[str(a.alert_key)] = (rid, a.status, a.text_fr, tuple(a.missing), a.escalation_level, a.acknowledged_by)
    return {
        "holding": holding,
        "pending": sorted(s.pending),
        "keys": {k: v for k, v in s.keys.items() if v in s.alerts and s.alerts[v].status not in ENDED},
        "labs": {k: (v.event_id, v.value) for k, v in s.labs.items()},
        "scores": {k: v.event_id for k, v in s.scores.items()},
        "plan": None if s.plan is None else s.plan.version,
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.integers(0, 2**32), st.integers(0, 8))
def test_any_interleaving_and_any_redelivery_give_the_same_alerts(
    history: tuple[list[Timed], list[Timed]], seed: int, duplicates: int
) -> None:
    ordered, others = history
    timed = arrived(ordered)
    end = max((t for t, _, _ in [*ordered, *others]), default=START) + timedelta(days=2)
    assert outcome(deliveries(ordered, others, seed, duplicates), timed, end) == outcome(
        deliveries(ordered, others, None, 0), timed, end
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(batches=True), st.integers(0, 2**32), st.integers(0, 8))
def test_records_of_one_batch_in_one_millisecond_in_any_interleaving_and_redelivery(
    history: tuple[list[Timed], list[Timed]], seed: int, duplicates: int
) -> None:
    """Review R31-NOTIF: as above, successive records sharing a millisecond (one batch's outputs), records of one ID
    among them: a record is recognised by its identity (its delivery key), not by its time alone. And the outcome is
    that of the same records one microsecond apart in their order (sharing a millisecond is not being one record:
    an issue, its withdrawal and its issue again in one millisecond leave the alert, as they would a moment apart)."""
    ordered, others = history
    timed = arrived(ordered)
    end = max((t for t, _, _ in [*ordered, *others]), default=START) + timedelta(days=2)
    in_order = outcome(deliveries(ordered, others, None, 0), timed, end)
    assert outcome(deliveries(ordered, others, seed, duplicates), timed, end) == in_order
    apart_ordered, apart_others = apart(ordered, others)
    assert outcome(deliveries(apart_ordered, apart_others, None, 0), arrived(apart_ordered), end) == in_order


def apart(ordered: list[Timed], others: list[Timed]) -> tuple[list[Timed], list[Timed]]:
    """The same records, each `i` microseconds later (`i`: its place in the delivery order), so that none shares a
    time with another: recommendations' broker times, actions' times and ticks' deadlines (fewer than 1,000 records:
    the shift stays below a millisecond, and every comparison between distinct milliseconds is unchanged)."""
    place = {id(x): i for i, (_, _, x) in enumerate(sorted([*ordered, *others], key=lambda x: (x[0], x[1])))}

    def shift(timed: Timed) -> Timed:
        t, n, x = timed
        at = t + timedelta(microseconds=place[id(x)])
        if isinstance(x, AlertAction):
            return at, n, x.model_copy(update={"occurred_at": at, "recorded_at": at})
        if isinstance(x, ClockTick):
            return at, n, tick_at(at)
        return at, n, x

    return [shift(x) for x in ordered], [shift(x) for x in others]


def test_a_new_wording_without_the_withdrawal_of_the_old_one_supersedes_it() -> None:
    """The flush case of issue 22: the rebuild publishes the decision's new wording without withdrawing the wording
    the live service had published. One alert of the decision holds: the new wording; the old one is withdrawn."""
    t = START
    first, second = rec(0, 1, 1, t), rec(0, 2, 2, t + timedelta(minutes=3))
    s = PatientAlerts()
    s, out1 = apply_event(s, Arrived(message=first, at=t), POLICY)
    s, out2 = apply_event(s, Arrived(message=second, at=t + timedelta(minutes=3)), POLICY)
    assert [a.status for a in out1 if isinstance(a, Alert)] == ["active"]  # critical: shown at once
    assert [(str(a.recommendation_id), a.status) for a in out2 if isinstance(a, Alert)] == [
        (str(first.event_id), "withdrawn"),
        (str(second.event_id), "active"),
    ]
    assert s.keys == {"planner:item-0": str(second.event_id)}
    # the old wording delivered again (its broker timestamp: earlier than the new one) changes nothing
    s2, out3 = apply_event(s, Arrived(message=first, at=t), POLICY)
    assert out3 == [] and s2.alerts == s.alerts


def test_an_acknowledged_alert_whose_wording_changes_is_resolved_and_the_new_wording_shown_again() -> None:
    """The documented choice: an acknowledgement is of the wording a clinician read. A new wording of the decision
    resolves the acknowledged alert (kept in its history, with who acknowledged it) and is a new alert to act on."""
    t = START
    first, second = rec(0, 1, 1, t), rec(0, 2, 2, t + timedelta(hours=1))
    s = PatientAlerts()
    s, _ = apply_event(s, Arrived(message=first, at=t), POLICY)
    ack = AlertAction(
        event_id=derived_id("oi-ack", 1),
        patient_id=PATIENT,
        occurred_at=t + timedelta(minutes=5),
        recorded_at=t + timedelta(minutes=5),
        source="notification",
        action="acknowledge",
        alert_id=first.event_id,
        actor="dr-b",
        actor_role="clinician",
    )
    s, _ = apply_event(s, ack, POLICY)
    s, out = apply_event(s, Arrived(message=second, at=t + timedelta(hours=1)), POLICY)
    old, new = s.alerts[str(first.event_id)], s.alerts[str(second.event_id)]
    assert (old.status, old.acknowledged_by) == ("resolved", "dr-b")
    assert [h.event for h in old.history] == ["raised", "shown", "acknowledged", "resolved"]
    assert (new.status, new.acknowledged_by) == ("active", None)
    assert [a.status for a in out if isinstance(a, Alert)] == ["resolved", "active"]


def test_a_replaced_wording_published_again_by_a_rebuild_does_not_displace_its_replacement() -> None:
    """Measured in the long chaos run: the planner replaced wording 1 by wording 2 (withdrawal, then issue); its state
    was lost and the rebuild, replaying only what had been committed, published wording 1 again (another cause);
    the planner's own withdrawal of it and wording 2, sent again, were duplicates. Wording 2 holds; wording 1 does not
    come back (a decision back to it withdraws wording 2 first)."""
    t = START
    w1, w2 = rec(1, 1, 1, t), rec(1, 2, 2, t + timedelta(minutes=1))
    s = PatientAlerts()
    for arrival in (
        Arrived(message=w1, at=t),
        Arrived(message=withdrawal(1, 1, 2, t + timedelta(minutes=1)), at=t + timedelta(minutes=1)),
        Arrived(message=w2, at=t + timedelta(minutes=1, milliseconds=1)),
        Arrived(message=rec(1, 1, 9, t + timedelta(minutes=5)), at=t + timedelta(minutes=5)),  # the rebuild's
    ):
        s, _ = apply_event(s, arrival, POLICY)
    s, _ = apply_event(s, tick_at(t + timedelta(days=1)), POLICY)
    holding = {k: a.status for k, a in s.alerts.items() if a.status not in ENDED}
    assert holding == {str(w2.event_id): "active"}
    # a decision back to wording 1 (its replacement withdrawn first) raises it again
    back = t + timedelta(minutes=9)
    s, _ = apply_event(s, Arrived(message=withdrawal(1, 2, 10, back), at=back), POLICY)
    s, _ = apply_event(s, Arrived(message=rec(1, 1, 10, back), at=back + timedelta(milliseconds=1)), POLICY)
    s, _ = apply_event(s, tick_at(t + timedelta(days=2)), POLICY)
    assert {k for k, a in s.alerts.items() if a.status not in ENDED} == {str(w1.event_id)}
