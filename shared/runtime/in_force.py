"""What a rebuild's replay leaves in force per decision, against what the output topics hold in force (issue 22,
HAZ-22-ORDER-02; HAZ-25-CHAOS-02). Pure, no I/O: shared/runtime/rebuild.py calls it with the replay's outputs and
the records its output topics hold.

A decision is (patient, topic, `alert_key`); a withdrawal belongs to the decision of the output it withdraws
(`supersedes` names event IDs)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from shared.runtime.kafka import Outgoing

Decision = tuple[str, str, str]  # (patient, topic, alert_key)


def _mentions_key(value: str | bytes) -> bool:
    return b'"alert_key"' in value if isinstance(value, bytes) else '"alert_key"' in value


def _doc(value: str | bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


class _Decisions:
    """Follows outputs in their order: the decision of each, and each decision's output in force (its event ID)."""

    def __init__(self) -> None:
        self.of_event: dict[str, Decision] = {}
        self.in_force: dict[Decision, str] = {}

    def follow(self, patient: str | None, topic: str, value: str | bytes) -> Decision | None:
        """`patient`: the record's key; None: the message's `patient_id` (a record read back from a topic)."""
        if not _mentions_key(value):
            return None
        doc = _doc(value)
        if doc is None:
            return None
        if patient is None:
            patient = doc.get("patient_id")
            if not isinstance(patient, str):
                return None
        key, event = doc.get("alert_key"), str(doc.get("event_id"))
        if isinstance(key, str):
            decision: Decision = (patient, topic, key)
            self.of_event[event] = decision
            self.in_force[decision] = event
            return decision
        if doc.get("status") != "withdrawn":
            return None
        withdrawn = [str(r) for r in doc.get("supersedes") or ()]
        decisions = [self.of_event[r] for r in withdrawn if r in self.of_event]
        if not decisions:
            return None
        self.of_event[event] = decisions[0]
        for d in decisions:
            if self.in_force.get(d) in withdrawn:
                del self.in_force[d]
        return decisions[0]


def decisions_in_replay(outputs: Sequence[Outgoing]) -> dict[int, Decision]:
    """The decision of each output that has one, by index."""
    follow = _Decisions()
    found: dict[int, Decision] = {}
    for i, out in enumerate(outputs):
        decision = follow.follow(out.key, out.topic, out.value)
        if decision is not None:
            found[i] = decision
    return found


def superseded_in_replay(outputs: Sequence[Outgoing]) -> set[int]:
    """Indexes of the outputs whose decision has a later output in the same replay: an intermediate wording, or a
    withdrawal followed by the next wording. Published by a rebuild, they showed a clinician a decision already
    replaced, then its replacement again (issue 22, HAZ-22-ORDER-02): only what the replay leaves in force is
    published when missing."""
    return superseded(decisions_in_replay(outputs))


def superseded(decisions: dict[int, Decision]) -> set[int]:
    """`superseded_in_replay` from the outputs' decisions (`decisions_in_replay`), when the caller has them."""
    last = {decision: i for i, decision in decisions.items()}
    return {i for i, decision in decisions.items() if last[decision] != i}


def held_in_force(records: Iterable[tuple[str, str | bytes]]) -> dict[Decision, str]:
    """Per decision, the event ID in force on the output topics: `records` are (topic, value) of one producer, each
    partition in offset order (a patient's records are on one partition)."""
    follow = _Decisions()
    for topic, value in records:
        follow.follow(None, topic, value)
    return follow.in_force


def withdrawing_what_is_held(out: Outgoing, decision: Decision | None, held: dict[Decision, str]) -> Outgoing:
    """HAZ-25-CHAOS-02: a missing withdrawal the replay leaves in force withdraws the wording the replay decided; live,
    the same records arrived in another order across topics and another wording of the same decision went out and
    holds downstream. Published as it is, it withdraws a recommendation downstream never received, and the wording
    downstream holds stays in force, stale. The withdrawal also names the one held (its identity, event ID and
    `caused_by`, is unchanged)."""
    if decision is None:
        return out
    current = held.get(decision)
    doc = _doc(out.value) if current is not None else None
    # review RZ2: a producer's withdrawal only (no key of its own, a `supersedes` list): notification's alerts carry
    # `alert_key` and a "withdrawn" status too, with no `supersedes` field (osteocds.alert/1 forbids one)
    if doc is None or doc.get("status") != "withdrawn" or isinstance(doc.get("alert_key"), str):
        return out
    if not isinstance(doc.get("supersedes"), list):
        return out
    withdrawn = [str(r) for r in doc["supersedes"]]
    if current in withdrawn:
        return out
    doc["supersedes"] = [*withdrawn, current]
    return replace(out, value=json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
