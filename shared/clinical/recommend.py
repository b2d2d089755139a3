"""Building recommendations: every one carries its rule ID, the rule-set version, its inputs, a French
text and the guideline citation. Pure (no I/O); used by the rule modules of each service."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from contracts.base import InputUsed, Message, Severity, derived_id
from contracts.clinical import Issued, Recommendation
from contracts.rules import RULESET_VERSION, cite

M = TypeVar("M")


def recommendation_id(rule_id: str, patient_id: str, key: Sequence[object]) -> uuid.UUID:
    """The deterministic ID `recommendation()` gives: same rule, patient and key, same ID."""
    return derived_id(rule_id, patient_id, *key)


@dataclass(frozen=True)
class Lazy(Generic[M]):
    """A decision's deterministic ID now, its message only if needed (when it changed, or for an API)."""

    event_id: uuid.UUID
    build: Callable[[], M]


def lazy_recommendation(**kwargs: Any) -> Lazy[Recommendation]:
    """`recommendation(**kwargs)`, built only when asked for."""
    rid = recommendation_id(kwargs["rule_id"], kwargs["trigger"].patient_id, kwargs["key"])
    return Lazy(rid, functools.partial(recommendation, **kwargs))


def recommendation(
    *,
    rule_id: str,
    trigger: Message,
    produced_by: str,
    severity: Severity,
    title: str,
    text_fr: str,
    inputs: Sequence[InputUsed],
    key: Sequence[object],
    missing: Sequence[str] = (),
    alert_key: str | None = None,
    at: datetime | None = None,
) -> Recommendation:
    """`key` identifies the decision: the same rule and key always give the same recommendation ID,
    so a replay or a duplicate shows once. `alert_key` identifies its subject across wordings (issue 22). `at`: the
    decision's time when it is not the trigger's (a plan item: the newest of its inputs)."""
    return Recommendation(
        event_id=recommendation_id(rule_id, trigger.patient_id, key),
        patient_id=trigger.patient_id,
        occurred_at=at or trigger.occurred_at,
        recorded_at=at or trigger.recorded_at,
        source=produced_by,
        rule_id=rule_id,
        ruleset_version=RULESET_VERSION,
        severity=severity,
        title=title,
        text_fr=text_fr,
        citation=cite(rule_id),
        inputs=list(inputs),
        missing=list(missing),
        produced_by=produced_by,
        alert_key=alert_key,
    )


def withdrawal(rec_id: uuid.UUID, rule_id: str, trigger: Message, produced_by: str, why_fr: str) -> Recommendation:
    """Withdraw an earlier recommendation (its inputs were corrected, or it no longer applies)."""
    return Recommendation(
        event_id=derived_id("withdraw", rec_id, trigger.event_id),
        patient_id=trigger.patient_id,
        occurred_at=trigger.occurred_at,
        recorded_at=trigger.recorded_at,
        source=produced_by,
        rule_id=rule_id,
        ruleset_version=RULESET_VERSION,
        severity="info",
        title="Recommandation retirée",
        text_fr=why_fr,
        citation=cite(rule_id),
        inputs=[InputUsed(name="trigger_event", value=str(trigger.event_id), source_event_id=trigger.event_id)],
        produced_by=produced_by,
        status="withdrawn",
        supersedes=[rec_id],
    )


def caused_by(outputs: Sequence[Message], cause: Message) -> list[Message]:
    """Stamp recommendations and SREs with the event whose processing issued them, so that a decision issued
    again after its withdrawal (same event_id, another cause) is not taken for a duplicate delivery."""
    return [
        o.model_copy(update={"caused_by": cause.delivery_key()}) if isinstance(o, Issued) and o.caused_by is None else o
        for o in outputs
    ]


@dataclass(frozen=True)
class PlanNotice:
    """One plan item a planner notifies: its stable key, the digest of its decision, and the recommendation."""

    key: str
    digest: str
    rule_id: str
    severity: Severity
    title: str
    text_fr: str
    inputs: Callable[[], Sequence[InputUsed]]  # built only when the item is (re)issued
    missing: Sequence[str]
    content: str  # the decision's content: part of the recommendation's deterministic ID


def notify_plan_changes(
    published: dict[str, str],
    notices: Sequence[PlanNotice],
    trigger: Message,
    produced_by: str,
    changed_fr: str,
    gone_fr: str,
) -> tuple[dict[str, str], list[Message]]:
    """Only the differences of a plan become messages: a new or changed item is (re)issued, and what it replaces
    or what no longer applies is withdrawn. `published` maps item key -> "rule|recommendation ID|digest"."""
    out: list[Message] = []
    now: dict[str, str] = {}
    for n in notices:
        old = published.get(n.key)
        if old is not None and old.endswith(f"|{n.digest}"):
            now[n.key] = old  # unchanged: nothing to notify
            continue
        inputs = list(n.inputs())
        # the decision's time is the newest of its inputs, never the time of the event that happened to trigger it:
        # the same decision reached through another order of events is the same message (issue 22)
        times = [i.occurred_at for i in inputs if i.occurred_at is not None]
        rec = recommendation(
            rule_id=n.rule_id,
            trigger=trigger,
            produced_by=produced_by,
            severity=n.severity,
            title=n.title,
            text_fr=n.text_fr,
            inputs=inputs,
            missing=list(n.missing),
            key=(n.key, n.content),
            alert_key=f"{produced_by}:{n.key}",  # one identity per plan item across wordings (issue 22)
            at=max(times, default=None),
        )
        now[n.key] = f"{n.rule_id}|{rec.event_id}|{n.digest}"
        if old is not None:
            rule_id, rec_id, _ = old.split("|")
            out.append(withdrawal(uuid.UUID(rec_id), rule_id, trigger, produced_by, changed_fr))
        out.append(rec)
    for key, old in published.items():
        if key not in now:
            rule_id, rec_id, _ = old.split("|")
            out.append(withdrawal(uuid.UUID(rec_id), rule_id, trigger, produced_by, gone_fr))
    return dict(sorted(now.items())), out
