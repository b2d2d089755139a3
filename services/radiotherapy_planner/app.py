"""Kafka and HTTP adapters of the radiotherapy planner."""

from __future__ import annotations

from fastapi import FastAPI

from contracts.topics import CLINICAL_ASSESSMENTS, IMAGING_FINDINGS, TREATMENT_EVENTS
from services.radiotherapy_planner.domain import RadiotherapyState, apply_event
from services.radiotherapy_planner.settings import RadiotherapySettings
from shared.http import create_app
from shared.service import Service


def build(settings: RadiotherapySettings) -> tuple[Service, FastAPI]:
    service = Service(settings)

    service.patient_aggregate(
        (IMAGING_FINDINGS, CLINICAL_ASSESSMENTS, TREATMENT_EVENTS), RadiotherapyState, apply_event
    )
    return service, create_app(service)
