"""Issue 22 (HAZ-22-ORDER-02): a rebuild publishes the outputs of its replay missing from the topics, but only what
the replay leaves in force per decision (patient, topic, alert_key): an intermediate wording, or the withdrawal that
precedes the next wording, published after the fact showed a decision already replaced, then its replacement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.clinical import Alert, Recommendation
from services.notification.domain import Arrived, PatientAlerts
from services.notification.recommendations import apply_recommendation
from shared.runtime.in_force import (
    decisions_in_replay,
    held_in_force,
    superseded_in_replay,
    withdrawing_what_is_held,
)
from shared.runtime.kafka import Outgoing
from tests.unit.test_order_independence_notification import rec, withdrawal

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def _other_patient(message: Recommendation) -> Recommendation:
    return message.model_copy(update={"patient_id": "another-patient"})


def test_only_the_last_output_of_each_decision_is_in_force() -> None:
    messages = [
        rec(1, 1, 1, T0),  # 0: first wording of decision 1, replaced below
        withdrawal(1, 1, 2, T0 + timedelta(hours=1)),  # 1: its withdrawal, followed by the next wording
        rec(2, 1, 2, T0 + timedelta(hours=1)),  # 2: decision 2, alone: in force
        rec(1, 2, 2, T0 + timedelta(hours=1)),  # 3: decision 1's second wording: in force
        _other_patient(rec(1, 1, 1, T0)),  # 4: the same key for another patient: its own decision, in force
        withdrawal(2, 1, 3, T0 + timedelta(hours=2)),  # 5: decision 2 withdrawn at the end: the withdrawal holds
    ]
    outputs = [Outgoing.of(m) for m in messages]
    assert superseded_in_replay(outputs) == {0, 1, 2}
    in_force = [m for i, m in enumerate(messages) if i not in superseded_in_replay(outputs)]
    assert [(m.patient_id, m.alert_key, m.status) for m in in_force] == [
        (messages[3].patient_id, "planner:item-1", "active"),
        ("another-patient", "planner:item-1", "active"),
        (messages[5].patient_id, None, "withdrawn"),  # a withdrawal names what it withdraws, not the key
    ]


def test_outputs_without_a_decision_key_are_never_held_back() -> None:
    first = rec(1, 1, 1, T0).model_copy(update={"alert_key": None})
    second = rec(1, 2, 2, T0).model_copy(update={"alert_key": None})
    assert superseded_in_replay([Outgoing.of(first), Outgoing.of(second)]) == set()


def test_a_missing_withdrawal_also_withdraws_the_wording_downstream_holds() -> None:
    """HAZ-25-CHAOS-02 (chaos run, systemic planner): live, a patient's SRE reached the planner before the lab result
    and another wording W of SYS-AR-PREREQ went out; the rebuild's replay, in publication order, decided X for the
    same records, then withdrew X when the crisis ended. The withdrawal alone named X, which downstream never
    received: W stayed in force. It now names W too, with the same identity (event ID, caused_by)."""
    held_w = rec(1, 9, 1, T0)  # on the topic, in force downstream
    other_patient = _other_patient(rec(1, 7, 1, T0))  # the same key for another patient: not this decision
    decided_x, withdrawn_x = rec(1, 1, 1, T0), withdrawal(1, 1, 2, T0 + timedelta(hours=3))
    replay = [Outgoing.of(decided_x), Outgoing.of(withdrawn_x)]
    on_topic = [(o.topic, o.value.encode()) for o in (Outgoing.of(held_w), Outgoing.of(other_patient))]
    held = held_in_force(on_topic)
    decisions = decisions_in_replay(replay)
    assert superseded_in_replay(replay) == {0}  # X is not published; its withdrawal is (what the replay leaves)

    sent = withdrawing_what_is_held(replay[1], decisions.get(1), held)
    message = Recommendation.model_validate_json(sent.value)
    assert [str(r) for r in message.supersedes] == [str(decided_x.event_id), str(held_w.event_id)]
    assert (message.event_id, message.caused_by, message.status) == (withdrawn_x.event_id, "cause-2", "withdrawn")
    assert (sent.topic, sent.key, sent.schema_id) == (replay[1].topic, replay[1].key, replay[1].schema_id)


def test_a_withdrawal_of_what_downstream_holds_or_of_nothing_held_is_sent_as_it_is() -> None:
    decided_x, withdrawn_x = rec(1, 1, 1, T0), withdrawal(1, 1, 2, T0 + timedelta(hours=3))
    replay = [Outgoing.of(decided_x), Outgoing.of(withdrawn_x)]
    decisions = decisions_in_replay(replay)
    held_x = held_in_force([(replay[0].topic, replay[0].value)])
    assert withdrawing_what_is_held(replay[1], decisions.get(1), held_x) == replay[1]
    gone = held_in_force([(o.topic, o.value) for o in replay])  # X and its withdrawal both on the topic: none held
    assert gone == {} and withdrawing_what_is_held(replay[1], decisions.get(1), gone) == replay[1]
    assert withdrawing_what_is_held(replay[0], decisions.get(0), held_x) == replay[0]  # not a withdrawal


def test_a_missing_withdrawn_alert_of_notification_is_sent_as_it_is() -> None:
    """Review RZ2: notification's rebuild publishes the alert steps its replay computed and the alerts topic lacks.
    An alert carries its recommendation's `alert_key` and, ended by its producer, the status "withdrawn": it is not a
    withdrawal naming what it withdraws (osteocds.alert/1 has no `supersedes` and forbids unknown fields). Live, the
    alert was shown, then the state was lost before its withdrawal went out: the rebuild sends the withdrawn step as
    notification's pure code wrote it, a valid alert."""
    state, shown = apply_recommendation(PatientAlerts(), Arrived(message=rec(0, 1, 1, T0), at=T0))
    later = T0 + timedelta(hours=1)
    state, ended = apply_recommendation(state, Arrived(message=withdrawal(0, 1, 2, later), at=later))
    replay = [Outgoing.of(a) for a in (*shown, *ended)]
    assert [Alert.model_validate_json(o.value).status for o in replay] == ["active", "withdrawn"]
    held = held_in_force([(replay[0].topic, replay[0].value)])  # the shown step is on the topic, not its withdrawal
    decisions = decisions_in_replay(replay)
    assert decisions.get(1) in held  # the same decision (patient, topic, key), held by the shown step

    sent = withdrawing_what_is_held(replay[1], decisions.get(1), held)
    assert sent == replay[1]
    assert Alert.model_validate_json(sent.value) == ended[-1]
