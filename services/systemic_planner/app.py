"""Kafka and HTTP adapters of the systemic-treatment planner."""

from __future__ import annotations

from fastapi import FastAPI

from contracts.topics import CLINICAL_ASSESSMENTS, IMAGING_FINDINGS, SKELETAL_EVENTS, TREATMENT_EVENTS
from services.systemic_planner.domain import SystemicState, apply_event
from services.systemic_planner.settings import SystemicSettings
from shared.http import create_app
from shared.service import Service


def build(settings: SystemicSettings) -> tuple[Service, FastAPI]:
    service = Service(settings)

    service.patient_aggregate(
        (SKELETAL_EVENTS, IMAGING_FINDINGS, CLINICAL_ASSESSMENTS, TREATMENT_EVENTS), SystemicState, apply_event
    )
    return service, create_app(service)
