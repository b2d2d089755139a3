"""Kafka and HTTP adapters of scoring: GET /patients/{id}/scores."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from contracts.base import PatientId
from contracts.clinical import Score
from contracts.topics import CLINICAL_ASSESSMENTS, IMAGING_FINDINGS, LABS_NORMALISED, TREATMENT_EVENTS
from services.scoring.domain import ScoringState, apply_event, current_scores
from services.scoring.settings import ScoringSettings
from shared.auth import CLINICIAN, require
from shared.http import create_app
from shared.service import Service


def build(settings: ScoringSettings) -> tuple[Service, FastAPI]:
    service = Service(settings)
    service.patient_aggregate(
        (LABS_NORMALISED, IMAGING_FINDINGS, CLINICAL_ASSESSMENTS, TREATMENT_EVENTS), ScoringState, apply_event
    )
    router = APIRouter(tags=["scores"], dependencies=[require(CLINICIAN, audit="read")])

    @router.get("/patients/{patient_id}/scores", response_model=list[Score])
    async def scores(patient_id: PatientId) -> list[Score]:
        """Every current score of the patient (Mirels and SINS per lesion, oligometastatic status)."""
        return current_scores(await service.store.load(patient_id, ScoringState), patient_id)

    return service, create_app(service, [router])
