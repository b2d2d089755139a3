"""An alert's lifecycle step and its deadlines (pure): the settle window of an info or warning alert (shown when
it passes) and the escalation of an active critical one (one level per escalation delay, up to the maximum);
both are the aggregate's `next_due` (domain.py: the lifecycle)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from contracts.base import derived_id
from contracts.clinical import Alert
from contracts.clock import ClockTick
from contracts.lifecycle import AlertTransition
from services.notification.state import (
    AlertPolicy,
    Output,
    PatientAlerts,
)

SERVICE: Final = "notification"
DEFAULT_POLICY: Final = AlertPolicy()  # frozen: one shared default


def next_due(state: PatientAlerts, policy: AlertPolicy) -> datetime | None:
    """The patient's next deadline: the end of a settle window, or the next escalation of an active critical
    alert (None when nothing is waiting)."""
    dues = list(state.pending.values())
    for rid, alert in state.alerts.items():
        if escalates(alert, rid, state, policy):
            assert alert.raised_at is not None
            dues.append(escalation_from(state, rid, alert) + policy.escalation_delay * (alert.escalation_level + 1))
    return min(dues, default=None)


def escalation_from(state: PatientAlerts, rid: str, alert: Alert) -> datetime:
    """When the alert's escalation delays start: its arrival, or that of the earlier wording it took over."""
    assert alert.raised_at is not None
    return state.escalating.get(rid, alert.raised_at)


def escalates(alert: Alert, rid: str, state: PatientAlerts, policy: AlertPolicy) -> bool:
    return (
        alert.severity == "critical"
        and alert.status == "active"
        and rid not in state.pending
        and alert.raised_at is not None
        and alert.escalation_level < policy.escalation_max_level
    )


def alert_step(alert: Alert, transition: AlertTransition, folded: int, **update: object) -> Alert:
    """The alert after one transition: a new alert event (its own ID, counting the `folded` transitions no longer
    in its history), the transition appended."""
    history = [*alert.history, transition]
    n = folded + len(history)
    event_id = derived_id("alert-step", alert.recommendation_id, n, transition.event, transition.at)
    return alert.model_copy(update={"event_id": event_id, "status": transition.status, "history": history, **update})


def apply_tick(
    state: PatientAlerts, tick: ClockTick, policy: AlertPolicy = DEFAULT_POLICY
) -> tuple[PatientAlerts, list[Output]]:
    """A deadline passed (as of `tick.due_at`, whenever the tick is processed): settled alerts are shown,
    unacknowledged critical ones escalated, one level per escalation delay passed."""
    return advance(state, tick.due_at, policy)


def advance(state: PatientAlerts, at: datetime, policy: AlertPolicy) -> tuple[PatientAlerts, list[Output]]:
    """Every deadline passed by `at` (issue 22: what was due before a recommendation or an action arrived happened
    before it, whether or not its clock tick was processed first): the state as of `at`."""
    out: list[Output] = []
    while (due := next_due(state, policy)) is not None and due <= at:
        state, step = _deadlines(state, at, policy)
        if not step:
            break
        out += step
    return state, out


def _deadlines(state: PatientAlerts, at: datetime, policy: AlertPolicy) -> tuple[PatientAlerts, list[Output]]:
    """Settled alerts shown, unacknowledged critical ones escalated by one level, as of `at`."""
    alerts, pending = dict(state.alerts), dict(state.pending)
    out: list[Output] = []
    for rid, due in sorted(state.pending.items(), key=lambda kv: kv[1]):
        if due <= at:  # held for the whole settle window: shown now
            del pending[rid]
            shown = AlertTransition(event="shown", status="active", at=due, by=SERVICE)
            alerts[rid] = alert_step(alerts[rid], shown, state.folded.get(rid, 0))
            out.append(alerts[rid])
    for rid, alert in state.alerts.items():
        if not escalates(alert, rid, state, policy):
            continue
        assert alert.raised_at is not None
        level = alert.escalation_level
        due = escalation_from(state, rid, alert) + policy.escalation_delay * (level + 1)
        if due > at:
            continue
        alerts[rid] = alert_step(
            alert,
            AlertTransition(event="escalated", status="active", at=due, by=SERVICE, escalation_level=level + 1),
            state.folded.get(rid, 0),
            escalation_level=level + 1,
            escalated_to=policy.escalate_to,
        )
        out.append(alerts[rid])
    return state.model_copy(update={"alerts": alerts, "pending": pending}), out
