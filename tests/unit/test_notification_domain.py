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
