"""Issue 22 (HAZ-22-ORDER-02): a rebuild publishes the outputs of its replay missing from the topics, but only what
the replay leaves in force per decision (patient, topic, alert_key): an intermediate wording, or the withdrawal that
precedes the next wording, published after the fact showed a decision already replaced, then its replacement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.clinical import Recommendation
from shared.runtime.kafka import Outgoing
from shared.runtime.rebuild import superseded_in_replay
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
