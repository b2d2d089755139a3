"""Kafka and HTTP adapters of the local-treatment (radiotherapy) planner: GET /patients/{id}/local-plan."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, HTTPException

from contracts.base import PatientId
from contracts.local import LocalTreatmentPlan
from contracts.topics import (
    CLINICAL_ASSESSMENTS,
    IMAGING_FINDINGS,
    LABS_NORMALISED,
    LOCAL_TREATMENT_REQUESTS,
    SCORES,
    TREATMENT_EVENTS,
)
from services.radiotherapy_planner import memo
from services.radiotherapy_planner.domain import apply_event, current_plan
from services.radiotherapy_planner.facts import LocalState
from services.radiotherapy_planner.settings import RadiotherapySettings
from shared.runtime.service import Service
from shared.web.auth import CLINICIAN, require
from shared.web.http import create_app


def build(settings: RadiotherapySettings) -> tuple[Service, FastAPI]:
    service = Service(settings)
    memo.clear()
    alpha_beta = settings.cord_alpha_beta_gy
    window = timedelta(days=settings.compression_current_days)
    tz = ZoneInfo(settings.hospital_timezone)
    service.patient_aggregate(
        (IMAGING_FINDINGS, CLINICAL_ASSESSMENTS, TREATMENT_EVENTS, LOCAL_TREATMENT_REQUESTS, SCORES, LABS_NORMALISED),
        LocalState,
        lambda state, event: apply_event(  # decided at the wall clock, as scoring and the systemic planner
            state, event, alpha_beta=alpha_beta, compression_window=window, tz=tz, now=service.clock()
        ),
        due=lambda state: state.next_due,  # currency windows and life-expectancy thresholds pass on time (18)
    )
    router = APIRouter(tags=["local-plan"], dependencies=[require(CLINICIAN, audit="read")])

    @router.get("/patients/{patient_id}/local-plan", response_model=LocalTreatmentPlan)
    async def local_plan(patient_id: PatientId) -> LocalTreatmentPlan:
        """The patient's current, versioned local-treatment plan: one section per lesion."""
        state = await service.store.load(patient_id, LocalState)
        found = (
            None
            if state is None
            else current_plan(state, patient_id, alpha_beta=alpha_beta, compression_window=window, tz=tz)
        )
        if found is None:
            raise HTTPException(404, "no local-treatment plan for this patient")
        return found

    return service, create_app(service, [router])
