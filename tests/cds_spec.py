"""CDS Hooks 2.0 (HL7 STU 2), written down from the specification to check our JSON against it: the shapes of
the discovery response, the card and the feedback (strict: a field the specification does not name fails),
and the specification's own examples, which must pass the same models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Coding(_Strict):
    code: str
    system: str | None = None
    display: str | None = None


class Source(_Strict):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(_Strict):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None


class Suggestion(_Strict):
    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] = Field(default_factory=list)


class Link(_Strict):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None


class Card(_Strict):
    uuid: str | None = None
    summary: str = Field(max_length=140)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None

    @model_validator(mode="after")
    def _selection(self) -> Card:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when suggestions are present")
        return self


class CardsResponse(_Strict):
    cards: list[Card]
    systemActions: list[Action] | None = None


class DiscoveredService(_Strict):
    hook: str
    title: str | None = None
    description: str
    id: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None


class Discovery(_Strict):
    services: list[DiscoveredService]


# ---- the specification's examples (CDS Hooks 2.0, sections Discovery, Calling a CDS Service, Card, Feedback)

DISCOVERY_EXAMPLE: dict[str, Any] = {
    "services": [
        {
            "hook": "patient-view",
            "title": "Static CDS Service Example",
            "description": "An example of a CDS Service that returns a card with SMART app recommendations.",
            "id": "static-patient-view",
            "prefetch": {"patientToGreet": "Patient/{{context.patientId}}"},
        },
        {
            "hook": "order-select",
            "title": "Order Echo CDS Service",
            "description": "An example of a CDS Service that simply echoes the order(s) being placed",
            "id": "order-echo",
            "prefetch": {
                "patient": "Patient/{{context.patientId}}",
                "medications": "MedicationRequest?patient={{context.patientId}}",
            },
        },
    ]
}

REQUEST_EXAMPLE: dict[str, Any] = {
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "fhirServer": "http://hooks.smarthealthit.org:9080",
    "hook": "patient-view",
    "fhirAuthorization": {
        "access_token": "some-opaque-fhir-access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "user/Patient.read user/Observation.read",
        "subject": "cds-service4",
    },
    "context": {"userId": "Practitioner/example", "patientId": "1288992", "encounterId": "89284"},
}

CARDS_EXAMPLE: dict[str, Any] = {
    "cards": [
        {
            "uuid": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
            "summary": "Example Card",
            "indicator": "info",
            "detail": "This is an example card.",
            "source": {
                "label": "Static CDS Service Example",
                "url": "https://example.com",
                "icon": "https://example.com/img/icon-100px.png",
            },
            "links": [
                {"label": "Google", "url": "https://google.com", "type": "absolute"},
                {"label": "Github", "url": "https://github.com", "type": "absolute"},
                {
                    "label": "SMART Example App",
                    "url": "https://smart.example.com/launch",
                    "type": "smart",
                    "appContext": '{"session":3456356,"settings":{"module":4235}}',
                },
            ],
        },
        {
            "summary": "Another card",
            "indicator": "warning",
            "source": {"label": "Static CDS Service Example"},
        },
        {
            "summary": "Suggestion example",
            "indicator": "warning",
            "source": {"label": "Static CDS Service Example"},
            "selectionBehavior": "at-most-one",
            "suggestions": [
                {
                    "label": "Change to a generic medication",
                    "uuid": "e56e1945-20b3-4393-8503-a1a20fd73152",
                    "isRecommended": True,
                    "actions": [
                        {
                            "type": "create",
                            "description": "Create a prescription for Acetaminophen 250 MG",
                            "resource": {"resourceType": "MedicationRequest", "status": "draft", "intent": "order"},
                        }
                    ],
                }
            ],
            "overrideReasons": [
                {
                    "code": "reason-code-provided-by-service",
                    "system": "http://example.org/cds-services/fhir/CodeSystem/override-reasons",
                    "display": "Patient refused",
                },
                {
                    "code": "12354",
                    "system": "http://example.org/cds-services/fhir/CodeSystem/override-reasons",
                    "display": "Contraindicated",
                },
            ],
        },
    ]
}

FEEDBACK_ACCEPTED_EXAMPLE: dict[str, Any] = {
    "feedback": [
        {
            "card": "4e0a3a1e-3283-4575-ab82-028d55fe2719",
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
            "outcomeTimestamp": "2020-12-11T00:00:00.000Z",
        }
    ]
}

FEEDBACK_OVERRIDDEN_EXAMPLE: dict[str, Any] = {
    "feedback": [
        {
            "card": "9368d37b-283f-44a0-93ea-547cebab93ed",
            "outcome": "overridden",
            "overrideReason": {
                "reason": {
                    "code": "reason-code-provided-by-service",
                    "system": "http://example.org/cds-services/fhir/CodeSystem/override-reasons",
                    "display": "Patient refused",
                },
                "userComment": "clinician entered comment",
            },
            "outcomeTimestamp": "2020-12-11T00:00:00.000Z",
        }
    ]
}
