"""The clinicians' side: alert lifecycle actions and the audit trail.

Every state a person creates (an acknowledgement, an override, a resolution) is an `AlertAction` on a topic
the notification service consumes, so its Redis state can be rebuilt from Kafka alone. The audit topic
records who read or changed what.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    """A person's action on an alert: acknowledge, override with a coded reason (and an optional comment), or
    resolve. `occurred_at` is when it was done; `actor` comes from the access token, never from a request body."""

    schema_id: ClassVar[str] = "osteocds.alert-action/1"

    action: Literal["acknowledge", "override", "resolve"]
    alert_id: uuid.UUID = Field(description="The alert (its recommendation ID, also the CDS Hooks card uuid).")
    alert_version: uuid.UUID | None = Field(
        default=None,
        description="The version of the alert acted on (its `event_id` when the action was made). Optional: an "
        "action without it (recorded before it existed) is matched to the alert's issue by its time.",
    )
    actor: str = Field(min_length=1, max_length=256, description="Token subject.")
    actor_role: str | None = Field(default=None, max_length=64)
    channel: Literal["api", "web", "cds-hooks"] = "api"
    reason: OverrideReasonCode | None = None
    comment: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _check(self) -> AlertAction:
        if self.action == "override" and self.reason is None:
            raise ValueError("an override needs a coded reason")
        return self


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
]
