"""The clinicians' side: alert lifecycle actions, timers and the audit trail.

Every state a person creates (an acknowledgement, an override, a resolution) is an `AlertAction` on a topic
the notification service consumes, so its Redis state can be rebuilt from Kafka alone. Timers are
`TimerSet` requests a service publishes for itself; the audit topic records who read or changed what.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.base import Message

AlertStatus = Literal["active", "acknowledged", "overridden", "resolved", "withdrawn"]

#: Why a clinician overrides an alert (CDS Hooks `overrideReasons`: Codings offered on each card).
OverrideReasonCode = Literal[
    "already-addressed",
    "patient-declined",
    "contraindicated",
    "not-applicable",
    "clinical-judgement",
    "other",
]
OVERRIDE_REASON_SYSTEM: Final = "urn:osteocds:CodeSystem:override-reason"
OVERRIDE_REASONS: Final[dict[str, str]] = {
    "already-addressed": "Déjà pris en charge",
    "patient-declined": "Refus du patient",
    "contraindicated": "Contre-indication chez ce patient",
    "not-applicable": "Ne s'applique pas à ce patient",
    "clinical-judgement": "Décision clinique (RCP, jugement du médecin)",
    "other": "Autre raison (voir commentaire)",
}


class AlertTransition(BaseModel):
    """One step of an alert's life, with who and when (a person's token subject, or the service)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event: Literal["raised", "shown", "acknowledged", "overridden", "resolved", "withdrawn", "escalated", "reactivated"]
    status: AlertStatus = Field(description="The alert's status after this step.")
    at: datetime
    by: str = Field(max_length=256, description="Token subject of the person, or the service's name.")
    role: str | None = None
    reason: OverrideReasonCode | None = None
    comment: str | None = Field(default=None, max_length=1000)
    escalation_level: int | None = None


class AlertAction(Message):
    """A person's action on an alert (acknowledge, override with a coded reason, resolve), or a timer of the
    notification service falling due (`timer`: shows settled alerts, escalates unacknowledged critical ones).
    `occurred_at` is when it was done; `actor` comes from the access token, never from a request body."""

    schema_id: ClassVar[str] = "osteocds.alert-action/1"

    action: Literal["acknowledge", "override", "resolve", "timer"]
    alert_id: uuid.UUID | None = Field(default=None, description="The alert (its recommendation ID); none for a timer.")
    actor: str = Field(min_length=1, max_length=256, description="Token subject, or the service for a timer.")
    actor_role: str | None = Field(default=None, max_length=64)
    channel: Literal["api", "web", "cds-hooks", "timer"] = "api"
    reason: OverrideReasonCode | None = None
    comment: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _check(self) -> AlertAction:
        if self.action == "override" and self.reason is None:
            raise ValueError("an override needs a coded reason")
        if self.action != "timer" and self.alert_id is None:
            raise ValueError(f"{self.action} needs an alert_id")
        return self


class TimerSet(Message):
    """A service asks itself to be woken for this patient at `due_at` (kept in a Redis sorted set, so it
    survives a restart); when due, the service feeds the patient through its normal per-patient path."""

    schema_id: ClassVar[str] = "osteocds.timer/1"

    service: str = Field(description="The service that set the timer and will act on it.")
    due_at: AwareDatetime
    purpose: str = Field(max_length=64, description="What falls due, e.g. 'settle' or 'escalation'.")


class AuditEvent(Message):
    """Who read or changed which patient's data, when, through which endpoint. No clinical values."""

    schema_id: ClassVar[str] = "osteocds.audit/1"

    actor: str = Field(max_length=256, description="Token subject.")
    roles: list[str] = Field(default_factory=list)
    action: str = Field(max_length=64, description="e.g. 'read', 'acknowledge', 'override', 'cds-feedback'.")
    resource: str = Field(max_length=256, description="Method and route template, e.g. 'GET /alerts'.")
    service: str


__all__ = [
    "OVERRIDE_REASONS",
    "OVERRIDE_REASON_SYSTEM",
    "AlertAction",
    "AlertStatus",
    "AlertTransition",
    "AuditEvent",
    "OverrideReasonCode",
    "TimerSet",
]
