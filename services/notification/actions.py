"""A person's action on an alert (pure): acknowledge, override (coded reason), resolve; only on the alert's issue
in force (HAZ-22-ORDER-01, review R31-NOTIF3), a second delivery changing nothing. And finding an alert shown."""

from __future__ import annotations

from typing import Final

from contracts.base import derived_id
from contracts.clinical import Alert
from contracts.lifecycle import AlertAction, AlertTransition
from services.notification.lifecycle import alert_step
from services.notification.state import (
    APPLIED_KEPT,
    Output,
    PatientAlerts,
)


def ended_status(state: PatientAlerts, alert_id: str) -> str | None:
    """The status of an alert ended longer ago than ENDED_KEPT (only its tombstone is left), else None."""
    gone = state.ended.get(alert_id)
    return None if gone is None else gone.status


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


def _made_on_issue_in_force(state: PatientAlerts, alert: Alert, action: AlertAction) -> bool:
    """HAZ-22-ORDER-01 (review R31-NOTIF3): was the action made on the alert's issue in force? It names the version it
    was made on (`alert_version`): one of this issue (after its latest raise: shown, escalated, acknowledged) -> yes;
    one of an earlier issue, ended and issued again since -> no, whatever the times (a lagging replica's re-issue may
    be timed before the action), so the outcome does not depend on which was processed first. An action naming no
    version (recorded before the field), or one not found: by its time (done at or after the latest issue)."""
    if action.alert_version is not None:
        rid, n = alert.recommendation_id, state.folded.get(str(alert.recommendation_id), 0)
        start = max((i for i, t in enumerate(alert.history) if t.event in ("raised", "reactivated")), default=0)
        for i, t in enumerate(alert.history):  # each step's version ID (`alert_step`: folded + its position)
            if derived_id("alert-step", rid, n + i + 1, t.event, t.at) == action.alert_version:
                return i > start
    return alert.raised_at is None or action.occurred_at >= alert.raised_at


def apply_action(state: PatientAlerts, action: AlertAction) -> tuple[PatientAlerts, list[Output]]:
    """A person's action (the actor is the token's subject)."""
    if str(action.event_id) in state.applied:  # a second delivery (issue 22): the first stays
        return state, []
    applied = {**state.applied, str(action.event_id): action.occurred_at}
    if len(applied) > APPLIED_KEPT:
        applied = dict(list(applied.items())[-APPLIED_KEPT:])
    target = find(state, str(action.alert_id))
    if target is not None and not _made_on_issue_in_force(state, target, action):
        target = None  # done on an earlier issue of the alert, since ended (issue 22): not on this one
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
    rid = str(target.recommendation_id)
    alert = alert_step(target, step, state.folded.get(rid, 0), **update)
    alerts = {**state.alerts, rid: alert}
    return state.model_copy(update={"alerts": alerts, "applied": applied}), [alert]
