"""Retention (issue 25): the notification aggregate bounded by lifecycle horizons measured from its own clock `as_of`
(domain.py's docstring; README "Retention: notification"). Pure, deterministic, idempotent."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from contracts.lifecycle import AlertTransition
from services.notification.state import APPLIED_FOR, ENDED, ENDED_KEPT, TOMBSTONE_KEPT, Ended, PatientAlerts


def _folded_cycles(history: list[AlertTransition], before: datetime) -> int:
    """How many transitions at the start of an alert's history are earlier cycles (each ended by a withdrawal or a
    resolution, then issued again) all older than `before`: the longest such prefix."""
    cut, newest = 0, None
    for i, step in enumerate(history):
        if i and step.event in ("raised", "reactivated") and newest is not None and newest < before:
            cut = i
        newest = step.at if newest is None or step.at > newest else newest
    return cut


def retain(state: PatientAlerts) -> PatientAlerts:
    """The state bounded by the retention horizons, measured from its clock `as_of` (deterministic; idempotent).
    An alert that still holds is never dropped; only its earlier cycles, ended more than ENDED_KEPT ago, leave its
    history. A withdrawn or resolved alert ended more than ENDED_KEPT ago becomes a tombstone; a tombstone goes
    after TOMBSTONE_KEPT; applied action IDs after APPLIED_FOR."""
    now = state.as_of
    if now is None:  # nothing processed yet that has a time
        return state
    whole = now - ENDED_KEPT
    alerts, ended, folded = state.alerts, state.ended, state.folded
    changed = False
    for rid, alert in state.alerts.items():
        history = alert.history
        if not history or history[0].at >= whole:  # nothing older than the horizon
            continue
        if alert.status in ENDED and rid not in state.pending:
            last = max(t.at for t in history)
            if last < whole:  # ended long enough ago: only its tombstone is kept
                if not changed:
                    alerts, ended, folded, changed = dict(alerts), dict(ended), dict(folded), True
                del alerts[rid]
                status: Literal["withdrawn", "resolved"] = "withdrawn" if alert.status == "withdrawn" else "resolved"
                ended[rid] = Ended(status, last, folded.pop(rid, 0) + len(history))
                continue
        start = _folded_cycles(history, whole) if len(history) > 2 else 0  # a second cycle: 3 steps at least
        if start:  # earlier cycles ended long ago
            if not changed:
                alerts, ended, folded, changed = dict(alerts), dict(ended), dict(folded), True
            alerts[rid] = alert.model_copy(update={"history": history[start:]})
            folded[rid] = folded.get(rid, 0) + start
    gone = now - TOMBSTONE_KEPT
    if ended and min(e.at for e in ended.values()) < gone:
        ended = {rid: e for rid, e in ended.items() if e.at >= gone}
        changed = True
    issues, withdrawals = state.issues, state.withdrawals
    if issues and min(issues.values()) < whole:  # past the duplicate window: nothing to recognise any more
        issues = {rid: t for rid, t in issues.items() if t >= whole}
        changed = True
    if withdrawals and min(withdrawals.values()) < whole:
        withdrawals = {rid: t for rid, t in withdrawals.items() if t >= whole}
        changed = True
    heard, since = state.heard, state.heard_since
    if any(t < whole for records in heard.values() for t in records.values()):  # R31-NOTIF2: each record by its time
        heard = {
            rid: kept for rid, records in heard.items() if (kept := {k: t for k, t in records.items() if t >= whole})
        }
        changed = True
    if since is not None and since < whole:  # every record within the duplicate window is heard
        since, changed = None, True
    escalating = state.escalating
    if any(rid not in alerts or alerts[rid].status != "active" for rid in escalating):
        escalating = {rid: t for rid, t in escalating.items() if rid in alerts and alerts[rid].status == "active"}
        changed = True
    keys = state.keys
    if any(rid not in alerts for rid in keys.values()):  # a key's alert ended and folded: nothing of it holds
        keys = {k: rid for k, rid in keys.items() if rid in alerts}
        changed = True
    applied, done = state.applied, now - APPLIED_FOR
    if applied and min(applied.values()) < done:
        applied = {aid: at for aid, at in applied.items() if at >= done}
        changed = True
    if not changed:
        return state
    return state.model_copy(
        update={
            "alerts": alerts,
            "ended": ended,
            "folded": folded,
            "applied": applied,
            "keys": keys,
            "issues": issues,
            "withdrawals": withdrawals,
            "heard": heard,
            "heard_since": since,
            "escalating": escalating,
        }
    )
