"""A recommendation on the alerts (pure): an active one raises an alert (a critical one shown at once, taking over
the escalation of the wording it replaces), a withdrawal ends one; a second delivery of either changes nothing
(HAZ-22-ORDER-01, reviews R2, R31-NOTIF, R31-NOTIF2)."""

from __future__ import annotations

from datetime import datetime

from contracts.base import derived_id
from contracts.clinical import Alert, Recommendation
from contracts.lifecycle import AlertTransition
from services.notification.lifecycle import DEFAULT_POLICY, SERVICE, alert_step, escalation_from
from services.notification.state import (
    ENDED,
    ENDED_KEPT,
    AlertPolicy,
    Arrived,
    Output,
    PatientAlerts,
)


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
            alert = alert_step(alert, shown, folded.get(rid, 0))
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
    return escalation_from(state, holder_id, holder), holder.escalation_level, holder.escalated_to


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
        alerts[old_id] = alert_step(old, step, n)
        out.append(alerts[old_id])
    elif old.status in ("acknowledged", "overridden"):
        step = AlertTransition(event="resolved", status="resolved", at=at, by=SERVICE)
        alerts[old_id] = alert_step(old, step, n)
        out.append(alerts[old_id])
    return folded
