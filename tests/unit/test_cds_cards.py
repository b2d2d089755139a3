"""CDS Hooks JSON checked against the specification's shapes and its own examples (tests/cds_spec.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from contracts.base import InputUsed
from contracts.clinical import Recommendation
from contracts.clock import ClockTick
from contracts.examples import EXAMPLES
from contracts.lifecycle import OVERRIDE_REASON_SYSTEM, OVERRIDE_REASONS, AlertAction
from contracts.plan import TreatmentPlan
from contracts.rules import GUIDELINE, RULESET_VERSION, cite
from services.notification import cds
from services.notification.actions import apply_action
from services.notification.domain import AlertPolicy, Arrived, PatientAlerts, apply_plan
from services.notification.lifecycle import apply_tick
from services.notification.recommendations import apply_recommendation
from tests import cds_spec

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def rec(rule_id: str, severity: str) -> Recommendation:
    return Recommendation(
        event_id=uuid.uuid4(),
        patient_id="pt-7f3a9c",
        occurred_at=T0,
        recorded_at=T0,
        source="systemic-planner",
        rule_id=rule_id,
        ruleset_version=RULESET_VERSION,
        severity=severity,
        title=f"Titre {rule_id}",
        text_fr="Texte clinique.",
        citation=cite(rule_id),
        inputs=[],
        produced_by="systemic-planner",
    )


def state_with_plan() -> tuple[PatientAlerts, Recommendation, Recommendation]:
    s, _ = apply_plan(PatientAlerts(), TreatmentPlan.model_validate(EXAMPLES["osteocds.plans.v1"]))
    dose, crisis = rec("SYS-ZA-DOSE", "warning"), rec("LAB-CA-CRISIS", "critical")
    for r in (dose, crisis):
        s, _ = apply_recommendation(s, Arrived(message=r, at=T0))
    return s, dose, crisis


def test_the_specification_examples_pass_the_models() -> None:
    cds_spec.Discovery.model_validate(cds_spec.DISCOVERY_EXAMPLE)
    cds_spec.CardsResponse.model_validate(cds_spec.CARDS_EXAMPLE)
    cds.HookRequest.model_validate(cds_spec.REQUEST_EXAMPLE)
    for example in (cds_spec.FEEDBACK_ACCEPTED_EXAMPLE, cds_spec.FEEDBACK_OVERRIDDEN_EXAMPLE):
        cds.FeedbackRequest.model_validate(example)
    with pytest.raises(ValueError, match="selectionBehavior"):
        cds_spec.Card.model_validate({**cds_spec.CARDS_EXAMPLE["cards"][2], "selectionBehavior": None})


def test_discovery_follows_the_specification() -> None:
    found = cds_spec.Discovery.model_validate(cds.discovery())
    assert (found.services[0].hook, found.services[0].id) == ("patient-view", cds.SERVICE_ID)  # then the order hooks


def test_cards_follow_the_specification_and_carry_alert_id_severity_citation_and_drafts() -> None:
    s, dose, crisis = state_with_plan()
    # the warning is still in its settle window: no card for it yet
    early = {c["uuid"]: c for c in cds.cards(s)}
    assert str(crisis.event_id) in early and str(dose.event_id) not in early
    assert len(early) == 2  # the plan's dose order waits on the plan card meanwhile
    s, _ = apply_tick(s, tick(T0 + timedelta(seconds=30)), AlertPolicy())
    response = cds_spec.CardsResponse.model_validate({"cards": cds.cards(s)})
    by_id = {c.uuid: c for c in response.cards}
    assert set(by_id) == {str(crisis.event_id), str(dose.event_id)}
    card = by_id[str(dose.event_id)]
    assert card.indicator == "warning" and card.summary == "Titre SYS-ZA-DOSE"
    assert card.source.label.startswith(GUIDELINE) and cite("SYS-ZA-DOSE").lines in card.source.label
    assert card.source.topic is not None and card.source.topic.code == "SYS-ZA-DOSE"
    assert card.detail is not None and "Texte clinique." in card.detail
    assert card.overrideReasons is not None
    assert {(c.code, c.system) for c in card.overrideReasons} == {(c, OVERRIDE_REASON_SYSTEM) for c in OVERRIDE_REASONS}
    assert card.suggestions is not None and card.selectionBehavior == "at-most-one"
    [suggestion] = card.suggestions
    [action] = suggestion.actions
    assert action.type == "create" and action.resource is not None
    draft = MedicationRequest.model_validate(action.resource)  # a valid FHIR R4 resource
    assert (draft.status, draft.intent) == ("draft", "proposal")
    assert draft.subject.reference == "Patient/pt-7f3a9c"
    assert by_id[str(crisis.event_id)].indicator == "critical" and not by_id[str(crisis.event_id)].suggestions


def tick(at: datetime) -> ClockTick:
    return ClockTick(
        event_id=uuid.uuid4(),
        patient_id="pt-7f3a9c",
        occurred_at=at,
        recorded_at=at,
        source="notification",
        service="notification",
        due_at=at,
    )


def test_an_overridden_alert_has_no_card_and_orders_left_over_come_on_the_plan_card() -> None:
    s, _ = apply_plan(PatientAlerts(), TreatmentPlan.model_validate(EXAMPLES["osteocds.plans.v1"]))
    crisis = rec("LAB-CA-CRISIS", "critical")
    s, _ = apply_recommendation(s, Arrived(message=crisis, at=T0))
    override = AlertAction(
        event_id=uuid.uuid4(),
        patient_id="pt-7f3a9c",
        occurred_at=T0,
        recorded_at=T0,
        source="notification",
        action="override",
        alert_id=crisis.event_id,
        actor="dr-a",
        reason="not-applicable",
    )
    s, _ = apply_action(s, override)
    [plan_card] = cds_spec.CardsResponse.model_validate({"cards": cds.cards(s)}).cards
    assert plan_card.indicator == "info" and plan_card.suggestions is not None
    assert plan_card.uuid != str(crisis.event_id)


def test_feedback_maps_the_override_reason_onto_ours() -> None:
    foreign = cds.FeedbackRequest.model_validate(cds_spec.FEEDBACK_OVERRIDDEN_EXAMPLE).feedback[0]
    assert cds.reason_code(foreign) is None  # not one of the reasons we offered: recorded as "other"
    ours = {
        **cds_spec.FEEDBACK_OVERRIDDEN_EXAMPLE["feedback"][0],
        "overrideReason": {"reason": {"code": "patient-declined", "system": OVERRIDE_REASON_SYSTEM}},
    }
    assert cds.reason_code(cds.FeedbackRequest.model_validate({"feedback": [ours]}).feedback[0]) == "patient-declined"


def test_a_censored_input_is_shown_with_its_comparator_on_the_card() -> None:
    """Issue 12: the card's detail lists the inputs; a censored one is the bound it is ("> 3.6"), never "3.6"."""
    crisis = rec("LAB-CA-CRISIS", "critical").model_copy(
        update={
            "inputs": [
                InputUsed(name="corrected_calcium", value=3.6, unit="mmol/L", comparator=">"),
                InputUsed(name="albumin", value=40.0, unit="g/L"),
            ]
        }
    )
    s, _ = apply_recommendation(PatientAlerts(), Arrived(message=crisis, at=T0))
    [card] = cds.cards(s)
    # issue 19: named and rounded in French (the page's vocabulary)
    assert "- Calcémie corrigée : > 3,60 mmol/L" in card["detail"] and "- Albuminémie : 40 g/L" in card["detail"]
