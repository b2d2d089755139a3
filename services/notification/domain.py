"""Alerts per patient and their pure transitions (the lifecycle). No I/O, no clock: every time comes from
an event (the broker's timestamp of a recommendation, a person's action, a timer's due time), so a replay of
the topics gives the same state.

Lifecycle: active → acknowledged, or overridden (coded reason) → resolved; withdrawn when the decision no
longer holds before anyone acted on it. Every transition is kept with who and when.
No churn: an info or warning decision is held back for the settle window; withdrawn or replaced within it,
it is never shown. A critical one is shown at once, and escalated when still active after the escalation
delay (then again each delay, up to the maximum level). Both deadlines are the aggregate's `next_due`: the
runtime keeps it in Redis with the state (shared/runtime/timers.py) and feeds a `ClockTick` back when it passes.
Here: `transition` over every topic, the plans, scores and labs the page shows, the listing. The steps: a
recommendation issued or withdrawn (recommendations.py), a person's action (actions.py), the deadlines and the one
step every transition makes (lifecycle.py).

Retention (issue 25, retention.py): `apply_event` is the pure `transition` followed by `retain`, which bounds the
state by lifecycle horizons measured from the state's own clock `as_of` (the newest arrival, action or deadline it has
processed; never the wall clock). It never drops or changes an alert that still holds (active, acknowledged,
overridden, settling) nor its escalation state; a withdrawn or resolved alert stays whole for ENDED_KEPT, then
only its ID, status, end and step count (`ended`) for TOMBSTONE_KEPT, so a decision issued again continues the
same alert (reactivated, its step IDs counting the folded steps in `folded`). Earlier cycles of an alert issued
again, ended more than ENDED_KEPT ago, leave its `history` (they are on osteocds.alerts.v1). Nothing else grows:
labs, scores and plans are the newest of each. README "Retention: notification".
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from contracts.base import Message
from contracts.clinical import Alert, NormalisedLab, Score
from contracts.clock import ClockTick
from contracts.lifecycle import AlertAction
from contracts.local import LocalTreatmentPlan
from contracts.plan import TreatmentPlan
from services.notification.actions import apply_action
from services.notification.lifecycle import advance, apply_tick
from services.notification.recommendations import apply_recommendation
from services.notification.retention import retain
from services.notification.state import (
    APPLIED_FOR,
    APPLIED_KEPT,
    ENDED,
    ENDED_KEPT,
    TOMBSTONE_KEPT,
    AlertPolicy,
    Arrived,
    Ended,
    Output,
    PatientAlerts,
)

#: the model, policy and horizons (state.py) and retention (retention.py) are read through here too
__all__ = [
    "APPLIED_FOR",
    "APPLIED_KEPT",
    "ENDED",
    "ENDED_KEPT",
    "TOMBSTONE_KEPT",
    "AlertPolicy",
    "Arrived",
    "Ended",
    "Output",
    "PatientAlerts",
    "action_applied",
    "apply_event",
    "apply_lab",
    "apply_local_plan",
    "apply_plan",
    "apply_score",
    "listing",
    "retain",
    "transition",
]
SEVERITY_ORDER: Final = {"critical": 0, "warning": 1, "info": 2}


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
    replaces = old is not None and old.event_id in score.supersedes  # the version it names as replaced
    if old is not None and not replaces and (old.occurred_at, old.recorded_at) > (score.occurred_at, score.recorded_at):
        return state, []
    if score.status == "withdrawn":  # no longer decided: off the page (HAZ-22-ORDER-03)
        return state.model_copy(update={"scores": {k: v for k, v in state.scores.items() if k != key}}), []
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
    if old is not None and old.result_id == lab.result_id and _version(old) > _version(lab):
        return state, []  # an earlier version of the result delivered again (issue 22)
    labs[lab.analyte] = lab
    return state.model_copy(update={"labs": labs}), []


def _version(lab: NormalisedLab) -> tuple[datetime, datetime]:
    return lab.recorded_at, lab.occurred_at


def transition(state: PatientAlerts, event: object, policy: AlertPolicy) -> tuple[PatientAlerts, list[Message]]:
    """One event, whatever the topic, without retention (`apply_event` is this, then `retain`). An arrival, an
    action or a deadline also moves the state's clock `as_of` forward."""
    out: list[Output]
    at: datetime | None = None
    before = state
    if isinstance(event, NormalisedLab):  # the most frequent first
        state, out = apply_lab(state, event)
    elif isinstance(event, Arrived):
        state, early = advance(state, event.at, policy)  # deadlines passed before it arrived (issue 22)
        state, out = apply_recommendation(state, event, policy)
        out, at = early + out, event.at
    elif isinstance(event, AlertAction):
        state, early = advance(state, event.occurred_at, policy)  # deadlines passed before it was done (issue 22)
        state, out = apply_action(state, event)
        out, at = early + out, event.occurred_at
    elif isinstance(event, ClockTick):
        state, out = apply_tick(state, event, policy)
        at = event.due_at
    elif isinstance(event, TreatmentPlan):
        state, out = apply_plan(state, event)
    elif isinstance(event, LocalTreatmentPlan):
        state, out = apply_local_plan(state, event)
    elif isinstance(event, Score):
        state, out = apply_score(state, event)
    else:
        raise TypeError(f"notification does not handle {type(event).__name__}")
    if at is not None and (state.as_of is None or at > state.as_of):
        if state is before:  # unchanged: a new state with the new clock
            state = state.model_copy(update={"as_of": at})
        else:  # a state this transition just made, that nothing else holds yet
            state.__dict__["as_of"] = at
    return state, list(out)


def apply_event(state: PatientAlerts, event: object, policy: AlertPolicy) -> tuple[PatientAlerts, list[Message]]:
    """The one transition the runtime calls, whatever the topic: `transition`, then `retain`. Retention reads only
    the alerts, the applied actions and the clock: when the event changed none of them (a lab, a score, a plan),
    the state is as retained as it was."""
    new, out = transition(state, event, policy)
    if new.alerts is state.alerts and new.applied is state.applied and new.as_of == state.as_of:
        return new, out
    return retain(new), out


def listing(state: PatientAlerts | None, status: str | None = None, severity: str | None = None) -> list[Alert]:
    """Alerts shown to clinicians (never one still in its settle window), most severe and most recent first."""
    if state is None:
        return []
    alerts = [a for rid, a in state.alerts.items() if rid not in state.pending]
    if status is not None:
        alerts = [a for a in alerts if a.status == status]
    if severity is not None:
        alerts = [a for a in alerts if a.severity == severity]
    # ties by the alert ID, not by the version's: an alert keeps its place when acknowledged
    return sorted(
        alerts, key=lambda a: (SEVERITY_ORDER[a.severity], -a.occurred_at.timestamp(), str(a.recommendation_id))
    )


def action_applied(state: PatientAlerts | None, action_id: uuid.UUID) -> bool:
    return state is not None and str(action_id) in state.applied
