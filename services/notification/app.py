"""Kafka and HTTP adapters of the notification service: GET /alerts, POST /alerts/{id}/ack."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

from contracts.base import PatientId
from contracts.clinical import Alert
from contracts.topics import RECOMMENDATIONS
from services.notification.domain import PatientAlerts, acknowledge, apply_recommendation, listing
from services.notification.settings import NotificationSettings
from shared.http import create_app
from shared.service import Service


class AckRequest(BaseModel):
    patient_id: PatientId
    acknowledged_by: str = Field(min_length=1, max_length=128, description="Clinician's user ID.")


def build(settings: NotificationSettings) -> tuple[Service, FastAPI]:
    service = Service(settings)
    service.patient_aggregate((RECOMMENDATIONS,), PatientAlerts, apply_recommendation)
    router = APIRouter(tags=["alerts"])

    @router.get("/alerts", response_model=list[Alert])
    async def get_alerts(
        patient_id: Annotated[PatientId, Query()],
        status: Annotated[Literal["active", "acknowledged", "withdrawn"] | None, Query()] = None,
    ) -> list[Alert]:
        """The patient's alerts, most severe and most recent first."""
        return listing(await service.store.load(patient_id, PatientAlerts), status)

    @router.post("/alerts/{alert_id}/ack", response_model=Alert)
    async def ack(alert_id: str, body: AckRequest) -> Alert:
        now = datetime.now(UTC)

        def fn(s: PatientAlerts | None) -> tuple[PatientAlerts, Alert | None]:
            return acknowledge(s or PatientAlerts(), alert_id, body.acknowledged_by, now)

        alert = await service.store.transact(body.patient_id, PatientAlerts, fn)
        if alert is None:
            raise HTTPException(404, "no such alert for this patient")
        await (await service.producer.send(alert))
        return alert

    return service, create_app(service, [router])
