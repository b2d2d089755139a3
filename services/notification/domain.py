"""Alerts per patient and their pure transitions. No I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, Field

from contracts.base import derived_id
from contracts.clinical import Alert, Recommendation

SERVICE: Final = "notification"
SEVERITY_ORDER: Final = {"critical": 0, "warning": 1, "info": 2}


class PatientAlerts(BaseModel):
    alerts: dict[str, Alert] = Field(default_factory=dict)  # by recommendation ID


def alert_for(rec: Recommendation, reissue: bool = False) -> Alert:
    return Alert(
        event_id=derived_id("alert", rec.event_id, rec.caused_by) if reissue else derived_id("alert", rec.event_id),
        patient_id=rec.patient_id,
        occurred_at=rec.occurred_at,
        recorded_at=rec.recorded_at,
        source=SERVICE,
        recommendation_id=rec.event_id,
        rule_id=rec.rule_id,
        ruleset_version=rec.ruleset_version,
        severity=rec.severity,
        title=rec.title,
        text_fr=rec.text_fr,
        citation=rec.citation,
        inputs=rec.inputs,
        missing=rec.missing,
        produced_by=rec.produced_by,
    )


def apply_recommendation(state: PatientAlerts, rec: Recommendation) -> tuple[PatientAlerts, list[Alert]]:
    """An active recommendation becomes one alert (a repeat changes nothing); a withdrawal marks the
    alerts it supersedes as withdrawn; the same recommendation issued again after its withdrawal (another
    `caused_by`: duplicate deliveries are filtered before) makes its alert active again, to be acknowledged
    anew. Returns the alerts created or changed, to publish."""
    alerts = dict(state.alerts)
    changed: list[Alert] = []
    if rec.status == "active":
        current = alerts.get(str(rec.event_id))
        if current is None or current.status == "withdrawn":
            alerts[str(rec.event_id)] = alert_for(rec, reissue=current is not None)
            changed.append(alerts[str(rec.event_id)])
    else:
        for old_id in map(str, rec.supersedes):
            old = alerts.get(old_id)
            if old is not None and old.status != "withdrawn":
                alerts[old_id] = old.model_copy(
                    update={
                        "status": "withdrawn",
                        "event_id": derived_id("alert-withdrawn", old.event_id),
                        "recorded_at": rec.recorded_at,
                    }
                )
                changed.append(alerts[old_id])
    return PatientAlerts(alerts=alerts), changed


def acknowledge(state: PatientAlerts, alert_id: str, by: str, at: datetime) -> tuple[PatientAlerts, Alert | None]:
    """Mark one alert acknowledged. An unknown alert gives None; acknowledging twice keeps the first."""
    target = next(
        (a for a in state.alerts.values() if str(a.recommendation_id) == alert_id or str(a.event_id) == alert_id), None
    )
    if target is None:
        return state, None
    if target.status != "active":
        return state, target
    acked = target.model_copy(
        update={
            "status": "acknowledged",
            "acknowledged_by": by,
            "acknowledged_at": at,
            "event_id": derived_id("alert-ack", target.event_id),
        }
    )
    return PatientAlerts(alerts={**state.alerts, str(target.recommendation_id): acked}), acked


def listing(state: PatientAlerts | None, status: str | None = None) -> list[Alert]:
    alerts = [] if state is None else list(state.alerts.values())
    if status is not None:
        alerts = [a for a in alerts if a.status == status]
    return sorted(alerts, key=lambda a: (SEVERITY_ORDER[a.severity], -a.occurred_at.timestamp()))
