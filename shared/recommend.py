"""Building recommendations: every one carries its rule ID, the rule-set version, its inputs, a French
text and the guideline citation. Pure (no I/O); used by the rule modules of each service."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
) -> Recommendation:
    """`key` identifies the decision: the same rule and key always give the same recommendation ID,
    so a replay or a duplicate shows once."""
    return Recommendation(
        event_id=recommendation_id(rule_id, trigger.patient_id, key),
        patient_id=trigger.patient_id,
        occurred_at=trigger.occurred_at,
        recorded_at=trigger.recorded_at,
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
