"""Kafka and HTTP adapters of the systemic-treatment planner:
GET /patients/{id}/plan and GET /patients/{id}/plan/medication-requests (FHIR Bundle)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import JSONResponse

from contracts.base import Message, PatientId
from contracts.plan import TreatmentPlan
from contracts.topics import (
    CARE_EVENTS,
    CLINICAL_ASSESSMENTS,
    IMAGING_FINDINGS,
    LABS_NORMALISED,
    SCORES,
    SKELETAL_EVENTS,
    TREATMENT_EVENTS,
)
from services.systemic_planner.domain import SystemicState, apply_event, current_plan
from services.systemic_planner.fhir import medication_requests
from services.systemic_planner.settings import SystemicSettings
from shared.runtime.service import Service
from shared.web.auth import CLINICIAN, require
from shared.web.http import create_app


def build(settings: SystemicSettings, clock: Callable[[], datetime] | None = None) -> tuple[Service, FastAPI]:
    service = Service(settings) if clock is None else Service(settings, clock)

    def apply(state: SystemicState, event: Message) -> tuple[SystemicState, list[Message]]:
        return apply_event(state, event, settings.as_of(service.clock()))  # the decision is pure given `now`

    service.patient_aggregate(
        (
            SKELETAL_EVENTS,
            IMAGING_FINDINGS,
            CLINICAL_ASSESSMENTS,
            TREATMENT_EVENTS,
            CARE_EVENTS,
            LABS_NORMALISED,
            SCORES,
        ),
        SystemicState,
        apply,
        due=lambda state: state.next_due,  # reviews and overdue checks fire when their date passes
    )
    router = APIRouter(tags=["plan"], dependencies=[require(CLINICIAN, audit="read")])

    async def current(patient_id: str) -> TreatmentPlan:
        state = await service.store.load(patient_id, SystemicState)
        found = None if state is None else current_plan(state, patient_id, at=settings.as_of(service.clock()))
        if found is None:
            raise HTTPException(404, "no plan for this patient (no bone metastasis or SRE known)")
        return found

    @router.get("/patients/{patient_id}/plan", response_model=TreatmentPlan)
    async def plan(patient_id: PatientId) -> TreatmentPlan:
        """The patient's current, versioned bone-targeted treatment plan."""
        return await current(patient_id)

    @router.get("/patients/{patient_id}/plan/medication-requests")
    async def requests(patient_id: PatientId) -> JSONResponse:
        """The plan's orders as FHIR R4 MedicationRequest resources (draft, proposal) in a Bundle."""
        bundle: Any = medication_requests(await current(patient_id))
        return JSONResponse(bundle.model_dump(mode="json", exclude_none=True), media_type="application/fhir+json")

    return service, create_app(service, [router])
