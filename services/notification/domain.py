"""Alerts per patient and their pure transitions (the lifecycle). No I/O, no clock: every time comes from
an event (the broker's timestamp of a recommendation, a person's action, a timer's due time), so a replay of
the topics gives the same state.

Lifecycle: active → acknowledged, or overridden (coded reason) → resolved; withdrawn when the decision no
longer holds before anyone acted on it. Every transition is kept with who and when.
No churn: an info or warning decision is held back for the settle window; withdrawn or replaced within it,
it is never shown. A critical one is shown at once, and escalated when still active after the escalation
delay (then again each delay, up to the maximum level). Both deadlines are the aggregate's `next_due`: the
runtime keeps it in Redis with the state (shared/runtime/timers.py) and feeds a `ClockTick` back when it passes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import Message, derived_id
from contracts.clinical import Alert, NormalisedLab, Recommendation, Score
from contracts.clock import ClockTick
from contracts.lifecycle import AlertAction, AlertTransition
from contracts.local import LocalTreatmentPlan
from contracts.plan import TreatmentPlan

SERVICE: Final = "notification"
SEVERITY_ORDER: Final = {"critical": 0, "warning": 1, "info": 2}
#: how many applied action IDs a patient's state remembers (an HTTP request waits for its own)
APPLIED_KEPT: Final = 200


@dataclass(frozen=True)
class AlertPolicy:
    settle: timedelta = timedelta(seconds=30)
    escalation_delay: timedelta = timedelta(minutes=15)
    escalation_max_level: int = 2
    escalate_to: str = "escalation"


class Arrived(BaseModel):
    """A recommendation with the time notification received it (the broker's timestamp of the record): the
    start of its settle window and of its escalation delay."""

    model_config = ConfigDict(frozen=True)

    message: Recommendation
    at: AwareDatetime

    @property
    def patient_id(self) -> str:
        return self.message.patient_id

    def delivery_key(self) -> str:
        return self.message.delivery_key()


class PatientAlerts(BaseModel):
    alerts: dict[str, Alert] = Field(default_factory=dict)  # by recommendation ID
    #: info/warning alerts still in their settle window (never shown yet): recommendation ID -> due time
    pending: dict[str, datetime] = Field(default_factory=dict)
    applied: list[str] = Field(default_factory=list)  # IDs of the latest actions applied
    # what the clinicians' page shows besides the alerts
    plan: TreatmentPlan | None = None
    local_plan: LocalTreatmentPlan | None = None
    scores: dict[str, Score] = Field(default_factory=dict)  # "score:subject" -> latest
    labs: dict[str, NormalisedLab] = Field(default_factory=dict)  # analyte -> latest


Output = Alert


def next_due(state: PatientAlerts, policy: AlertPolicy) -> datetime | None:
    """The patient's next deadline: the end of a settle window, or the next escalation of an active critical
    alert (None when nothing is waiting)."""
    dues = list(state.pending.values())
    for rid, alert in state.alerts.items():
        if escalates(alert, rid, state, policy):
            assert alert.raised_at is not None
            dues.append(alert.raised_at + policy.escalation_delay * (alert.escalation_level + 1))
    return min(dues, default=None)


def escalates(alert: Alert, rid: str, state: PatientAlerts, policy: AlertPolicy) -> bool:
    return (
        alert.severity == "critical"
        and alert.status == "active"
        and rid not in state.pending
        and alert.raised_at is not None
        and alert.escalation_level < policy.escalation_max_level
    )


def _step(alert: Alert, transition: AlertTransition, **update: object) -> Alert:
    """The alert after one transition: a new alert event (its own ID), the transition appended."""
    history = [*alert.history, transition]
    event_id = derived_id("alert-step", alert.recommendation_id, len(history), transition.event, transition.at)
    return alert.model_copy(update={"event_id": event_id, "status": transition.status, "history": history, **update})


def alert_for(rec: Recommendation, at: datetime, reissue: bool = False) -> Alert:
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
        raised_at=at,
        history=[AlertTransition(event="reactivated" if reissue else "raised", status="active", at=at, by=SERVICE)],
    )


def apply_recommendation(
    state: PatientAlerts, arrived: Arrived, policy: AlertPolicy = AlertPolicy()
) -> tuple[PatientAlerts, list[Output]]:
    """An active recommendation becomes one alert (a repeat changes nothing): a critical one is shown at once
    (its escalation is then due), an info or warning one waits for the settle window. A withdrawal drops
    an alert never shown, withdraws an active one, and resolves one a clinician has acted on. The same
    recommendation issued again after its withdrawal (another `caused_by`) is a new alert to act on."""
    rec, at = arrived.message, arrived.at
    alerts, pending = dict(state.alerts), dict(state.pending)
    out: list[Output] = []
    if rec.status == "active":
        rid = str(rec.event_id)
        current = alerts.get(rid)
        if current is not None and current.status not in ("withdrawn", "resolved"):
            return state, []
        alert = alert_for(rec, at, reissue=current is not None)
        if current is not None:
            alert = alert.model_copy(update={"history": [*current.history, *alert.history]})
        if rec.severity == "critical":
            alert = _step(alert, AlertTransition(event="shown", status="active", at=at, by=SERVICE))
            out.append(alert)
        else:
            pending[rid] = at + policy.settle
        alerts[rid] = alert
    else:
        for old_id in map(str, rec.supersedes):
            old = alerts.get(old_id)
            if old is None:
                continue
            if old_id in pending:  # withdrawn or replaced within the settle window: never shown
                del pending[old_id], alerts[old_id]
            elif old.status == "active":
                alerts[old_id] = _step(old, AlertTransition(event="withdrawn", status="withdrawn", at=at, by=SERVICE))
                out.append(alerts[old_id])
            elif old.status in ("acknowledged", "overridden"):
                alerts[old_id] = _step(old, AlertTransition(event="resolved", status="resolved", at=at, by=SERVICE))
                out.append(alerts[old_id])
    return state.model_copy(update={"alerts": alerts, "pending": pending}), out


def find(state: PatientAlerts, alert_id: str) -> Alert | None:
    """An alert shown to clinicians, by its ID (the recommendation ID, also the CDS Hooks card uuid) or by the
    event ID of one of its versions. Alerts still in their settle window are not found."""
    hit = state.alerts.get(alert_id)
    if hit is None:
        hit = next((a for a in state.alerts.values() if str(a.event_id) == alert_id), None)
    if hit is None or str(hit.recommendation_id) in state.pending:
        return None
    return hit


#: which statuses each person's action applies to, and the resulting status
_ACTIONS: Final = {
    "acknowledge": ({"active"}, "acknowledged"),
    "override": ({"active", "acknowledged"}, "overridden"),
    "resolve": ({"acknowledged", "overridden"}, "resolved"),
}


def allowed(alert: Alert, action: str) -> bool:
    return action in _ACTIONS and alert.status in _ACTIONS[action][0]


def apply_action(state: PatientAlerts, action: AlertAction) -> tuple[PatientAlerts, list[Output]]:
    """A person's action (the actor is the token's subject)."""
    applied = [*state.applied, str(action.event_id)][-APPLIED_KEPT:]
    target = find(state, str(action.alert_id))
    if target is None or not allowed(target, action.action):  # unknown, or already acted on: the first stays
        return state.model_copy(update={"applied": applied}), []
    status = _ACTIONS[action.action][1]
    at, by = action.occurred_at, action.actor
    step = AlertTransition(
        event=status,
        status=status,
        at=at,
        by=by,
        role=action.actor_role,
        reason=action.reason,
        comment=action.comment,
    )
    update: dict[str, object] = {}
    if action.action == "acknowledge":
        update = {"acknowledged_by": by, "acknowledged_at": at}
    elif action.action == "override":
        update = {"overridden_by": by, "overridden_at": at, "override_reason": action.reason}
        update["override_comment"] = action.comment
    alert = _step(target, step, **update)
    alerts = {**state.alerts, str(target.recommendation_id): alert}
    return state.model_copy(update={"alerts": alerts, "applied": applied}), [alert]


def apply_tick(
    state: PatientAlerts, tick: ClockTick, policy: AlertPolicy = AlertPolicy()
) -> tuple[PatientAlerts, list[Output]]:
    """A deadline passed (as of `tick.due_at`, whenever the tick is processed): settled alerts are shown,
    unacknowledged critical ones escalated by one level."""
    at = tick.due_at
    alerts, pending = dict(state.alerts), dict(state.pending)
    out: list[Output] = []
    for rid, due in sorted(state.pending.items(), key=lambda kv: kv[1]):
        if due <= at:  # held for the whole settle window: shown now
            del pending[rid]
            alerts[rid] = _step(alerts[rid], AlertTransition(event="shown", status="active", at=due, by=SERVICE))
            out.append(alerts[rid])
    for rid, alert in state.alerts.items():
        if not escalates(alert, rid, state, policy):
            continue
        assert alert.raised_at is not None
        level = alert.escalation_level
        due = alert.raised_at + policy.escalation_delay * (level + 1)
        if due > at:
            continue
        alerts[rid] = _step(
            alert,
            AlertTransition(event="escalated", status="active", at=due, by=SERVICE, escalation_level=level + 1),
            escalation_level=level + 1,
            escalated_to=policy.escalate_to,
        )
        out.append(alerts[rid])
    return state.model_copy(update={"alerts": alerts, "pending": pending}), out


def apply_plan(state: PatientAlerts, plan: TreatmentPlan) -> tuple[PatientAlerts, list[Output]]:
    if state.plan is not None and state.plan.version >= plan.version:
        return state, []
    return state.model_copy(update={"plan": plan}), []


def apply_local_plan(state: PatientAlerts, plan: LocalTreatmentPlan) -> tuple[PatientAlerts, list[Output]]:
    if state.local_plan is not None and state.local_plan.version >= plan.version:
        return state, []
    return state.model_copy(update={"local_plan": plan}), []


def apply_score(state: PatientAlerts, score: Score) -> tuple[PatientAlerts, list[Output]]:
    key = f"{score.score}:{score.subject}"
    old = state.scores.get(key)
    if old is not None and (old.occurred_at, old.recorded_at) > (score.occurred_at, score.recorded_at):
        return state, []
    return state.model_copy(update={"scores": {**state.scores, key: score}}), []


def apply_lab(state: PatientAlerts, lab: NormalisedLab) -> tuple[PatientAlerts, list[Output]]:
    """The newest value of each analyte, with its provenance; a withdrawn result leaves the page."""
    old = state.labs.get(lab.analyte)
    labs = dict(state.labs)
    if lab.status == "withdrawn":
        if old is not None and old.result_id == lab.result_id:
            del labs[lab.analyte]
        return state.model_copy(update={"labs": labs}), []
    if old is not None and old.result_id != lab.result_id and old.occurred_at > lab.occurred_at:
        return state, []  # a late, older result never hides a newer one
    labs[lab.analyte] = lab
    return state.model_copy(update={"labs": labs}), []


def apply_event(state: PatientAlerts, event: object, policy: AlertPolicy) -> tuple[PatientAlerts, list[Message]]:
    """The one transition the runtime calls, whatever the topic."""
    out: list[Output]
    if isinstance(event, Arrived):
        state, out = apply_recommendation(state, event, policy)
    elif isinstance(event, AlertAction):
        state, out = apply_action(state, event)
    elif isinstance(event, ClockTick):
        state, out = apply_tick(state, event, policy)
    elif isinstance(event, TreatmentPlan):
        state, out = apply_plan(state, event)
    elif isinstance(event, LocalTreatmentPlan):
        state, out = apply_local_plan(state, event)
    elif isinstance(event, Score):
        state, out = apply_score(state, event)
    elif isinstance(event, NormalisedLab):
        state, out = apply_lab(state, event)
    else:
        raise TypeError(f"notification does not handle {type(event).__name__}")
    return state, list(out)


def listing(state: PatientAlerts | None, status: str | None = None, severity: str | None = None) -> list[Alert]:
    """Alerts shown to clinicians (never one still in its settle window), most severe and most recent first."""
    if state is None:
        return []
    alerts = [a for rid, a in state.alerts.items() if rid not in state.pending]
    if status is not None:
        alerts = [a for a in alerts if a.status == status]
    if severity is not None:
        alerts = [a for a in alerts if a.severity == severity]
    return sorted(alerts, key=lambda a: (SEVERITY_ORDER[a.severity], -a.occurred_at.timestamp(), str(a.event_id)))


def action_applied(state: PatientAlerts | None, action_id: uuid.UUID) -> bool:
    return state is not None and str(action_id) in state.applied
