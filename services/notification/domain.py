"""Alerts per patient and their pure transitions (the lifecycle). No I/O, no clock: every time comes from
an event (the broker's timestamp of a recommendation, a person's action, a timer's due time), so a replay of
the topics gives the same state.

Lifecycle: active → acknowledged, or overridden (coded reason) → resolved; withdrawn when the decision no
longer holds before anyone acted on it. Every transition is kept with who and when.
No churn: an info or warning decision is held back for the settle window; withdrawn or replaced within it,
it is never shown. A critical one is shown at once, and escalated when still active after the escalation
delay (then again each delay, up to the maximum level). Both deadlines are the aggregate's `next_due`: the
runtime keeps it in Redis with the state (shared/runtime/timers.py) and feeds a `ClockTick` back when it passes.

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

from contracts.base import Message, derived_id
from contracts.clinical import Alert, NormalisedLab, Recommendation, Score
from contracts.clock import ClockTick
from contracts.lifecycle import AlertAction, AlertTransition
from contracts.local import LocalTreatmentPlan
from contracts.plan import TreatmentPlan
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
    "SERVICE",
    "TOMBSTONE_KEPT",
    "AlertPolicy",
    "Arrived",
    "Ended",
    "Output",
    "PatientAlerts",
    "action_applied",
    "advance",
    "alert_for",
    "allowed",
    "apply_action",
    "apply_event",
    "apply_lab",
    "apply_local_plan",
    "apply_plan",
    "apply_recommendation",
    "apply_score",
    "apply_tick",
    "ended_status",
    "escalates",
    "find",
    "listing",
    "next_due",
    "retain",
    "transition",
]
SERVICE: Final = "notification"
DEFAULT_POLICY: Final = AlertPolicy()  # frozen: one shared default
SEVERITY_ORDER: Final = {"critical": 0, "warning": 1, "info": 2}


def next_due(state: PatientAlerts, policy: AlertPolicy) -> datetime | None:
    """The patient's next deadline: the end of a settle window, or the next escalation of an active critical
    alert (None when nothing is waiting)."""
    dues = list(state.pending.values())
    for rid, alert in state.alerts.items():
        if escalates(alert, rid, state, policy):
            assert alert.raised_at is not None
            dues.append(_escalation_from(state, rid, alert) + policy.escalation_delay * (alert.escalation_level + 1))
    return min(dues, default=None)


def _escalation_from(state: PatientAlerts, rid: str, alert: Alert) -> datetime:
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


def _step(alert: Alert, transition: AlertTransition, folded: int, **update: object) -> Alert:
    """The alert after one transition: a new alert event (its own ID, counting the `folded` transitions no longer
    in its history), the transition appended."""
    history = [*alert.history, transition]
    n = folded + len(history)
    event_id = derived_id("alert-step", alert.recommendation_id, n, transition.event, transition.at)
    return alert.model_copy(update={"event_id": event_id, "status": transition.status, "history": history, **update})


def alert_for(rec: Recommendation, at: datetime, reissue: bool = False) -> Alert:
    """The first version of an alert. Its ID names the decision's cause when it has one, so that a decision
    issued again after its tombstone was dropped (TOMBSTONE_KEPT) never repeats an alert ID already published."""
    cause = reissue or rec.caused_by is not None
    return Alert(
        event_id=derived_id("alert", rec.event_id, rec.caused_by) if cause else derived_id("alert", rec.event_id),
        patient_id=rec.patient_id,
        occurred_at=rec.occurred_at,
        recorded_at=rec.recorded_at,
        source=SERVICE,
        recommendation_id=rec.event_id,
        alert_key=rec.alert_key,
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
    state: PatientAlerts, arrived: Arrived, policy: AlertPolicy = DEFAULT_POLICY
) -> tuple[PatientAlerts, list[Output]]:
    """An active recommendation becomes one alert (a repeat changes nothing): a critical one is shown at once
    (its escalation is then due), an info or warning one waits for the settle window. A withdrawal drops
    an alert never shown, withdraws an active one, and resolves one a clinician has acted on. The same
    recommendation issued again after its withdrawal (another `caused_by`) is a new alert to act on. A new record
    takes effect in the order it arrives (the patient's partition), whatever its time (review R31-NOTIF2)."""
    rec, at = arrived.message, arrived.at
    record = str(derived_id("heard", arrived.delivery_key()))  # the record's identity (R31-NOTIF)
    identified = _identified(state, at)  # R31-NOTIF2: heard or not decides, not its time
    alerts, pending, folded = dict(state.alerts), dict(state.pending), state.folded
    update: dict[str, object] = {}
    out: list[Output] = []
    if rec.status == "active":
        rid = str(rec.event_id)
        current = alerts.get(rid)
        if _second_delivery(state, rid, at, record, withdrawal=False):
            return state, []  # an issue of it applied already, or one older than a record of it applied (issue 22)
        # HAZ-22-ORDER-01: an issue applied is heard whether it is taken or not (a repeat, a stale wording), so that
        # its second delivery, after a withdrawal, a new wording or a clinician's action changed what holds, is not new
        update["issues"] = {**state.issues, rid: max(at, state.issues.get(rid, at))}
        update["heard"] = _hear(state.heard, rid, at, record)
        heard = state.model_copy(update=update)
        if current is not None and current.status not in ENDED:
            return heard, []
        holder_id = state.keys.get(rec.alert_key) if rec.alert_key else None
        holder = alerts.get(holder_id) if holder_id is not None and holder_id != rid else None
        escalation = _taken_over(state, holder_id, holder, rec, at, policy)
        if holder is not None and holder.status not in ENDED:
            assert holder_id is not None and rec.alert_key is not None
            if holder.raised_at is not None and holder.raised_at > at:
                return heard, []  # an earlier wording of the key, received after the newer one: it never holds
            if current is not None and holder.raised_at is not None and _replaced_by(current, holder.raised_at):
                # a wording its producer replaced, issued again while its replacement holds and was never withdrawn:
                # stale (a rebuild re-publishing what a later decision replaced), never a decision back to it, which
                # withdraws the replacement first
                return heard, []
            # issue 22: another wording of the same decision supersedes the one in force, as its withdrawal would
            folded = _end(alerts, pending, folded, holder_id, at, out)
            if folded is not state.folded:
                update["folded"] = folded
        if rec.alert_key:
            update["keys"] = dict(sorted({**state.keys, rec.alert_key: rid}.items()))
        gone = state.ended.get(rid) if current is None else None  # ended longer ago than ENDED_KEPT
        alert = alert_for(rec, at, reissue=current is not None or gone is not None)
        if current is not None:
            alert = alert.model_copy(update={"history": [*current.history, *alert.history]})
        elif gone is not None:  # the same alert again: its step IDs go on counting the steps it had
            update["ended"] = {k: v for k, v in state.ended.items() if k != rid}
            folded = update["folded"] = {**folded, rid: gone.steps}
        escalating = {k: v for k, v in state.escalating.items() if k != rid}
        if escalation is not None:  # review R2: a rewording neither de-escalates an emergency nor delays it
            escalating[rid] = escalation[0]
            alert = alert.model_copy(update={"escalation_level": escalation[1], "escalated_to": escalation[2]})
        if escalating != state.escalating:
            update["escalating"] = escalating
        if rec.severity == "critical":
            shown = AlertTransition(event="shown", status="active", at=at, by=SERVICE)
            alert = _step(alert, shown, folded.get(rid, 0))
            out.append(alert)
        else:
            pending[rid] = at + policy.settle
        alerts[rid] = alert
    else:
        withdrawals, heard_ids = dict(state.withdrawals), state.heard
        for old_id in map(str, rec.supersedes):
            old = alerts.get(old_id)
            if _second_delivery(state, old_id, at, record, withdrawal=True):
                continue  # a second delivery of it, or a withdrawal older than a record of it applied
            # heard, whether it ends an alert or not (HAZ-22-ORDER-01): the newest time heard
            withdrawals[old_id] = max(at, withdrawals.get(old_id, at))
            heard_ids = _hear(heard_ids, old_id, at, record)
            # a new withdrawal ends what holds (R31-NOTIF2: after the latest issue on the partition, whatever its time);
            # not identified (a stored state): one timed before the alert's latest issue names an earlier one
            if old is not None and (identified or old.raised_at is None or old.raised_at <= at):
                before = folded
                folded = _end(alerts, pending, folded, old_id, at, out)
                if folded is not before:
                    update["folded"] = folded
        if heard_ids is not state.heard:
            update["withdrawals"], update["heard"] = withdrawals, heard_ids
    return state.model_copy(update={"alerts": alerts, "pending": pending, **update}), out


def _newest_heard(state: PatientAlerts, rid: str) -> datetime | None:
    times = [t for t in (state.issues.get(rid), state.withdrawals.get(rid)) if t is not None]
    return max(times, default=None)


def _hear(heard: dict[str, dict[str, datetime]], rid: str, at: datetime, record: str) -> dict[str, dict[str, datetime]]:
    """`heard` with the record of `rid` applied, timed `at` (the broker's timestamp, which a redelivery keeps)."""
    return {**heard, rid: {**heard.get(rid, {}), record: at}}


def _identified(state: PatientAlerts, at: datetime) -> bool:
    """Review R31-NOTIF2: every record applied timed `at` or later is in `heard` (kept ENDED_KEPT before the state's
    clock, the runtime's duplicate window; a state stored before: after `heard_since`), so whether it is heard says
    whether a record of that time is a second delivery."""
    if state.heard_since is not None and at <= state.heard_since:
        return False
    return state.as_of is None or at >= state.as_of - ENDED_KEPT


def _second_delivery(state: PatientAlerts, rid: str, at: datetime, record: str, withdrawal: bool) -> bool:
    """HAZ-22-ORDER-01: a record naming the recommendation `rid` (an issue of it, or its withdrawal) is a second
    delivery when it is heard (review R31-NOTIF2: its delivery key, the runtime's duplicate key, whatever its time)
    and new when it is not and every record of its time applied is heard (`_identified`): replicas of a producer
    stamp their records with their own clocks, so one ID's timestamps need not increase along the partition, and one
    batch's outputs share a millisecond (review R31-NOTIF: A -> B -> A). Only where identities were not kept (past
    ENDED_KEPT, a state stored before) do the times decide: a record timed before the newest of it heard (at that
    instant, one of its kind when no identity of the instant is kept), an issue at or before the alert's latest issue,
    before the end of an alert a record ended, or before its tombstone's end (no record reaches notification that
    late but a second delivery)."""
    known = state.heard.get(rid, {})
    if record in known and (state.as_of is None or known[record] >= state.as_of - ENDED_KEPT):
        return True  # heard within the duplicate window (what `retain` keeps; `transition` alone keeps it longer)
    if _identified(state, at):
        return False
    newest = _newest_heard(state, rid)
    if newest is not None and at <= newest:
        if at < newest:
            return True
        if at in known.values():  # identities of that instant kept (a state stored by e04a612): another record
            return False
        # no identities kept (a state stored before R31): one of its kind at that instant is that record again
        if at == (state.withdrawals.get(rid) if withdrawal else state.issues.get(rid)):
            return True
    if withdrawal:  # a withdrawal older than the alert's latest issue is checked where it is applied
        return False
    current = state.alerts.get(rid)
    if current is not None:
        if current.raised_at is not None and at <= current.raised_at:
            return True  # its latest issue, or an earlier one
        # ended on a record (a withdrawal, a new wording of its key): a record of it timed before was on the
        # partition before that one (a clinician's resolution is not on it: a record may arrive after it)
        end = current.history[-1] if current.status in ENDED and current.history else None
        return end is not None and end.by == SERVICE and at < end.at
    gone = state.ended.get(rid)  # R31-NOTIF: past ENDED_KEPT, its tombstone (its last transition: its end)
    return gone is not None and at < gone.at


def _taken_over(
    state: PatientAlerts,
    holder_id: str | None,
    holder: Alert | None,
    rec: Recommendation,
    at: datetime,
    policy: AlertPolicy,
) -> tuple[datetime, int, str | None] | None:
    """Review R2 (RT-MSCC L1397-1402, LAB-CA-CRISIS L296-316): the escalation a new critical wording takes over from
    the wording of its key that nobody acknowledged (when its escalation started, its level, to whom), when that
    wording is superseded now or was withdrawn by its producer within the settle window (the planners withdraw the
    old wording and publish the new one together); else None (acted on, or ended for good: a new alert)."""
    if holder_id is None or holder is None or holder.raised_at is None:
        return None
    if rec.severity != "critical" or holder.severity != "critical" or holder_id in state.pending:
        return None
    if holder.status != "active":
        last = holder.history[-2:]
        replaced = (
            holder.status == "withdrawn"
            and len(last) == 2
            and last[0].status == "active"
            and last[1].event == "withdrawn"
            and last[1].at >= at - policy.settle
        )
        if not replaced:
            return None
    return _escalation_from(state, holder_id, holder), holder.escalation_level, holder.escalated_to


def _replaced_by(alert: Alert, raised: datetime) -> bool:
    """The alert was last ended by its producer (withdrawn, or resolved after a clinician's action) no later than
    another wording of its key was raised: that wording replaced it."""
    ends = [t.at for t in alert.history if t.by == SERVICE and t.event in ENDED]
    return alert.status in ENDED and bool(ends) and ends[-1] <= raised


def _end(
    alerts: dict[str, Alert],
    pending: dict[str, datetime],
    folded: dict[str, int],
    old_id: str,
    at: datetime,
    out: list[Output],
) -> dict[str, int]:
    """A decision withdrawn or superseded (in place in `alerts` and `pending`; the new `folded` returned): never shown
    if still in its settle window; withdrawn if active; resolved if a clinician acted on it."""
    old = alerts[old_id]
    n = folded.get(old_id, 0)
    if old_id in pending:  # withdrawn or replaced within the settle window: never shown
        del pending[old_id], alerts[old_id]
        if n:
            folded = {k: v for k, v in folded.items() if k != old_id}
    elif old.status == "active":
        step = AlertTransition(event="withdrawn", status="withdrawn", at=at, by=SERVICE)
        alerts[old_id] = _step(old, step, n)
        out.append(alerts[old_id])
    elif old.status in ("acknowledged", "overridden"):
        step = AlertTransition(event="resolved", status="resolved", at=at, by=SERVICE)
        alerts[old_id] = _step(old, step, n)
        out.append(alerts[old_id])
    return folded


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
        for i, t in enumerate(alert.history):  # each step's version ID (`_step`: folded + its position)
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
    alert = _step(target, step, state.folded.get(rid, 0), **update)
    alerts = {**state.alerts, rid: alert}
    return state.model_copy(update={"alerts": alerts, "applied": applied}), [alert]


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
            alerts[rid] = _step(alerts[rid], shown, state.folded.get(rid, 0))
            out.append(alerts[rid])
    for rid, alert in state.alerts.items():
        if not escalates(alert, rid, state, policy):
            continue
        assert alert.raised_at is not None
        level = alert.escalation_level
        due = _escalation_from(state, rid, alert) + policy.escalation_delay * (level + 1)
        if due > at:
            continue
        alerts[rid] = _step(
            alert,
            AlertTransition(event="escalated", status="active", at=due, by=SERVICE, escalation_level=level + 1),
            state.folded.get(rid, 0),
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
