from __future__ import annotations

import uuid
from datetime import UTC, datetime

from contracts.clinical import Recommendation
from contracts.rules import RULESET_VERSION, cite
from services.notification.domain import PatientAlerts, acknowledge, apply_recommendation, listing

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def rec(
    severity: str = "critical", status: str = "active", supersedes: list[uuid.UUID] | None = None
) -> Recommendation:
    return Recommendation(
        event_id=uuid.uuid4(),
        patient_id="p1",
        occurred_at=T0,
        recorded_at=T0,
        source="scoring",
        rule_id="LAB-CA-CRISIS",
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


def test_repeat_is_idempotent_and_withdrawal_marks() -> None:
    r = rec()
    s, out = apply_recommendation(PatientAlerts(), r)
    assert len(out) == 1 and out[0].recommendation_id == r.event_id
    s2, out = apply_recommendation(s, r)
    assert out == [] and s2 == s
    s3, out = apply_recommendation(s2, rec("info", "withdrawn", [r.event_id]))
    assert [a.status for a in out] == ["withdrawn"] and listing(s3, "active") == []


def test_acknowledge_and_ordering() -> None:
    s, _ = apply_recommendation(PatientAlerts(), rec("info"))
    crit = rec("critical")
    s, _ = apply_recommendation(s, crit)
    assert [a.severity for a in listing(s)] == ["critical", "info"]
    s, acked = acknowledge(s, str(crit.event_id), "dr-a", T0)
    assert acked is not None and acked.status == "acknowledged" and acked.acknowledged_by == "dr-a"
    s, again = acknowledge(s, str(crit.event_id), "dr-b", T0)
    assert again is not None and again.acknowledged_by == "dr-a"
    assert acknowledge(s, str(uuid.uuid4()), "dr-a", T0)[1] is None


def test_a_recommendation_issued_again_after_its_withdrawal_alerts_again() -> None:
    """A crisis value corrected to normal, then corrected back: the same recommendation, another cause. The
    alert becomes active again (a new alert event, to acknowledge anew), and can be withdrawn again."""
    first = rec().model_copy(update={"caused_by": str(uuid.uuid4())})
    s, _ = apply_recommendation(PatientAlerts(), first)
    s, acked = acknowledge(s, str(first.event_id), "dr-a", T0)
    s, [withdrawn] = apply_recommendation(s, rec("info", "withdrawn", [first.event_id]))
    again = first.model_copy(update={"caused_by": str(uuid.uuid4())})
    assert again.delivery_key() != first.delivery_key()  # the runtime does not drop it as a duplicate
    s, [alert] = apply_recommendation(s, again)
    assert alert.status == "active" and alert.acknowledged_by is None
    assert alert.recommendation_id == first.event_id
    assert acked is not None and len({alert.event_id, acked.event_id, withdrawn.event_id}) == 3
    assert [a.status for a in listing(s)] == ["active"]
    s, [withdrawn_again] = apply_recommendation(s, rec("info", "withdrawn", [first.event_id]))
    assert withdrawn_again.status == "withdrawn" and withdrawn_again.event_id != withdrawn.event_id
