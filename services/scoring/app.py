"""Kafka and HTTP adapters of scoring: GET /patients/{id}/scores."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from contracts.base import Message, PatientId
from contracts.clinical import Score
from contracts.topics import CLINICAL_ASSESSMENTS, IMAGING_FINDINGS, LABS_NORMALISED, TREATMENT_EVENTS
from services.scoring.domain import ScoringState, apply_event, current_scores, recall_published
from services.scoring.settings import ScoringSettings
from shared.runtime.service import Service
from shared.web.auth import CLINICIAN, require
from shared.web.http import create_app


def build(settings: ScoringSettings) -> tuple[Service, FastAPI]:
    service = Service(settings)
    policy = settings.policy()

    def apply(state: ScoringState, event: Message) -> tuple[ScoringState, list[Message]]:
        """The pure transition, given the time it decides for (recency, future-dated facts) and the policy."""
        return apply_event(state, event, now=service.clock(), policy=policy)

    service.patient_aggregate(
        (LABS_NORMALISED, IMAGING_FINDINGS, CLINICAL_ASSESSMENTS, TREATMENT_EVENTS),
        ScoringState,
        apply,
        due=lambda state: state.next_due,  # currency windows pass on time (issue 18: scoring's own clock)
        recall_published=recall_published,  # the score versions downstream holds (HAZ-22-ORDER-03)
    )
    router = APIRouter(tags=["scores"], dependencies=[require(CLINICIAN, audit="read")])

    @router.get("/patients/{patient_id}/scores", response_model=list[Score])
    async def scores(patient_id: PatientId) -> list[Score]:
        """Every current score of the patient (Mirels and SINS per lesion, oligometastatic status)."""
        state = await service.store.load(patient_id, ScoringState)
        return current_scores(state, patient_id, now=service.clock(), policy=policy)

    return service, create_app(service, [router])
