"""The systemic planner's plan items: a `PlanItem` with its rule's citation (contracts/rules.py `cite`)."""

from __future__ import annotations

from contracts.plan import PlanItem
from contracts.rules import cite


def item(key: str, rule_id: str, status: str, severity: str, title: str, text: str, **extra: object) -> PlanItem:
    return PlanItem.model_validate(
        {
            "key": key,
            "rule_id": rule_id,
            "status": status,
            "severity": severity,
            "title": title,
            "text_fr": text,
            "citation": cite(rule_id),
            **extra,
        }
    )
