"""Kafka and HTTP adapters of scoring."""

from __future__ import annotations

from fastapi import FastAPI

from contracts.topics import LABS_NORMALISED
from services.scoring.domain import ScoringState, apply_lab
from services.scoring.settings import ScoringSettings
from shared.http import create_app
from shared.service import Service


def build(settings: ScoringSettings) -> tuple[Service, FastAPI]:
    service = Service(settings)
    service.patient_aggregate((LABS_NORMALISED,), ScoringState, apply_lab)
    return service, create_app(service)
