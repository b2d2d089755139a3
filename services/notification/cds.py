"""CDS Hooks 2.0: discovery, the `patient-view` service (cards from the patient's alerts and plan) and the
feedback endpoint (accepted / overridden + overrideReason → the alert lifecycle). Pure builders; the HTTP
adapters are in app.py.

Cards: `uuid` = the alert ID (its recommendation ID, stable across versions), `indicator` = the severity,
`source` = the guideline with the rule's citation, `detail` in Markdown, `overrideReasons` from
contracts.lifecycle, and as suggestions the plan's FHIR MedicationRequest drafts (status draft, intent
proposal) for the rule of the alert. The plan's other orders come on one plan card.
"""

from __future__ import annotations

import uuid
from typing import Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.base import derived_id
from contracts.clinical import Alert
from contracts.lifecycle import OVERRIDE_REASON_SYSTEM, OVERRIDE_REASONS
from contracts.plan import PlanItem, TreatmentPlan
from contracts.rules import GUIDELINE, Citation
from services.notification import vocabulary
from services.notification.domain import PatientAlerts, listing
from shared.clinical.fhir_orders import medication_request

SERVICE_ID: Final = "osteocds-patient-view"
#: issue 19: the order checks (services/notification/orders.py), one service per hook
ORDER_SIGN_ID: Final = "osteocds-order-sign"
ORDER_SELECT_ID: Final = "osteocds-order-select"
ORDER_HOOKS: Final = {ORDER_SIGN_ID: "order-sign", ORDER_SELECT_ID: "order-select"}
RULE_SYSTEM: Final = "urn:osteocds:rule"
#: alerts a card is shown for: those that still hold and are not overridden
CARD_STATUSES: Final = ("active", "acknowledged")


def discovery() -> dict[str, Any]:
    return {
        "services": [
            {
                "hook": "patient-view",
                "id": SERVICE_ID,
                "title": "OsteoCDS — métastases osseuses du cancer bronchique",
                "description": "Alertes et plan de traitement osseux du patient (référentiel AURA 2023), avec les "
                "prescriptions proposées en brouillon.",
                "usageRequirements": USAGE,
            },
            {
                "hook": "order-sign",
                "id": ORDER_SIGN_ID,
                "title": "OsteoCDS — contrôle des prescriptions à la signature",
                "description": "Vérifie les brouillons de prescription (MedicationRequest FHIR R4) : dose d'acide "
                "zolédronique selon la clairance (Tableau 2), dénosumab et clairance < 30 mL/min, prérequis d'un "
                "anti-résorptif ou crise hypercalcémique, anticancéreux et radiothérapie prévue (Tableau 6), "
                "antiagrégant ou anticoagulant avant cimentoplastie.",
                "usageRequirements": USAGE,
            },
            {
                "hook": "order-select",
                "id": ORDER_SELECT_ID,
                "title": "OsteoCDS — contrôle des prescriptions sélectionnées",
                "description": "Les mêmes contrôles que order-sign, sur les prescriptions sélectionnées "
                "(`selections`) dès leur choix.",
                "usageRequirements": USAGE,
            },
        ]
    }


USAGE: Final = (
    "Jeton d'accès OAuth 2.0 (rôle clinician) ; patientId = identifiant pseudonyme du bus d'intégration. "
    "Aucun prefetch : le service lit l'état du patient publié par OsteoCDS."
)


class HookContext(BaseModel):
    model_config = ConfigDict(extra="allow")

    patientId: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
    userId: str | None = None
    encounterId: str | None = None


class HookRequest(BaseModel):
    """A CDS Hooks 2.0 request (only what this service reads; the rest is allowed and ignored)."""

    model_config = ConfigDict(extra="allow")

    hook: Literal["patient-view"]
    hookInstance: str
    context: HookContext
    fhirServer: str | None = None


class OrderContext(HookContext):
    """`order-sign` / `order-select` context: the unsigned orders (a FHIR Bundle, read in orders_drafts.py) and,
    for order-select, the references of the newly selected ones."""

    draftOrders: dict[str, Any]
    selections: list[str] | None = Field(default=None, max_length=500)


class OrderHookRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    hook: Literal["order-sign", "order-select"]
    hookInstance: str
    context: OrderContext
    fhirServer: str | None = None


class Coding(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    system: str | None = None
    display: str | None = None


class OverrideReason(BaseModel):
    model_config = ConfigDict(extra="allow")

    reason: Coding | None = None
    userComment: str | None = Field(default=None, max_length=1000)


class AcceptedSuggestion(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    card: str
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] = Field(default_factory=list)
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: AwareDatetime


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)


def override_reasons() -> list[dict[str, str]]:
    return [
        {"code": code, "system": OVERRIDE_REASON_SYSTEM, "display": text} for code, text in OVERRIDE_REASONS.items()
    ]


def reason_code(item: FeedbackItem) -> str | None:
    """Our coded reason from a card's override feedback; None when absent or not one we offered."""
    reason = item.overrideReason.reason if item.overrideReason is not None else None
    if reason is None or reason.code not in OVERRIDE_REASONS:
        return None
    if reason.system not in (None, OVERRIDE_REASON_SYSTEM):
        return None
    return reason.code


def _source(citation: Citation, rule_id: str) -> dict[str, Any]:
    return {
        "label": f"{GUIDELINE} — {citation.section} ({citation.lines})",
        "topic": {"system": RULE_SYSTEM, "code": rule_id, "display": citation.section},
    }


def _suggestions(plan: TreatmentPlan | None, items: list[PlanItem], card_id: uuid.UUID) -> list[dict[str, Any]]:
    if plan is None:
        return []
    out = []
    for item in items:
        for order in item.orders:
            resource = medication_request(plan, order, item.key).model_dump(mode="json", exclude_none=True)
            drug = order.drug.replace("_", " ")
            out.append(
                {
                    "label": f"Proposer : {drug} {order.dose:g} {order.unit}",
                    "uuid": str(derived_id("suggestion", card_id, item.key, order.drug)),
                    "isRecommended": item.status == "recommended",
                    "actions": [{"type": "create", "description": order.instructions_fr, "resource": resource}],
                }
            )
    return out


def _with_suggestions(card: dict[str, Any], suggestions: list[dict[str, Any]]) -> dict[str, Any]:
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one"
    return card


def _alert_detail(alert: Alert) -> str:
    # issue 19: in French, from the page's vocabulary; values at their rule's precision
    lines = [vocabulary.prose(alert.text_fr), ""]
    if alert.missing:
        lines += ["**Données manquantes :** " + " ; ".join(vocabulary.missing(m) for m in alert.missing), ""]
    if alert.inputs:
        lines.append("**Éléments pris en compte :**")
        for i in alert.inputs:
            # a censored value is shown as the bound it is
            shown = vocabulary.value(i.value, i.name.partition(":")[0], i.unit, i.comparator)
            at = f" ({vocabulary.when(i.occurred_at)})" if i.occurred_at else ""
            lines.append(f"- {vocabulary.name(i.name)} : {shown}{at}")
        lines.append("")
    if alert.status == "acknowledged":
        lines.append(f"_Acquittée par {alert.acknowledged_by}._")
    if alert.escalation_level:
        lines.append(f"**Escaladée (niveau {alert.escalation_level})** : non acquittée dans le délai.")
    lines.append(f"Règle {alert.rule_id} ({alert.ruleset_version}) — {alert.citation.section}, {alert.citation.lines}.")
    return "\n".join(lines)


def cards(state: PatientAlerts | None) -> list[dict[str, Any]]:
    """The patient-view cards: one per alert that still holds, then one for the plan's remaining orders."""
    if state is None:
        return []
    plan = state.plan
    items = plan.items if plan is not None else []
    used: set[str] = set()
    out: list[dict[str, Any]] = []
    for alert in listing(state):
        if alert.status not in CARD_STATUSES:
            continue
        card_id = alert.recommendation_id
        matching = [i for i in items if i.orders and (i.rule_id == alert.rule_id)]
        used |= {i.key for i in matching}
        card = {
            "uuid": str(card_id),
            "summary": alert.title[:140],
            "indicator": alert.severity,
            "detail": _alert_detail(alert),
            "source": _source(alert.citation, alert.rule_id),
            "overrideReasons": override_reasons(),
        }
        out.append(_with_suggestions(card, _suggestions(plan, matching, card_id)))
    rest = [i for i in items if i.orders and i.key not in used]
    if plan is not None and rest:
        card_id = derived_id("plan-card", plan.event_id)
        detail = [f"Plan de traitement osseux, version {plan.version} ({plan.ruleset_version}).", ""]
        detail += [f"- **{i.title}** : {i.text_fr} _({i.rule_id}, {i.citation.lines})_" for i in rest]
        card = {
            "uuid": str(card_id),
            "summary": f"Plan de traitement osseux (v{plan.version}) : {len(rest)} prescription(s) proposée(s)"[:140],
            "indicator": "info",
            "detail": "\n".join(detail),
            "source": _source(rest[0].citation, rest[0].rule_id),
        }
        out.append(_with_suggestions(card, _suggestions(plan, rest, card_id)))
    return out
